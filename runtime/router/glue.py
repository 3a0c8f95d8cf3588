"""The router process's edges: its socket, route snapshots in, log lines out.

Kept apart from the proxy so the supervisor's control socket can replace the
file source and the stdout sink without touching the router itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from .table import RoutingError, RoutingTable

logger = logging.getLogger(__name__)

#: json's C string encoder: a third of the cost of json.dumps on a dict
_quote = json.encoder.encode_basestring_ascii

#: systemd's first passed file descriptor (sd_listen_fds)
LISTEN_FDS_START = 3

#: seconds log lines wait to be written together: under load, one write per loop
#: turn (a few requests) cost the router a syscall for every 2 to 7 requests
FLUSH_DELAY = 0.01


class SnapshotSource(Protocol):
    """Where routing snapshots come from: an async stream of JSON-able objects."""

    def __aiter__(self) -> AsyncIterator[Mapping[str, Any]]: ...


class LogSink(Protocol):
    def log(self, app: str, line: str) -> None: ...
    def flush(self) -> None: ...


def inherited_socket() -> socket.socket | None:
    """The listening socket passed systemd-style (LISTEN_FDS/LISTEN_PID), if ours."""
    try:
        count = int(os.environ.get("LISTEN_FDS", "0"))
        pid = int(os.environ.get("LISTEN_PID", "0"))
    except ValueError:
        return None
    if count < 1 or pid != os.getpid():
        return None
    return socket.socket(fileno=LISTEN_FDS_START)


class FileSnapshots:
    """Snapshots read from a file of JSON lines: at start, then on every SIGHUP."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def __aiter__(self) -> AsyncIterator[Mapping[str, Any]]:
        loop = asyncio.get_running_loop()
        reload = asyncio.Event()
        loop.add_signal_handler(signal.SIGHUP, reload.set)
        try:
            while True:
                for snapshot in self._read():
                    yield snapshot
                await reload.wait()
                reload.clear()
        finally:
            loop.remove_signal_handler(signal.SIGHUP)

    def _read(self) -> list[Mapping[str, Any]]:
        try:
            text = self.path.read_text()
        except OSError as e:
            logger.error("cannot read routes from %s: %s", self.path, e)
            return []
        snapshots = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                snapshots.append(json.loads(line))
            except ValueError as e:
                logger.error("%s:%d: not JSON: %s", self.path, n, e)
        return snapshots


async def follow(source: SnapshotSource, table: RoutingTable) -> None:
    """Install each snapshot the source yields; a bad one leaves the table as it was."""
    async for snapshot in source:
        try:
            table.replace(snapshot)
        except RoutingError as e:
            logger.error("routing snapshot refused: %s", e)


class _Batch:
    """Log entries written together every FLUSH_DELAY, by `_write` (which takes
    `pending`). Made on the loop it serves: asyncio.get_running_loop() costs a
    getpid() call."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.pending: list[str] = []
        self.scheduled = False

    def _add(self, entry: str) -> None:
        self.pending.append(entry)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        self.scheduled = False
        if self.pending:
            self._write()

    def _write(self) -> None:
        raise NotImplementedError


class JsonLinesSink(_Batch):
    """Log lines as JSON lines `{"app": ..., "line": ...}`, written every FLUSH_DELAY."""

    def __init__(self, out: BinaryIO) -> None:
        super().__init__()
        self.out = out

    def log(self, app: str, line: str) -> None:
        self._add(f'{{"app": {_quote(app)}, "line": {_quote(line)}}}')

    def _write(self) -> None:
        lines, self.pending = self.pending, []
        self.out.write(("\n".join(lines) + "\n").encode())
        self.out.flush()


class ControlLink(_Batch):
    """The supervisor's control socket: snapshots in, acks and log lines out.

    One connection carries both: the router asks for the `routes` stream,
    answers each installed snapshot with `{"ack": version}` (the supervisor
    stops an old generation only once every router has moved off it), and
    sends its log lines as `{"entries": [[app, line], ...]}`, every FLUSH_DELAY.
    A lost connection is reopened; the table stays as it was meanwhile.
    Log entries are kept as JSON text: json.dumps of the list costs twice as much.
    """

    RETRY = 0.5

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.writer: asyncio.StreamWriter | None = None

    async def follow(self, table: RoutingTable) -> None:
        while True:
            try:
                await self._session(table)
            except (OSError, ValueError) as e:
                logger.warning("control socket %s: %s", self.path, e)
            self.writer = None
            await asyncio.sleep(self.RETRY)

    async def _session(self, table: RoutingTable) -> None:
        reader, writer = await asyncio.open_unix_connection(str(self.path), limit=1 << 24)
        self.writer = writer
        writer.write(b'{"v": 1, "op": "routes"}\n')
        while line := await reader.readline():
            snapshot = json.loads(line)
            try:
                table.replace(snapshot)
            except RoutingError as e:
                logger.error("routing snapshot refused: %s", e)
                continue
            writer.write(json.dumps({"ack": snapshot.get("version", 0)}).encode() + b"\n")

    def log(self, app: str, line: str) -> None:
        self._add(f"[{_quote(app)}, {_quote(line)}]")

    def _write(self) -> None:
        if self.writer is not None and not self.writer.is_closing():
            entries, self.pending = self.pending, []
            self.writer.write(f'{{"entries": [{", ".join(entries)}]}}\n'.encode())
        elif len(self.pending) > 10_000:  # no supervisor to take them: keep the newest
            del self.pending[:-10_000]
