"""A real platform for end-to-end tests: `ouro up` in a temporary home, on port 0,
driven with the real OpenSSH client and the real git.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

#: a web server that, on SIGTERM, finishes the request it is serving and exits,
#: as any production server does (gunicorn, uvicorn, puma)
GRACEFUL_SERVER = """\
import http.server, os, signal, threading
VERSION = {version!r}
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = VERSION.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
server.daemon_threads = False
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
server.server_close()
"""

DEADLINE = 30.0
#: the `ouro` command, run from this checkout's interpreter
OURO = (sys.executable, "-m", "runtime.cli")


class Background(threading.Thread):
    """A loop in a thread, run for the length of a `with` block: `run` goes on until
    `done` is set."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.done = threading.Event()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()


class RequestLoop(Background):
    """Sequential GETs through the router, each on a new connection: what a deploy
    must not disturb. Counts failures; notes when each body was first served."""

    def __init__(self, port: int, host: str) -> None:
        super().__init__()
        self.port, self.host = port, host
        self.bodies: list[str] = []
        self.failures: list[str] = []
        self.first_seen: dict[str, float] = {}

    def run(self) -> None:
        while not self.done.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                conn.request("GET", "/", headers={"Host": self.host})
                response = conn.getresponse()
                body = response.read().decode()
                if response.status == 200:
                    self.bodies.append(body)
                    self.first_seen.setdefault(body, time.monotonic())
                else:
                    self.failures.append(f"{response.status} {response.getheader('X-Ouro-Error')}")
            except OSError as e:
                self.failures.append(repr(e))
            finally:
                conn.close()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """A command that succeeded: its stdout."""
    assert result.returncode == 0, f"exit {result.returncode}: {result.stdout}{result.stderr}"
    return result.stdout


def refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """A refusal: exit 1, one line on stderr holding every one of `words`."""
    assert result.returncode == 1, result
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err
    return err


def get(platform: Platform, host: str, path: str = "/") -> tuple[int, str]:
    """GET through the platform's router: `(status, body)`."""
    conn = http.client.HTTPConnection("127.0.0.1", platform.http_port, timeout=30)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_for(condition: Callable[[], object], timeout: float = DEADLINE, what: str = "") -> object:
    """Poll `condition` until it returns something truthy; fail after `timeout`."""
    end = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


@dataclass(frozen=True)
class SshKey:
    name: str
    path: Path

    @property
    def public(self) -> Path:
        return self.path.with_suffix(".pub")


def make_key(folder: Path, name: str) -> SshKey:
    path = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@test", "-f", str(path)],
        check=True,
    )
    return SshKey(name, path)


class Platform:
    """One `ouro up` process group and the clients that talk to it."""

    def __init__(self, home: Path, work: Path, settings: dict[str, str] | None = None) -> None:
        self.home = home
        self.work = work
        #: OURO_* settings for `ouro up` (e.g. {"OURO_BOOT_TIMEOUT": "3"})
        self.settings = settings or {}
        self.known_hosts = work / "known_hosts"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ssh_port = 0
        self.http_port = 0

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OURO_", "GIT_"))}
        env["OURO_HOME"] = str(self.home)
        env.update(self.settings)
        return env

    def ouro(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        """Run the local `ouro` command against this home."""
        return subprocess.run(
            [*OURO, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            input=input.decode() if input else None,
        )

    def start(self, *extra: str) -> None:
        with (self.work / "up.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [*OURO, "up", "--ssh-port", "0", "--http-port", "0", *extra],
                env=self.env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wait_for(self._ready, what="the platform to come up")
        status = json.loads((self.home / "run" / "ouro.json").read_text())
        self.ssh_port, self.http_port = status["ssh_port"], status["http_port"]
        wait_for(lambda: self.ouro("status").returncode == 0, what="ouro status")

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            log = (self.work / "up.log").read_text()
            raise RuntimeError(f"ouro up exited with {self.proc.returncode}:\n{log}")
        try:
            status = json.loads((self.home / "run" / "ouro.json").read_text())
        except (OSError, ValueError):
            return False
        # A supervisor killed with SIGKILL leaves its status file: wait for ours.
        return self.proc is not None and status.get("pid") == self.proc.pid

    def stop(self, signum: int = signal.SIGINT) -> int:
        """Stop the platform as Ctrl-C does; returns its exit status."""
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        proc.send_signal(signum)
        try:
            return proc.wait(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def ssh_command(self, key: SshKey, tty: bool = False) -> list[str]:
        return [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            str(key.path),
            "-p",
            str(self.ssh_port),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "LogLevel=ERROR",
            *(["-tt"] if tty else ["-T"]),
        ]

    def ssh_raw(
        self, key: SshKey, command: str, input: str | bytes | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """`ssh git@HOST COMMAND` with the command line sent exactly as given."""
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run(
            [*self.ssh_command(key), "git@127.0.0.1", command],
            input=data if data is not None else b"",
            capture_output=True,
            timeout=timeout,
        )
        return subprocess.CompletedProcess(
            proc.args,
            proc.returncode,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
        )

    def ssh(
        self, key: SshKey, *argv: str, input: str | bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a platform command whose arguments arrive exactly as `argv`."""
        return self.ssh_raw(key, shlex.join(argv), input=input)

    def url(self, path: str) -> str:
        return f"ssh://git@127.0.0.1:{self.ssh_port}/{path}"

    def git(
        self, key: SshKey, *args: str, cwd: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env["GIT_SSH_COMMAND"] = shlex.join(self.ssh_command(key))
        env.update(
            GIT_AUTHOR_NAME="t",
            GIT_AUTHOR_EMAIL="t@t",
            GIT_COMMITTER_NAME="t",
            GIT_COMMITTER_EMAIL="t@t",
            GIT_CONFIG_NOSYSTEM="1",
            HOME=str(self.work),
        )
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd or self.work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
        return proc


def make_repo(folder: Path, files: dict[str, str] | None = None, branch: str = "main") -> Path:
    """A git work tree with one commit of `files`."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "init", "-q", "-b", branch, str(folder)], check=True, env=env)
    commit(folder, files or {"README": "hello\n"}, "first")
    return folder


def commit(folder: Path, files: dict[str, str], message: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    subprocess.run(["git", "add", "-A"], cwd=folder, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=folder, check=True, env=env)
    out = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=folder,
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def platform_repo(folder: Path) -> Path:
    """A repository of the platform's own code as this checkout has it (tracked and
    new files), in one commit: what an admin pushes to app `ouro`."""
    root = Path(__file__).resolve().parent.parent
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, capture_output=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.decode().split("\0")):
        if (root / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, folder / name)  # keeps the buildpacks' exec bits
    subprocess.run(["git", "init", "-q", "-b", "main", str(folder)], check=True)
    commit(folder, {}, "The platform")
    return folder
