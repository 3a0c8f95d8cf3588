"""One-off processes: `run` (`run.N`), the release phase (`release.N`), cron (`scheduler.N`).

An attached one-off is relayed over its control connection in frames (see
`runtime.frames`): stdin goes in, stdout and stderr come out, and the exit
status ends the stream. A client that goes away takes its one-off with it.
A detached one-off writes to the app's log. Neither is ever restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import signal
import struct
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.control import Connection, ControlError
from runtime.frames import EXIT, RESIZE, STDERR, STDIN, STDIN_EOF, STDOUT, read_frame, write_frame
from runtime.names import SYSTEM_APP
from runtime.process import Child, ProcessSpec
from runtime.store import Release

if TYPE_CHECKING:
    from runtime.supervisor import Supervisor

KILL_AFTER = 10.0


@dataclass
class OneOff:
    spec: ProcessSpec
    child: Child
    since: float
    command: str
    #: relayed to a client through this supervisor (so it cannot be handed over)
    attached: bool = False


@dataclass(frozen=True)
class RunRequest:
    app: str
    type: str
    command: str
    env: dict[str, str]
    tty: bool
    detached: bool
    rows: int
    cols: int
    timeout: float | None
    #: the release to run in (the release phase runs in its new release); None: current
    version: int | None = None


class OneOffs:
    """The running one-offs of every app, by `(app, name)`."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        self.running: dict[tuple[str, str], OneOff] = {}
        self._counters: dict[tuple[str, str], int] = {}

    def of(self, app: str) -> list[OneOff]:
        return [o for (a, _), o in self.running.items() if a == app]

    def _spec(self, request: RunRequest) -> ProcessSpec:
        store = self._supervisor.require_store()
        if request.version is not None:
            release: Release | None = store.release(request.app, request.version)
        else:
            release = store.current_release(request.app)
        if request.app == SYSTEM_APP:
            raise ControlError(f"{SYSTEM_APP} runs from its installed code: nothing to run in")
        if release is None or release.slug is None:
            raise ControlError(f"{request.app} has no release to run: push it first")
        key = (request.app, request.type)
        self._counters[key] = self._counters.get(key, 0) + 1
        plan = self._supervisor.plan(release)
        spec = plan.spec(request.type, self._counters[key], None, request.command)
        return replace(spec, env={**spec.env, **request.env})

    async def run(self, request: RunRequest, conn: Connection) -> None:
        spec = self._spec(request)
        bus = self._supervisor.bus
        source = f"ouro[{spec.name}]"
        bus.emit(request.app, source, f"Starting process with command `{request.command}`")
        if request.detached:
            child = self._start(spec, request)
            await conn.reply({"ok": True, "name": spec.name, "pid": child.pid})
            return
        if request.tty:
            await self._attached_tty(spec, request, conn)
        else:
            await self._attached_pipes(spec, request, conn)

    def _callbacks(
        self, spec: ProcessSpec
    ) -> tuple[Callable[[str], None], Callable[[Child], None]]:
        bus = self._supervisor.bus

        def exited(child: Child) -> None:
            self.running.pop((spec.app, spec.name), None)
            bus.emit(
                spec.app, f"ouro[{spec.name}]", f"Process exited with status {child.exit_status}"
            )

        return (lambda line: bus.emit(spec.app, f"app[{spec.name}]", line)), exited

    def _start(self, spec: ProcessSpec, request: RunRequest) -> Child:
        on_line, on_exit = self._callbacks(spec)
        child = Child(spec, on_line=on_line, on_exit=on_exit)
        self.running[(spec.app, spec.name)] = OneOff(
            spec, child, time.time(), request.command, attached=not request.detached
        )
        self._supervisor.children_changed()
        if request.timeout:
            loop = asyncio.get_running_loop()
            loop.call_later(request.timeout, _stop, child)
        return child

    async def _attached_pipes(
        self, spec: ProcessSpec, request: RunRequest, conn: Connection
    ) -> None:
        stdin_r, stdin_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            child = self._start(replace(spec, stdio=(stdin_r, out_w, err_w)), request)
        finally:
            for fd in (stdin_r, out_w, err_w):
                os.close(fd)
        await conn.reply({"ok": True, "name": spec.name, "pid": child.pid})
        await _relay(conn, child, stdin_w, {STDOUT: out_r, STDERR: err_r}, tty=False)

    async def _attached_tty(self, spec: ProcessSpec, request: RunRequest, conn: Connection) -> None:
        master, slave = pty.openpty()
        _set_size(master, request.rows, request.cols)
        try:
            child = self._start(replace(spec, stdio=(slave, slave, slave), tty=True), request)
        finally:
            os.close(slave)
        await conn.reply({"ok": True, "name": spec.name, "pid": child.pid})
        await _relay(conn, child, os.dup(master), {STDOUT: master}, tty=True)

    def export(self) -> dict[str, Any]:
        """Detached one-offs and the counters, for the next supervisor of this process."""
        records = []
        for oneoff in self.running.values():
            oneoff.child.unwatch()
            spec = oneoff.spec
            records.append({
                "app": spec.app, "type": spec.type, "index": spec.index,
                "pid": oneoff.child.pid, "start": oneoff.child.start_time,
                "out": oneoff.child.out_fd, "command": oneoff.command, "since": oneoff.since,
                "env": spec.env, "cwd": str(spec.cwd), "argv": list(spec.argv),
            })  # fmt: skip
        counters = [[app, type_, n] for (app, type_), n in self._counters.items()]
        return {"running": records, "counters": counters}

    def adopt(self, state: dict[str, Any]) -> None:
        for app, type_, n in state["counters"]:
            self._counters[(app, type_)] = n
        for record in state["running"]:
            spec = ProcessSpec(
                app=record["app"], type=record["type"], index=record["index"],
                argv=tuple(record["argv"]), env=record["env"], cwd=Path(record["cwd"]),
            )  # fmt: skip
            on_line, on_exit = self._callbacks(spec)
            pid, started, out = record["pid"], record["start"], record["out"]
            child = Child.adopt(spec, pid, started, out, on_line, on_exit)
            self.running[(spec.app, spec.name)] = OneOff(
                spec, child, record["since"], record["command"]
            )

    def kill(self, app: str, name: str, signum: int) -> bool:
        oneoff = self.running.get((app, name))
        if oneoff is None:
            return False
        oneoff.child.signal(signum)
        return True

    async def shutdown(self) -> None:
        children = [o.child for o in self.running.values()]
        for child in children:
            _stop(child)
        if children:
            await asyncio.wait({c.exited for c in children})


def _stop(child: Child) -> None:
    child.signal(signal.SIGTERM)
    asyncio.get_running_loop().call_later(KILL_AFTER, child.signal, signal.SIGKILL)


def _set_size(fd: int, rows: int, cols: int) -> None:
    if rows > 0 and cols > 0:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class _Sink:
    """The child's stdin, closed exactly once."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


async def _relay(
    conn: Connection, child: Child, stdin_fd: int, outputs: dict[int, int], tty: bool
) -> None:
    """Copy frames in and output out until the child exits and its output is drained."""
    loop = asyncio.get_running_loop()
    sink = _Sink(stdin_fd)
    pumps = [asyncio.ensure_future(_pump_out(loop, fd, kind, conn)) for kind, fd in outputs.items()]
    feeder = asyncio.ensure_future(_pump_in(conn, sink, tty))
    waiting: set[asyncio.Future[Any]] = {child.exited, feeder}
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    if not child.exited.done():  # the client went away: so does its one-off
        _stop(child)
        await child.exited
    for pump in pumps:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(pump), timeout=2.0)
        pump.cancel()
    feeder.cancel()
    sink.close()
    with contextlib.suppress(ConnectionError, RuntimeError):
        write_frame(conn.writer, EXIT, str(child.exit_status).encode())
        await conn.writer.drain()
    # The client may still be writing (its stdin racing the exit). Closing with its
    # bytes unread would reset the connection, and the client could lose the EXIT
    # frame it has yet to read: let it close first (it does once it has EXIT).
    with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
        await asyncio.wait_for(conn.closed(), timeout=KILL_AFTER)


async def _pump_out(loop: asyncio.AbstractEventLoop, fd: int, kind: int, conn: Connection) -> None:
    os.set_blocking(fd, False)
    ready = asyncio.Event()
    loop.add_reader(fd, ready.set)
    try:
        while True:
            await ready.wait()
            ready.clear()
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except OSError:  # EIO: the terminal's last holder is gone
                return
            if not data:
                return
            write_frame(conn.writer, kind, data)
            await conn.writer.drain()
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def _pump_in(conn: Connection, sink: _Sink, tty: bool) -> None:
    """Client frames to the child's stdin; returns when the client goes away."""
    loop = asyncio.get_running_loop()
    while (frame := await read_frame(conn.reader)) is not None:
        kind, payload = frame
        if kind == STDIN and sink.fd >= 0:
            try:
                await loop.run_in_executor(None, _write_all, sink.fd, payload)
            except OSError:
                sink.close()
        elif kind == STDIN_EOF and not tty:
            sink.close()
        elif kind == RESIZE and tty and sink.fd >= 0:
            rows, cols = (int(x) for x in payload.split())
            with contextlib.suppress(OSError):
                _set_size(sink.fd, rows, cols)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
