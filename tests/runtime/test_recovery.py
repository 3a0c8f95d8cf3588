"""The platform after a crash: SIGKILL the supervisor, start again, nothing is left over."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.conftest import start_platform
from tests.harness import Platform, SshKey, alive, get, make_repo, wait_for

# The web process forks a daemon-like child into its process group: the
# supervisor's death signal reaches only the direct child.
PROCFILE = (
    "web: sleep 600 & echo $! > /tmp/$OURO_TEST_MARK;"
    " python3 -m http.server $PORT --bind 127.0.0.1\n"
)


def _status(platform: Platform) -> int:
    """The app's answer through the router, 0 while the platform restarts."""
    try:
        return get(platform, "phoenix.localhost")[0]
    except OSError:
        return 0


def test_sigkill_of_the_supervisor_leaves_nothing_behind(
    tmp_path: Path, keys: dict[str, SshKey]
) -> None:
    mark = f"ouro-test-{os.getpid()}-{time.monotonic_ns()}"
    platform = start_platform(tmp_path, keys)
    marker = Path("/tmp") / mark
    try:
        admin = keys["admin"]
        assert platform.ssh(admin, "apps:create", "phoenix").returncode == 0
        assert (
            platform.ssh(admin, "config:set", "-a", "phoenix", f"OURO_TEST_MARK={mark}").returncode
            == 0
        )
        repo = make_repo(tmp_path / "src", {"Procfile": PROCFILE, "index.html": "hi\n"})
        assert (
            platform.git(admin, "push", platform.url("phoenix"), "main", cwd=repo).returncode == 0
        )
        assert _status(platform) == 200
        daemon = int(
            wait_for(lambda: marker.exists() and marker.read_text().strip(), what="marker")
        )  # type: ignore[arg-type]
        assert alive(daemon)

        supervisor = json.loads((platform.home / "run" / "ouro.json").read_text())["pid"]
        assert platform.proc is not None
        platform.proc.send_signal(signal.SIGKILL)
        platform.proc.wait(timeout=30)
        assert supervisor == platform.proc.pid
        platform.proc = None

        platform.start()
        wait_for(lambda: not alive(daemon), what="the old generation's daemon to be killed")
        wait_for(lambda: _status(platform) == 200, what="the app to be back")
    finally:
        platform.stop()
        marker.unlink(missing_ok=True)
