"""gitd on its own (as the supervisor starts it, with `LISTEN_FDS`), in a temporary home.

`ouro up` runs the receive pipeline as the push hook, so every push there is a
build; the git tests want the git server alone, with a hook they choose
(OURO_GIT_HOOK, which the supervisor does not pass on yet).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Platform, SshKey

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def standalone_gitd(
    root: Path, keys: dict[str, SshKey], hook: str, env: dict[str, str] | None = None
) -> Iterator[Platform]:
    """A gitd serving `hook`; `admin`, `bob` and `carol` registered (admin first)."""
    (root / "work").mkdir(parents=True)
    platform = Platform(root / "home", root / "work")
    for name in ("admin", "bob", "carol"):
        added = platform.ouro("keys:add", "--name", name, str(keys[name].public))
        assert added.returncode == 0, added.stderr
    (platform.home / "repos").mkdir(parents=True, exist_ok=True)
    sock = socket.create_server(("127.0.0.1", 0))
    platform.ssh_port = int(sock.getsockname()[1])
    full_env = {
        **platform.env, **(env or {}),
        "LISTEN_FDS": "1", "OURO_GIT_HOOK": hook, "OURO_GIT_WORKERS": "2",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }

    def listen_on_fd3() -> None:
        # Between fork and exec, before the other descriptors are closed.
        os.dup2(sock.fileno(), 3)

    with open(root / "gitd.log", "wb") as log:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$@"', "gitd", sys.executable, "-m", "gitd"],
            env=full_env, cwd=root, pass_fds=(3,), preexec_fn=listen_on_fd3,
            start_new_session=True, stdout=subprocess.PIPE, stderr=log,
        )
    sock.close()
    try:
        assert proc.stdout is not None
        with proc.stdout:
            started = proc.stdout.readline()
        assert b"listening" in started, (root / "gitd.log").read_text()
        yield platform
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) == 0
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def git_platform(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SshKey]
) -> Iterator[Platform]:
    """gitd with the hook that accepts every push: git alone, no builds."""
    with standalone_gitd(tmp_path_factory.mktemp("gitd"), keys, "accept") as platform:
        yield platform


@pytest.fixture(scope="module")
def hooked_gitd(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SshKey]
) -> Iterator[tuple[Platform, Path]]:
    """gitd running `tests.gitd.push_hooks:GatedHook`, and the hook's gate folder."""
    root = tmp_path_factory.mktemp("hooked")
    gates = root / "gates"
    gates.mkdir()
    hook = "tests.gitd.push_hooks:GatedHook"
    with standalone_gitd(root, keys, hook, {"OURO_TEST_HOOK_DIR": str(gates)}) as platform:
        yield platform, gates
