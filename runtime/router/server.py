"""Serving on a listening socket, sweeping idle connections, stopping gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time

from .client import ClientConnection
from .config import RouterConfig
from .context import Context
from .logline import LogFn
from .table import RoutingTable

logger = logging.getLogger(__name__)


async def serve(sock: socket.socket, table: RoutingTable, config: RouterConfig, log: LogFn) -> None:
    """Serve on an already-bound, listening socket until cancelled.

    On cancel: stop accepting, let in-flight requests finish (at most
    `config.grace` seconds), close what is left, then re-raise CancelledError.
    """
    loop = asyncio.get_running_loop()
    ctx = Context(loop, table, config, log)
    server = await loop.create_server(lambda: ClientConnection(ctx), sock=sock)
    sweepers = [loop.create_task(_sweep(ctx)), loop.create_task(_expire(ctx))]
    try:
        await asyncio.Future()
    finally:
        for task in sweepers:
            task.cancel()
        server.close()
        await _drain(ctx)


async def _drain(ctx: Context) -> None:
    ctx.stopping = True
    for conn in list(ctx.connections):
        if conn.idle:
            conn.close()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(ctx.config.grace):
            while ctx.connections:
                await ctx.drained.wait()
    for conn in list(ctx.connections):
        logger.warning("aborting a connection still busy after the grace period")
        conn.abort()
    for backend in ctx.table.backends():
        backend.close_idle()


async def _expire(ctx: Context) -> None:
    """Answer H12 for requests whose backend has not started answering in time."""
    interval = min(max(ctx.config.timeout / 10, 0.01), 1.0)
    while True:
        await asyncio.sleep(interval)
        if ctx.waiting:
            now = time.perf_counter()
            for exchange in [e for e in ctx.waiting if e.deadline <= now]:
                exchange.expire()


async def _sweep(ctx: Context) -> None:
    """Close client and backend connections left idle past their timeouts."""
    config = ctx.config
    interval = min(config.keepalive_timeout, config.backend_idle_timeout, 5.0) / 2
    while True:
        await asyncio.sleep(interval)
        now = time.monotonic()
        for conn in list(ctx.connections):
            if conn.idle and now - conn.idle_since > config.keepalive_timeout:
                conn.close()
        for backend in ctx.table.backends():
            stale = [c for c in backend.idle if now - c.idle_since > config.backend_idle_timeout]
            if stale:
                backend.idle = [c for c in backend.idle if c not in stale]
                for c in stale:
                    c.close()
