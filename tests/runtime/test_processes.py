"""Processes that misbehave, and a redeploy under load: what the runtime does about them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitd.deployed import (
    deploy,
    logs,
    ok,
    platform_fixture,
    ps_states,
    wait_for_log,
)
from tests.harness import GRACEFUL_SERVER as SERVER
from tests.harness import Platform, RequestLoop, SshKey, commit, wait_for


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SshKey]
) -> Iterator[Platform]:
    yield from platform_fixture(tmp_path_factory, keys, "processes")


def test_redeploys_under_load_fail_no_request(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    files = {"app.py": SERVER.format(version="v1"), "Procfile": "web: python3 app.py\n"}
    repo = deploy(platform, bob, tmp_path, "steady", files)
    with RequestLoop(platform.http_port, "steady.localhost") as load:
        for version in ("v2", "v3", "v4"):
            commit(repo, {"app.py": SERVER.format(version=version)}, version)
            pushed = platform.git(bob, "push", platform.url("steady"), "main", cwd=repo)
            assert pushed.returncode == 0
            wait_for(lambda v=version: load.bodies and load.bodies[-1] == v, what=version)
        ok(platform.ssh(bob, "config:set", "-a", "steady", "ANYTHING=1"))
        ok(platform.ssh(bob, "ps:restart", "-a", "steady"))
    assert load.failures == []
    assert len(load.bodies) > 10 and load.bodies[-1] == "v4"


def test_a_crashing_process_is_restarted_with_back_off(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    procfile = "web: python3 -m http.server $PORT --bind 127.0.0.1\nworker: echo crashing; exit 3\n"
    deploy(platform, bob, tmp_path, "crashy", {"Procfile": procfile, "index.html": "x\n"})
    ok(platform.ssh(bob, "ps:scale", "-a", "crashy", "worker=1"))
    wait_for(
        lambda: logs(platform, bob, "crashy").count("Process exited with status 3") >= 3,
        what="three crashes",
    )
    assert ps_states(platform, bob, "crashy").get("worker.1") in ("crashed", "up", "starting")
    # back-off: at once, then 1 s, 2 s, 4 s... not a busy loop
    starts = logs(platform, bob, "crashy").count("ouro[worker.1]: Starting process")
    assert starts < 10
    assert "app[worker.1]: crashing" in logs(platform, bob, "crashy")


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    procfile = (
        "web: python3 -m http.server $PORT --bind 127.0.0.1\n"
        "worker: trap '' TERM; echo stubborn; while true; do sleep 0.2; done\n"
    )
    deploy(platform, bob, tmp_path, "stubborn", {"Procfile": procfile, "index.html": "x\n"})
    ok(platform.ssh(bob, "ps:scale", "-a", "stubborn", "worker=1"))
    wait_for_log(platform, bob, "stubborn", "app[worker.1]: stubborn")
    ok(platform.ssh(bob, "ps:scale", "-a", "stubborn", "worker=0"))
    wait_for_log(platform, bob, "stubborn", "ouro[worker.1]: Process exited with status 137")


def test_output_without_newlines_and_floods_do_not_stall_the_app(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    procfile = (
        "web: python3 -m http.server $PORT --bind 127.0.0.1\n"
        "worker: python3 -c \"print('x' * 1000000, end='')\"; echo; yes flood | head -n 200000;"
        " sleep 3; echo finished; sleep 600\n"
    )
    deploy(platform, bob, tmp_path, "chatty", {"Procfile": procfile, "index.html": "x\n"})
    ok(platform.ssh(bob, "ps:scale", "-a", "chatty", "worker=1"))
    wait_for_log(platform, bob, "chatty", "app[worker.1]: finished")
    assert "Error L10 (output buffer overflow)" in logs(platform, bob, "chatty")
    # the megabyte without a newline arrives in pieces, none of them lost
    on_disk = (platform.home / "logs" / "chatty" / "chatty.log").read_text()
    pieces = [ln.split("app[worker.1]: ", 1)[1] for ln in on_disk.splitlines() if ": xxx" in ln]
    assert sum(len(piece) for piece in pieces) == 1_000_000
