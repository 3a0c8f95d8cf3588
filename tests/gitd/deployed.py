"""Shared by the end-to-end tests of the runtime commands: a platform with short
timeouts, a small Procfile app pushed to it, and HTTP through the router."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import start_platform
from tests.harness import Platform, SshKey, get, make_repo, ok, refused, wait_for

__all__ = ["get", "ok", "refused"]  # used from here by the runtime command tests

#: a web process that serves its directory, and a worker that logs every second
PROCFILE = (
    "web: python3 -m http.server $PORT --bind 127.0.0.1\n"
    "worker: while true; do echo tick; sleep 1; done\n"
)
#: short enough that a stopped process does not hold a test up
SETTINGS = {"OURO_BOOT_TIMEOUT": "10", "OURO_GRACE_PERIOD": "2", "OURO_MAX_SCALE": "5"}


def platform_fixture(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SshKey], name: str
) -> Iterator[Platform]:
    platform = start_platform(tmp_path_factory.mktemp(name), keys, SETTINGS)
    try:
        yield platform
    finally:
        assert platform.stop() == 0


def deploy(
    platform: Platform, key: SshKey, folder: Path, app: str, files: dict[str, str] | None = None
) -> Path:
    """Push a Procfile app as `app`; returns its work tree. The push succeeds only
    once the release runs (DESIGN §1), so the app answers when this returns."""
    repo = make_repo(
        folder / app, files or {"Procfile": PROCFILE, "index.html": f"<h1>{app}</h1>\n"}
    )
    pushed = platform.git(key, "push", platform.url(app), "main", cwd=repo, check=False)
    assert pushed.returncode == 0, pushed.stderr
    return repo


def logs(platform: Platform, key: SshKey, app: str, *args: str) -> str:
    return ok(platform.ssh(key, "logs", "-a", app, "-n", "1500", *args))


def wait_for_log(platform: Platform, key: SshKey, app: str, text: str, *args: str) -> str:
    """The first log line holding `text`, once there is one."""

    def find() -> str | None:
        return next((ln for ln in logs(platform, key, app, *args).splitlines() if text in ln), None)

    found = wait_for(find, what=f"{text!r} in the logs of {app}")
    return str(found)


def ps_states(platform: Platform, key: SshKey, app: str) -> dict[str, str]:
    """`{name: state}` from `ps`."""
    out = ok(platform.ssh(key, "ps", "-a", app))
    states = {}
    for line in out.splitlines():
        name, sep, rest = line.partition(": ")
        if sep and not line.startswith("===") and "." in name:
            states[name] = rest.split()[0]
    return states
