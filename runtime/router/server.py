"""Serving on a listening socket, sweeping idle connections, stopping gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import errno
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
    acceptor = Acceptor(ctx, sock)
    sweepers = [loop.create_task(_sweep(ctx)), loop.create_task(_expire(ctx))]
    try:
        await asyncio.Future()
    finally:
        for task in sweepers:
            task.cancel()
        acceptor.close()
        await _drain(ctx)


class Acceptor:
    """Accepts one connection per readiness event of the listening socket.

    Several router processes share one listening socket (the supervisor hands
    the same fd to each; no SO_REUSEPORT). `loop.create_server` accepts until
    the backlog is empty, so whichever process wakes first takes a whole burst
    of connections (wrk's 16 could all land on one router, leaving the other
    idle). Taking one per event, as nginx does with `multi_accept off`, lets
    every waiting process take its share, and a busy one naturally takes fewer.

    Idle processes are woken together, though, and the same one tends to win
    every race. So while other processes share the socket (one of them took a
    connection this one was woken for, or the router has just started), a
    router waits `STEP` per connection it holds before it takes the next one:
    the one holding fewest takes it. Few connections open means little wait.

    The socket itself stays open: it is the caller's, and while this router
    drains, the others (or its successor) keep serving it.
    """

    #: how long to stop accepting when out of file descriptors (as asyncio does)
    RETRY = 1.0
    #: the wait before an accept per connection held, while others share the socket
    STEP = 0.0001
    #: the longest wait before an accept
    WAIT_MAX = 0.002
    #: how long other processes are assumed to share the socket since the last sign
    PEERS_TTL = 60.0

    def __init__(self, ctx: Context, sock: socket.socket) -> None:
        self.ctx = ctx
        self.sock = sock
        self.fd = sock.fileno()
        self.closed = False
        self.retry: asyncio.TimerHandle | None = None
        #: connections accepted and not yet set up (not yet in ctx.connections)
        self.starting = 0
        self.peers_until = ctx.loop.time() + self.PEERS_TTL
        ctx.loop.add_reader(self.fd, self._ready)

    def _ready(self) -> None:
        loop = self.ctx.loop
        held = len(self.ctx.connections) + self.starting
        if held and loop.time() < self.peers_until:
            loop.remove_reader(self.fd)
            self.retry = loop.call_later(min(held * self.STEP, self.WAIT_MAX), self._resume)
        else:
            self._accept()

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            # Another process took it.
            self.peers_until = self.ctx.loop.time() + self.PEERS_TTL
            return
        except (InterruptedError, ConnectionAbortedError):
            return  # the client gave up
        except OSError as e:
            if e.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                raise
            logger.warning("cannot accept (%s); pausing for %.0f s", e.strerror, self.RETRY)
            self.ctx.loop.remove_reader(self.fd)
            self.retry = self.ctx.loop.call_later(self.RETRY, self._resume)
            return
        conn.setblocking(False)
        self.starting += 1
        self.ctx.loop.create_task(self._start(conn))

    async def _start(self, conn: socket.socket) -> None:
        ctx = self.ctx
        try:
            await ctx.loop.connect_accepted_socket(lambda: ClientConnection(ctx), conn)
        except OSError:
            conn.close()  # reset before it could be set up: nothing to serve
        finally:
            self.starting -= 1

    def _resume(self) -> None:
        self.retry = None
        if not self.closed:
            self.ctx.loop.add_reader(self.fd, self._ready)
            self._accept()

    def close(self) -> None:
        self.closed = True
        if self.retry is not None:
            self.retry.cancel()
        self.ctx.loop.remove_reader(self.fd)


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
    # One sweep over the connections beats a timer (1.7 µs) or a set entry per request.
    interval = min(max(ctx.config.timeout / 10, 0.01), 1.0)
    while True:
        await asyncio.sleep(interval)
        now = time.monotonic()
        late = [c.exchange for c in ctx.connections if c.exchange and c.exchange.deadline <= now]
        for exchange in late:
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
