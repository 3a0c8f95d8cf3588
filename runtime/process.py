"""One supervised process: what to run (`ProcessSpec`) and the running child.

A child starts in its own session (so its whole group can be signalled), dies
with the supervisor (`PR_SET_PDEATHSIG`), gets its listening sockets at fd 3...
(`LISTEN_FDS`), and has stdout and stderr merged into one pipe that the
supervisor reads line by line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import fcntl
import os
import resource
import signal
import socket
import subprocess
import termios
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runtime.leftovers import start_time
from runtime.sockets import LISTEN_FDS_START
from runtime.users import AppUser

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


class State(enum.StrEnum):
    STARTING = "starting"
    UP = "up"
    CRASHED = "crashed"
    DOWN = "down"


@dataclass(frozen=True)
class ProcessSpec:
    """What to run for one process `TYPE.N` of an app."""

    app: str
    type: str
    index: int
    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    user: AppUser | None = None
    sockets: tuple[socket.socket, ...] = field(default=(), compare=False)
    #: stdin, stdout, stderr fds for an attached one-off; None: output goes to the log
    stdio: tuple[int, int, int] | None = field(default=None, compare=False)
    #: stdin is a terminal that becomes the process's controlling terminal
    tty: bool = False

    @property
    def name(self) -> str:
        return f"{self.type}.{self.index}"


#: limits of an app's processes: NPROC counts per uid, so per app (each has its own)
APP_LIMITS = ((resource.RLIMIT_NOFILE, 10_240), (resource.RLIMIT_NPROC, 1_024))


def _child_setup(tty: bool, limited: bool) -> None:
    # Runs in the child between fork and exec (after setsid and setuid, which
    # would clear the death signal): no logging, no locks.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the supervisor died before the prctl took effect
        os._exit(1)
    if tty:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    if limited:
        for kind, wanted in APP_LIMITS:
            _, hard = resource.getrlimit(kind)
            cap = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            resource.setrlimit(kind, (cap, cap))


class Child:
    """A running process of a `ProcessSpec`, watched through a pidfd."""

    def __init__(
        self,
        spec: ProcessSpec,
        on_line: Callable[[str], None],
        on_exit: Callable[[Child], None],
    ) -> None:
        popen = _spawn(spec)
        out_fd = None
        if popen.stdout is not None:
            # Kept as a bare fd: a supervisor that re-executes hands it to its successor.
            out_fd = os.dup(popen.stdout.fileno())
            popen.stdout.close()
        self._popen: subprocess.Popen[bytes] | None = popen
        self._watch(spec, popen.pid, start_time(popen.pid), out_fd, on_line, on_exit)

    @classmethod
    def adopt(
        cls,
        spec: ProcessSpec,
        pid: int,
        started: int | None,
        out_fd: int | None,
        on_line: Callable[[str], None],
        on_exit: Callable[[Child], None],
    ) -> Child:
        """Watch a child a previous supervisor in this same process started (re-exec)."""
        child = cls.__new__(cls)
        child._popen = None
        child._watch(spec, pid, started, out_fd, on_line, on_exit)
        # It may have exited while nobody watched: look once the caller holds it.
        asyncio.get_running_loop().call_soon(child._reap)
        return child

    def _watch(
        self,
        spec: ProcessSpec,
        pid: int,
        started: int | None,
        out_fd: int | None,
        on_line: Callable[[str], None],
        on_exit: Callable[[Child], None],
    ) -> None:
        self.spec = spec
        self.pid = pid
        #: when the child started (clock ticks since boot): tells it from a reused pid
        self.start_time = started
        self.returncode: int | None = None
        self._on_exit = on_exit
        self._reader = LineReader(on_line)
        self.out_fd = out_fd
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = loop.create_future()
        self._pidfd = os.pidfd_open(pid)
        loop.add_reader(self._pidfd, self._reap)
        if out_fd is not None:
            os.set_blocking(out_fd, False)
            loop.add_reader(out_fd, self._read_output)

    def unwatch(self) -> None:
        """Stop watching (before a re-exec): the child and its output pipe live on."""
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        if self.out_fd is not None:
            loop.remove_reader(self.out_fd)
            os.set_inheritable(self.out_fd, True)

    def signal(self, signum: int) -> None:
        """Signal the child's whole process group; a gone group is not an error."""
        if self.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def _read_output(self) -> None:
        if self.out_fd is None:
            return
        try:
            data = os.read(self.out_fd, 65536)
        except BlockingIOError:
            return
        if data:
            self._reader.feed(data)
            return
        asyncio.get_running_loop().remove_reader(self.out_fd)
        self._reader.flush()

    def _reap(self) -> None:
        if self.returncode is not None:
            return
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, 0  # reaped elsewhere: nothing more to learn
        if pid == 0:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._drain_output()
        self.returncode = os.waitstatus_to_exitcode(status) if status else 0
        if self._popen is not None:
            self._popen.returncode = self.returncode
        # The group may outlive its leader (daemons it forked): they go with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if not self.exited.done():
            self.exited.set_result(self.exit_status)
        self._on_exit(self)

    def _drain_output(self) -> None:
        fd = self.out_fd
        if fd is None:
            return
        asyncio.get_running_loop().remove_reader(fd)
        while True:
            try:
                data = os.read(fd, 65536)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            self._reader.feed(data)
        self._reader.flush()
        os.close(fd)
        self.out_fd = None

    @property
    def exit_status(self) -> int:
        """The status as a shell reports it: 128+N for death by signal N."""
        code = self.returncode or 0
        return 128 - code if code < 0 else code


class LineReader:
    """Splits a byte stream into text lines; a line never waits past 64 KiB."""

    LIMIT = 65536

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._on_line = on_line
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) >= self.LIMIT:
                    self._emit(bytes(self._buffer[: self.LIMIT]))
                    del self._buffer[: self.LIMIT]
                    continue
                return
            self._emit(bytes(self._buffer[:end]))
            del self._buffer[: end + 1]

    def flush(self) -> None:
        if self._buffer:
            self._emit(bytes(self._buffer))
            self._buffer.clear()

    def _emit(self, raw: bytes) -> None:
        self._on_line(raw.decode("utf-8", "replace").rstrip("\r"))


def _spawn(spec: ProcessSpec) -> subprocess.Popen[bytes]:
    argv = list(spec.argv)
    env = dict(spec.env)
    fds = [s.fileno() for s in spec.sockets]
    if fds:
        # LISTEN_PID must name the child itself, known only after the fork:
        # the shell's `$$` is that pid, and `exec` keeps it.
        env["LISTEN_FDS"] = str(len(fds))
        argv = ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$@"', "ouro-listen", *argv]
    user = spec.user
    stdin, stdout, stderr = spec.stdio or (subprocess.DEVNULL, subprocess.PIPE, subprocess.STDOUT)
    return subprocess.Popen(
        argv,
        env=env,
        cwd=spec.cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        pass_fds=_arrange_fds(fds),
        preexec_fn=_setup(fds, spec.tty, limited=user is not None),
        user=user.uid if user else None,
        group=user.gid if user else None,
        extra_groups=list(user.groups) if user else None,
    )


def _arrange_fds(fds: list[int]) -> tuple[int, ...]:
    # Only the target numbers are kept open: the originals close with the rest.
    return tuple(range(LISTEN_FDS_START, LISTEN_FDS_START + len(fds)))


def _setup(fds: list[int], tty: bool, limited: bool) -> Callable[[], None]:
    def setup() -> None:
        _child_setup(tty, limited)
        # Move the sockets to 3, 4, ...: first out of the way, then into place,
        # so that a socket already sitting at a target number is not clobbered.
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 1024) for fd in fds]
        for index, fd in enumerate(moved):
            os.dup2(fd, LISTEN_FDS_START + index)
            os.close(fd)

    return setup
