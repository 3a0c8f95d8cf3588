"""The supervisor's control socket: JSON lines over a Unix socket in `run/`.

A request is one object `{"v": 1, "op": NAME, ...}`; the answer is one object
`{"ok": true, ...}` or `{"ok": false, "error": "one line"}`. Streaming ops
answer with several objects on the same connection until either side closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROTOCOL_VERSION = 1
MAX_MESSAGE = 1 << 20

log = logging.getLogger(__name__)

Message = dict[str, Any]


@dataclass(eq=False)
class Connection:
    """One client of the control socket, as a handler sees it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def reply(self, message: Message) -> None:
        self.writer.write(json.dumps(message).encode() + b"\n")
        await self.writer.drain()

    def peer_pid(self) -> int:
        """The pid of the process at the other end (SO_PEERCRED)."""
        sock = self.writer.get_extra_info("socket")
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid: int = struct.unpack("3i", creds)[0]
        return pid

    async def closed(self) -> None:
        """Wait until the client goes away (its stream ends)."""
        while await self.reader.read(65536):
            pass


Handler = Callable[[Message, Connection], Awaitable[Message | None]]


class ControlError(Exception):
    """The supervisor could not be reached or refused a request."""


class ControlServer:
    """Serves `handlers[op]` for each request; a handler may stream via `reply`."""

    def __init__(self, path: Path, handlers: Mapping[str, Handler]) -> None:
        self._path = path
        self._handlers = handlers
        self._server: asyncio.Server | None = None
        #: requests being answered now, by op
        self.in_flight: Counter[str] = Counter()

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen at the path, or on `sock`: the same socket a previous supervisor of
        this process listened on (re-exec), so clients never find it missing."""
        if sock is not None:
            self._server = await asyncio.start_unix_server(
                self._serve, sock=sock, limit=MAX_MESSAGE
            )
            return
        self._path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(
            self._serve, path=self._path, limit=MAX_MESSAGE
        )
        self._path.chmod(0o600)

    def handover(self) -> int:
        """The listening socket's fd, kept open across an exec."""
        if self._server is None or not self._server.sockets:
            raise ControlError("the control socket is not listening")
        fd: int = self._server.sockets[0].fileno()
        os.set_inheritable(fd, True)
        return fd

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(reader, writer)
        try:
            while line := await reader.readline():
                answer = await self._dispatch(line, conn)
                if answer is None:
                    break  # a streaming op used the connection up
                await conn.reply(answer)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _dispatch(self, line: bytes, conn: Connection) -> Message | None:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            return {"ok": False, "error": "not a JSON line"}
        if message.get("v") != PROTOCOL_VERSION:
            return {"ok": False, "error": f"unsupported protocol version {message.get('v')!r}"}
        handler = self._handlers.get(message.get("op", ""))
        if handler is None:
            return {"ok": False, "error": f"unknown op {message.get('op')!r}"}
        op = message["op"]
        self.in_flight[op] += 1
        try:
            return await handler(message, conn)
        except ControlError as e:
            return {"ok": False, "error": str(e)}
        except (KeyError, TypeError, ValueError) as e:  # a malformed request, not a crash
            return {"ok": False, "error": f"bad {op} request: {e!r}"}
        finally:
            self.in_flight[op] -= 1


async def open_stream(
    path: Path, op: str, **fields: Any
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Send one request and hand back the connection, for ops that stream."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_MESSAGE)
    except OSError as e:
        raise ControlError(f"the supervisor does not answer at {path}: {e}") from None
    message = {"v": PROTOCOL_VERSION, "op": op, **fields}
    writer.write(json.dumps(message).encode() + b"\n")
    await writer.drain()
    return reader, writer


def request(path: Path, op: str, timeout: float = 10.0, **fields: Any) -> Message:
    """One blocking request/response; raises `ControlError` when unreachable or refused."""
    message = {"v": PROTOCOL_VERSION, "op": op, **fields}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps(message).encode() + b"\n")
            with sock.makefile("rb") as stream:
                line = stream.readline(MAX_MESSAGE)
    except OSError as e:
        raise ControlError(f"the supervisor does not answer at {path}: {e}") from None
    if not line:
        raise ControlError("the supervisor closed the connection")
    answer: Message = json.loads(line)
    if not answer.get("ok"):
        raise ControlError(answer.get("error", "request refused"))
    return answer


def run_attached(
    path: Path, on_output: Callable[[bytes], None], timeout: float | None = None, **fields: Any
) -> int:
    """Run a one-off with no input, handing its output to `on_output`; returns its status.

    Blocking: for callers off the event loop (the receive pipeline).
    """
    from runtime.frames import EXIT, STDIN_EOF, pack_frame, read_frame_blocking

    message = {"v": PROTOCOL_VERSION, "op": "run", **fields}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps(message).encode() + b"\n" + pack_frame(STDIN_EOF))
            with sock.makefile("rb") as stream:
                answer = json.loads(stream.readline(MAX_MESSAGE) or b"{}")
                if not answer.get("ok"):
                    raise ControlError(answer.get("error", "the supervisor refused the run"))
                while (frame := read_frame_blocking(stream)) is not None:
                    kind, payload = frame
                    if kind == EXIT:
                        return int(payload)
                    on_output(payload)
    except OSError as e:
        raise ControlError(f"lost the supervisor during the run: {e}") from None
    raise ControlError("the supervisor ended the run without an exit status")
