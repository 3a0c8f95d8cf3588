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
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

PROTOCOL_VERSION = 1
MAX_MESSAGE = 1 << 20

log = logging.getLogger(__name__)

Message = dict[str, Any]
Reply = Callable[[Message], Awaitable[None]]
Handler = Callable[[Message, Reply], Awaitable[Message | None]]


class ControlError(Exception):
    """The supervisor could not be reached or refused a request."""


class ControlServer:
    """Serves `handlers[op]` for each request; a handler may stream via `reply`."""

    def __init__(self, path: Path, handlers: Mapping[str, Handler]) -> None:
        self._path = path
        self._handlers = handlers
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(
            self._serve, path=self._path, limit=MAX_MESSAGE
        )
        self._path.chmod(0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(message: Message) -> None:
            writer.write(json.dumps(message).encode() + b"\n")
            await writer.drain()

        try:
            while line := await reader.readline():
                answer = await self._dispatch(line, reply)
                if answer is not None:
                    await reply(answer)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _dispatch(self, line: bytes, reply: Reply) -> Message | None:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            return {"ok": False, "error": "not a JSON line"}
        if message.get("v") != PROTOCOL_VERSION:
            return {"ok": False, "error": f"unsupported protocol version {message.get('v')!r}"}
        handler = self._handlers.get(message.get("op", ""))
        if handler is None:
            return {"ok": False, "error": f"unknown op {message.get('op')!r}"}
        try:
            return await handler(message, reply)
        except ControlError as e:
            return {"ok": False, "error": str(e)}


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
