"""Running one buildpack script: cleared environment, own process group,
optional privilege drop, output streamed line by line, a deadline.

Every script starts a new session so that a timeout (or stray children left
behind by a script that exited) can be killed as one process group.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.users import AppUser

# After the script itself exits, its output pipes may still be held open by a
# child that left the process group (setsid); stop reading after this long.
EXIT_DRAIN_SECONDS = 5.0
READ_SIZE = 65536
# A script printing without newlines (a progress bar, binary junk) still gets
# its output shown, in pieces, and never grows memory without bound.
MAX_LINE = 65536
MAX_CAPTURE = 1 << 20


@dataclass(frozen=True)
class Sandbox:
    """How every buildpack process of one build runs."""

    env: Mapping[str, str]
    user: AppUser | None
    deadline: float  # time.monotonic() value
    log: Callable[[str], None]

    def with_env(self, env: Mapping[str, str]) -> Sandbox:
        return Sandbox(dict(env), self.user, self.deadline, self.log)


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None when killed at the deadline
    stdout: str  # only when captured; otherwise stdout went to the log

    @property
    def timed_out(self) -> bool:
        return self.status is None


def run(argv: Sequence[str], sandbox: Sandbox, *, cwd: Path, capture: bool = False) -> Outcome:
    """Run ``argv`` to completion or to the sandbox's deadline.

    With ``capture`` stdout is returned and only stderr is logged (``bin/detect``
    and ``bin/release`` answer on stdout); otherwise both go to the log.
    Raises ``OSError`` when the program cannot be started.
    """
    drop = user_to_drop_to(sandbox.user)
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(sandbox.env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if capture else subprocess.STDOUT,
        start_new_session=True,
        user=drop.uid if drop else None,
        group=drop.gid if drop else None,
        extra_groups=list(drop.groups) if drop else None,
        umask=0o022 if drop else -1,
    )
    try:
        captured = _pump(proc, sandbox, capture)
    finally:
        _kill_group(proc.pid)
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    if captured is None:
        return Outcome(None, "")
    return Outcome(proc.returncode, captured.decode("utf-8", "replace"))


def user_to_drop_to(user: AppUser | None) -> AppUser | None:
    """The user to switch to, or None when the build already runs as it."""
    if user is None or user.uid == os.geteuid():
        return None
    return user


def _pump(proc: subprocess.Popen[bytes], sandbox: Sandbox, capture: bool) -> bytes | None:
    """Copy output to the log until the process exits; None on timeout."""
    if proc.stdout is None:
        raise RuntimeError("Popen was given stdout=PIPE but has no pipe")
    stdout_fd = proc.stdout.fileno()
    streams = {stdout_fd: _LineBuffer(sandbox.log)}
    captured = bytearray()
    if capture and proc.stderr is not None:
        streams[proc.stderr.fileno()] = _LineBuffer(sandbox.log)
    pidfd = os.pidfd_open(proc.pid)
    deadline = sandbox.deadline
    with selectors.DefaultSelector() as selector:
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        selector.register(pidfd, selectors.EVENT_READ)
        try:
            while streams or pidfd >= 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None if pidfd >= 0 else bytes(captured)
                for key, _ in selector.select(remaining):
                    if key.fd == pidfd:
                        # The script is done: whatever it left running goes too.
                        _kill_group(proc.pid)
                        selector.unregister(pidfd)
                        os.close(pidfd)
                        pidfd = -1
                        deadline = min(deadline, time.monotonic() + EXIT_DRAIN_SECONDS)
                        continue
                    data = os.read(key.fd, READ_SIZE)
                    if capture and key.fd == stdout_fd:
                        captured += data[: MAX_CAPTURE - len(captured)]
                    else:
                        streams[key.fd].feed(data)
                    if not data:
                        selector.unregister(key.fd)
                        streams.pop(key.fd).close()
        finally:
            if pidfd >= 0:
                os.close(pidfd)
    return bytes(captured)


def _kill_group(pgid: int) -> None:
    # ProcessLookupError: the group is already gone.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


class _LineBuffer:
    """Turns chunks of bytes into complete lines for the log callback."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self._log = log
        self._pending = b""

    def feed(self, data: bytes) -> None:
        *lines, self._pending = (self._pending + data).split(b"\n")
        for line in lines:
            self._emit(line)
        while len(self._pending) > MAX_LINE:
            self._emit(self._pending[:MAX_LINE])
            self._pending = self._pending[MAX_LINE:]

    def close(self) -> None:
        if self._pending:
            self._emit(self._pending)
        self._pending = b""

    def _emit(self, line: bytes) -> None:
        self._log(line.rstrip(b"\r").decode("utf-8", "replace"))
