"""A connection to a backend: a thin transport wrapper, pooled between requests.

The HTTP of the response belongs to whichever exchange holds the connection;
while pooled, any byte or close from the backend just ends the connection.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from .table import Backend


class UpstreamUser(Protocol):
    """What an exchange (or a tunnel) does with its backend connection's events."""

    def upstream_data(self, data: bytes) -> None: ...
    def upstream_lost(self) -> None: ...
    def upstream_paused(self, paused: bool) -> None: ...


class Upstream(asyncio.Protocol):
    __slots__ = ("backend", "closed", "idle_since", "reused", "transport", "user")

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.transport: asyncio.Transport | None = None
        self.user: UpstreamUser | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = transport = cast(asyncio.Transport, transport)
        # Large responses move in few reads; the default 64 KiB limit halves 1 MB throughput.
        transport.set_write_buffer_limits(high=512 * 1024)

    def data_received(self, data: bytes) -> None:
        if self.user is not None:
            self.user.upstream_data(data)
        else:
            # A backend may not speak unasked; the connection is out of step.
            self.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        user, self.user = self.user, None
        if user is not None:
            user.upstream_lost()

    def pause_writing(self) -> None:
        if self.user is not None:
            self.user.upstream_paused(True)

    def resume_writing(self) -> None:
        if self.user is not None:
            self.user.upstream_paused(False)

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        """Close for good, without notifying the current user."""
        self.closed = True
        self.user = None
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        self.user = None
        if self.transport is not None:
            self.transport.abort()

    def release(self, max_idle: int, now: float) -> None:
        """Return to the backend's pool (idle since `now`), or close if it cannot take more."""
        self.user = None
        backend = self.backend
        if self.closed or backend.removed or len(backend.idle) >= max_idle:
            self.close()
            return
        if self.transport is not None and self.transport.is_reading() is False:
            self.transport.resume_reading()
        self.reused = True
        self.idle_since = now
        backend.idle.append(self)
