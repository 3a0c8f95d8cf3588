"""`logs`: recent lines, filters, and `--tail` following a live request."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import start_platform
from tests.gitd.deployed import deploy, get, logs, ok, platform_fixture, refused, wait_for_log
from tests.harness import DEADLINE, Platform, SshKey, wait_for

APP = "logs-app"


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SshKey]
) -> Iterator[Platform]:
    yield from platform_fixture(tmp_path_factory, keys, "logs")


@pytest.fixture(scope="module")
def app(
    platform: Platform, keys: dict[str, SshKey], tmp_path_factory: pytest.TempPathFactory
) -> str:
    deploy(platform, keys["bob"], tmp_path_factory.mktemp("repos"), APP)
    ok(platform.ssh(keys["bob"], "ps:scale", "-a", APP, "worker=1"))
    return APP


def test_recent_lines_and_their_format(
    platform: Platform, keys: dict[str, SshKey], app: str
) -> None:
    bob = keys["bob"]
    line = wait_for_log(platform, bob, app, "ouro[web.1]: State changed from starting to up")
    stamp = line.split(" ", 1)[0]
    assert stamp.endswith("+00:00") and "T" in stamp
    wait_for(lambda: len(logs(platform, bob, app).splitlines()) >= 6, what="six lines")
    assert len(ok(platform.ssh(bob, "logs", "-a", app, "-n", "5")).splitlines()) == 5
    assert ok(platform.ssh(bob, "logs", "-a", app, "-n", "0")) == ""


def test_filters_by_process_and_source(
    platform: Platform, keys: dict[str, SshKey], app: str
) -> None:
    bob = keys["bob"]
    wait_for_log(platform, bob, app, "app[worker.1]: tick")
    only_worker = logs(platform, bob, app, "--ps", "worker.1").splitlines()
    assert only_worker and all("[worker.1]" in line for line in only_worker)
    only_app = logs(platform, bob, app, "-s", "app").splitlines()
    assert only_app and all(" app[" in line for line in only_app)
    only_ouro = logs(platform, bob, app, "--source", "ouro").splitlines()
    assert only_ouro and all(" ouro[" in line for line in only_ouro)
    assert all("[web." in line for line in logs(platform, bob, app, "-p", "web").splitlines())


def test_tail_sees_a_new_request(platform: Platform, keys: dict[str, SshKey], app: str) -> None:
    bob = keys["bob"]
    command = [*platform.ssh_command(bob), "git@127.0.0.1", f"logs -a {APP} -n 0 --tail -s ouro"]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as client:
        assert client.stdout is not None
        seen: list[str] = []

        def read() -> None:
            assert client.stdout is not None
            for raw in client.stdout:
                seen.append(raw.decode())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            # the subscription starts with the session: request until a line shows up
            def requested() -> bool:
                get(platform, f"{app}.localhost", "/tail-probe")
                return any('path="/tail-probe"' in line for line in seen)

            wait_for(requested, what="the router's line in logs --tail")
            assert all(" ouro[" in line for line in seen)
        finally:
            client.kill()
        reader.join(timeout=10)


def test_a_tail_ends_when_the_platform_stops(
    tmp_path: Path, keys: dict[str, SshKey]
) -> None:
    """Ctrl-C on `ouro up` does not wait out the grace period for a `logs --tail`."""
    platform = start_platform(tmp_path, keys, {"OURO_GRACE_PERIOD": "120"})
    command = [*platform.ssh_command(keys["admin"]), "git@127.0.0.1", "logs -a ouro --tail"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as client:
        try:
            assert client.stdout is not None
            assert b"ouro[" in client.stdout.readline()  # the tail is on
            assert platform.stop() == 0
            _, err = client.communicate(timeout=DEADLINE)
        finally:
            client.kill()
    assert client.returncode == 1
    assert b"the log stream ended: the platform's SSH server is stopping" in err


def test_bad_log_options(platform: Platform, keys: dict[str, SshKey], app: str) -> None:
    bob = keys["bob"]
    refused(platform.ssh(bob, "logs", "-a", app, "-n", "1501"), "between 0 and 1500")
    refused(platform.ssh(bob, "logs", "-a", app, "-n", "x"), "invalid int")
    refused(platform.ssh(bob, "logs", "-a", app, "--ps", "web;rm"), "not a process type")
    refused(platform.ssh(bob, "logs", "-a", app, "-s", "other"), "invalid choice")
    refused(platform.ssh(keys["carol"], "logs", "-a", app), "Couldn't find that app")
