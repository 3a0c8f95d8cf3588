"""Frames of an attached one-off on its control connection: a kind byte, a length, bytes.

Client to supervisor: STDIN data, STDIN_EOF, RESIZE (`b"ROWS COLS"`).
Supervisor to client: STDOUT, STDERR, and EXIT (`b"STATUS"`), which ends the stream.
"""

from __future__ import annotations

import asyncio
import struct
from typing import BinaryIO

STDIN, STDIN_EOF, RESIZE = 0, 1, 2
STDOUT, STDERR, EXIT = 0, 1, 2
_HEADER = struct.Struct("!BI")
MAX_FRAME = 1 << 20


def write_frame(writer: asyncio.StreamWriter, kind: int, payload: bytes = b"") -> None:
    writer.write(_HEADER.pack(kind, len(payload)) + payload)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """The next frame, or None at the end of the stream (or a malformed frame)."""
    try:
        header = await reader.readexactly(_HEADER.size)
        kind, size = _HEADER.unpack(header)
        if size > MAX_FRAME:
            return None
        return kind, await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def read_frame_blocking(stream: BinaryIO) -> tuple[int, bytes] | None:
    """`read_frame` for a blocking file object."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    kind, size = _HEADER.unpack(header)
    payload = stream.read(size) if size else b""
    if size > MAX_FRAME or len(payload) < size:
        return None
    return kind, payload


def pack_frame(kind: int, payload: bytes = b"") -> bytes:
    return _HEADER.pack(kind, len(payload)) + payload
