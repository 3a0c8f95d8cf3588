"""The platform after a crash: SIGKILL the supervisor, start again, nothing is left over."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from pathlib import Path

from tests.conftest import start_platform
from tests.harness import SshKey, make_repo, wait_for

# The web process forks a daemon-like child into its process group: the
# supervisor's death signal reaches only the direct child.
PROCFILE = (
    "web: sleep 600 & echo $! > /tmp/$OURO_TEST_MARK;"
    " python3 -m http.server $PORT --bind 127.0.0.1\n"
)


def _get(port: int, app: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/", headers={"Host": f"{app}.localhost"})
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


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
        assert _get(platform.http_port, "phoenix") == 200
        daemon = int(
            wait_for(lambda: marker.exists() and marker.read_text().strip(), what="marker")
        )  # type: ignore[arg-type]
        assert _alive(daemon)

        supervisor = json.loads((platform.home / "run" / "ouro.json").read_text())["pid"]
        assert platform.proc is not None
        platform.proc.send_signal(signal.SIGKILL)
        platform.proc.wait(timeout=30)
        assert supervisor == platform.proc.pid
        platform.proc = None

        platform.start()
        wait_for(lambda: not _alive(daemon), what="the old generation's daemon to be killed")
        wait_for(lambda: _get(platform.http_port, "phoenix") == 200, what="the app to be back")
    finally:
        platform.stop()
        marker.unlink(missing_ok=True)
