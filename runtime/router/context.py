"""What every connection of one router shares: the table, settings and log."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .config import RouterConfig
from .logline import LogFn, request_ids
from .table import RoutingTable

if TYPE_CHECKING:
    from .client import ClientConnection

#: host-header values already normalized; bounded so odd clients cannot grow it
HOST_CACHE_MAX = 4096


class Context:
    __slots__ = (
        "config",
        "connections",
        "drained",
        "forwarded_lines",
        "hosts",
        "ids",
        "log",
        "loop",
        "stopping",
        "table",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, table: RoutingTable, config: RouterConfig, log: LogFn
    ) -> None:
        self.loop = loop
        self.table = table
        self.config = config
        self.log = log
        self.ids = request_ids()
        self.hosts: dict[bytes, str] = {}
        self.connections: set[ClientConnection] = set()
        self.stopping = False
        #: set whenever no client connection is open, for a graceful stop
        self.drained = asyncio.Event()
        self.forwarded_lines = (
            f"X-Forwarded-Proto: http\r\nX-Forwarded-Port: {config.port}\r\n".encode()
        )
