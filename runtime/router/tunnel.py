"""A raw two-way pipe between a client and a backend, after a 101 (WebSocket)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import ClientConnection
    from .upstream import Upstream


class Tunnel:
    __slots__ = ("client", "upstream")

    def __init__(self, client: ClientConnection, upstream: Upstream) -> None:
        self.client = client
        self.upstream = upstream

    def client_data(self, data: bytes) -> None:
        self.upstream.write(data)

    def upstream_data(self, data: bytes) -> None:
        self.client.write(data)

    def client_lost(self) -> None:
        self.upstream.close()

    def upstream_lost(self) -> None:
        self.client.close()

    def client_paused(self, paused: bool) -> None:
        transport = self.upstream.transport
        if transport is not None:
            if paused:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def upstream_paused(self, paused: bool) -> None:
        self.client.set_upstream_paused(paused)
