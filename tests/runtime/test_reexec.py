"""SIGUSR2: the supervisor re-executes itself in place and keeps every process."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitd.deployed import deploy, ok, platform_fixture, wait_for_log
from tests.harness import GRACEFUL_SERVER as SERVER
from tests.harness import Platform, RequestLoop, SshKey, wait_for

PROCFILE = "web: python3 app.py\nworker: while true; do echo tick; sleep 1; done\n"


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SshKey]
) -> Iterator[Platform]:
    yield from platform_fixture(tmp_path_factory, keys, "reexec")


def _pids(platform: Platform, key: SshKey, app: str) -> dict[str, int]:
    processes = json.loads(ok(platform.ssh(key, "ps", "--json", "-a", app)))
    return {p["name"]: p["pid"] for p in processes if p["pid"]}


def test_the_supervisor_re_executes_without_restarting_anything(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    admin = keys["admin"]
    files = {"app.py": SERVER.format(version="v1"), "Procfile": PROCFILE}
    deploy(platform, admin, tmp_path, "phoenix", files)
    ok(platform.ssh(admin, "ps:scale", "-a", "phoenix", "worker=1"))
    wait_for_log(platform, admin, "phoenix", "app[worker.1]: tick")
    apps_before, platform_before = _pids(platform, admin, "phoenix"), _pids(platform, admin, "ouro")
    supervisor = json.loads((platform.home / "run" / "ouro.json").read_text())["pid"]

    with RequestLoop(platform.http_port, "phoenix.localhost") as load:
        for round_ in (1, 2):
            assert platform.proc is not None
            platform.proc.send_signal(signal.SIGUSR2)
            wait_for(lambda r=round_: _reexecs(platform, admin) >= r, what=f"re-exec {round_}")
        wait_for(lambda: len(load.bodies) > 20, what="requests after the re-execs")
    assert load.failures == []
    assert json.loads((platform.home / "run" / "ouro.json").read_text())["pid"] == supervisor
    assert _pids(platform, admin, "phoenix") == apps_before
    assert _pids(platform, admin, "ouro") == platform_before
    # what ran before is still watched: its output is read, its death noticed
    logs = ok(platform.ssh(admin, "logs", "-a", "phoenix", "-n", "1500"))
    assert "Starting process" in logs  # history from before the re-exec is kept
    tick_count = logs.count("app[worker.1]: tick")
    wait_for(
        lambda: (
            ok(platform.ssh(admin, "logs", "-a", "phoenix", "-n", "1500")).count(
                "app[worker.1]: tick"
            )
            > tick_count
        ),
        what="the worker's output after the re-exec",
    )
    ok(platform.ssh(admin, "ps:kill", "-a", "phoenix", "KILL", "web.1"))
    wait_for_log(platform, admin, "phoenix", "ouro[web.1]: Process exited with status 137")
    wait_for(
        lambda: (
            _pids(platform, admin, "phoenix").get("web.1", apps_before["web.1"])
            != apps_before["web.1"]
        ),
        what="web.1 to be restarted",
    )


def test_a_deploy_right_after_a_re_exec_fails_no_request(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    """The routers reconnect to the new supervisor a moment after the exec: a deploy
    meanwhile must still wait for them before it stops the old processes."""
    admin = keys["admin"]
    files = {"app.py": SERVER.format(version="v1"), "Procfile": "web: python3 app.py\n"}
    deploy(platform, admin, tmp_path, "quail", files)
    re_executed = _reexecs(platform, admin)
    with RequestLoop(platform.http_port, "quail.localhost") as load:
        assert platform.proc is not None
        platform.proc.send_signal(signal.SIGUSR2)
        wait_for(lambda: _reexecs(platform, admin) > re_executed, what="the re-exec")
        ok(platform.ssh(admin, "config:set", "-a", "quail", "AFTER=re-exec"))
        served = len(load.bodies)
        wait_for(lambda: len(load.bodies) > served + 20, what="requests after the deploy")
    assert load.failures == []


def _reexecs(platform: Platform, key: SshKey) -> int:
    return ok(platform.ssh(key, "logs", "-a", "ouro")).count("ouro[api]: Platform re-executed")
