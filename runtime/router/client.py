"""A client connection: parses requests with httptools and serves them in order.

Requests are parsed as bytes arrive; the one at the head of the queue is proxied
by an Exchange while later pipelined ones wait (reading pauses so they cannot
pile up). After a 101 the connection becomes a Tunnel.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import cast

import httptools

from . import pages
from .context import HOST_CACHE_MAX, Context
from .exchange import Exchange
from .request import BUFFER_MAX, HEAD_MAX, PLAIN, PLAIN_MAX, SPECIAL, Request
from .table import BadHost, normalize_host
from .tunnel import Tunnel

# Reasons the client's reading is paused; reading resumes when none is left.
PAUSE_QUEUE = 1
PAUSE_UPSTREAM = 2
PAUSE_BUFFER = 4
PAUSE_UPGRADE = 8

#: seconds a refused request's connection drops what the client still sends
LINGER = 2.0


class ClientConnection(asyncio.Protocol):
    __slots__ = (
        "ctx",
        "exchange",
        "fwd",
        "idle_since",
        "ip",
        "lingering",
        "parser",
        "paused",
        "queue",
        "reading",
        "req",
        "transport",
        "tunnel",
        "upgraded",
        "write_paused",
        "xff_line",
    )

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.req = Request()
        self.queue: deque[Request] = deque()
        self.exchange: Exchange | None = None
        self.tunnel: Tunnel | None = None
        self.upgraded = False
        #: refused: reading only to drop what comes, until closed (see _refuse)
        self.lingering = False
        self.paused = 0
        #: the size of the read being parsed
        self.reading = 0
        self.write_paused = False
        self.ip = b"unknown"
        #: the log line's fwd= when the request has no X-Forwarded-For: decoded once
        self.fwd = "unknown"
        self.xff_line = b""
        self.idle_since = time.monotonic()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=512 * 1024)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and peer:
            self.fwd = str(peer[0])
            self.ip = self.fwd.encode()
        self.xff_line = b"X-Forwarded-For: " + self.ip + b"\r\n"
        self.ctx.connections.add(self)
        self.ctx.drained.clear()

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.client_data(data)
            return
        if self.upgraded:
            if not self.lingering:
                self.req.leftover += data
            return
        req = self.req
        self.reading = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            self.req.leftover = data[e.args[0] :]
            self.upgraded = True
            self._pause(PAUSE_UPGRADE, True)
        except httptools.HttpParserError:
            self._stop_parsing(400)
        else:
            if self.req is req and not req.head_done:
                # A head still coming: bounded. (Reads that end a request and
                # begin the next are not counted: at most one read more.)
                req.head_size += len(data)
                if req.head_size > HEAD_MAX:
                    self._stop_parsing(431)
        if self.exchange is None and self.queue:
            self._next()

    def _stop_parsing(self, status: int) -> None:
        """Parse no more: what is queued is answered, then `status`, then the connection closes."""
        refused = Request()
        refused.error = status
        self.queue.append(refused)
        self.upgraded = True  # what follows is not parsed
        self._pause(PAUSE_UPGRADE, True)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.queue.clear()
        ctx = self.ctx
        ctx.connections.discard(self)
        if not ctx.connections:
            ctx.drained.set()
        if self.exchange is not None:
            self.exchange.client_lost()
            self.exchange = None
        if self.tunnel is not None:
            self.tunnel.client_lost()
            self.tunnel = None

    def pause_writing(self) -> None:
        self.write_paused = True
        self._writing_paused(True)

    def resume_writing(self) -> None:
        self.write_paused = False
        self._writing_paused(False)

    def _writing_paused(self, paused: bool) -> None:
        if self.exchange is not None:
            self.exchange.client_paused(paused)
        elif self.tunnel is not None:
            self.tunnel.client_paused(paused)

    # httptools callbacks

    def on_url(self, url: bytes) -> None:
        self.req.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # The common case inline: this runs once per header of every request.
        if name in PLAIN:
            self.req.lines += (name, b": ", value, b"\r\n")
        elif (lname := name.lower()) in SPECIAL:
            self.req.special_header(lname, name, value)
        else:
            if len(PLAIN) < PLAIN_MAX:
                PLAIN.add(name)
            self.req.lines += (name, b": ", value, b"\r\n")

    def on_headers_complete(self) -> None:
        req, parser = self.req, self.parser
        req.method = parser.get_method()
        req.head_only = req.method == b"HEAD"
        req.http10 = parser.get_http_version() == "1.0"
        req.keep_alive = parser.should_keep_alive()
        req.wants_upgrade = parser.should_upgrade()
        req.head_done = True
        # Bytes of earlier reads, and at most this whole read: only a large read
        # can hold a head past HEAD_MAX, and only then is the head measured.
        if req.head_size + self.reading > HEAD_MAX and req.head_bytes() > HEAD_MAX:
            req.error = 431
        self.queue.append(req)
        if len(self.queue) > 1:
            self._pause(PAUSE_QUEUE, True)

    def on_body(self, body: bytes) -> None:
        req = self.req
        req.feed(body)
        if req.buffered > BUFFER_MAX and req.sink is None:
            self._pause(PAUSE_BUFFER, True)

    def on_message_complete(self) -> None:
        req = self.req
        req.complete = True
        if req.on_complete is not None:
            req.on_complete()
        if not req.wants_upgrade:
            # The next request's object, made here rather than in on_message_begin:
            # one call from the parser less per request. After an upgrade, the
            # bytes that follow belong to this request (its leftover).
            self.req = Request()

    # serving

    def _next(self) -> None:
        req = self.queue.popleft()
        if self.paused & PAUSE_QUEUE and not self.queue:
            self._pause(PAUSE_QUEUE, False)
        ctx = self.ctx
        raw = req.host
        if req.error or raw is None:
            self._refuse(pages.bad_request(req.error or 400, req.head_only))
            return
        host = ctx.hosts.get(raw)
        if host is None:
            try:
                host = normalize_host(raw.decode("latin-1"))
            except BadHost:
                self._refuse(pages.bad_request(400, req.head_only))
                return
            if len(ctx.hosts) < HOST_CACHE_MAX:
                ctx.hosts[raw] = host
        route = ctx.table.lookup(host)
        if route is None:
            close = not (req.keep_alive and req.complete) or ctx.stopping or self.upgraded
            self.reply(pages.no_such_app(host, close, req.head_only), close=close)
            return
        self.exchange = Exchange(self, req, route, host)
        self.exchange.start()

    def reply(self, response: bytes, close: bool) -> None:
        """Write a response the router made itself, then go on or close."""
        self.write(response)
        self.done(not close, time.monotonic())

    def _refuse(self, response: bytes) -> None:
        """Answer a request the router will not forward, then close the connection.

        Closing with bytes still unread (the rest of a head too large, a body)
        makes the kernel send a reset, which can reach the client before the
        response does. So the response is followed by a FIN, and what the client
        still sends is read and dropped for LINGER seconds, as nginx does.
        """
        self.write(response)
        self.queue.clear()
        transport = self.transport
        if transport is None:
            return
        self.lingering = self.upgraded = True  # nothing more is parsed
        if transport.can_write_eof():
            transport.write_eof()
        self._pause(PAUSE_QUEUE | PAUSE_UPSTREAM | PAUSE_BUFFER | PAUSE_UPGRADE, False)
        self.ctx.loop.call_later(LINGER, self.close)

    def done(self, keep_alive: bool, now: float) -> None:
        """The current request is answered (at `now`); serve the next one or close."""
        self.exchange = None
        self.idle_since = now
        if self.paused & (PAUSE_UPSTREAM | PAUSE_BUFFER):
            self._pause(PAUSE_UPSTREAM | PAUSE_BUFFER, False)
        if not keep_alive or self.ctx.stopping:
            self.close()
        elif self.queue:
            self._next()

    def start_tunnel(self, tunnel: Tunnel, leftover: bytes) -> None:
        self.exchange = None
        self.tunnel = tunnel
        if leftover:
            tunnel.client_data(leftover)
        self._pause(PAUSE_UPGRADE | PAUSE_QUEUE | PAUSE_BUFFER, False)

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        if self.transport is not None:
            self.transport.writelines(parts)

    def close(self) -> None:
        """Close once what was written has been sent."""
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    @property
    def idle(self) -> bool:
        return self.exchange is None and self.tunnel is None and not self.queue

    def set_upstream_paused(self, paused: bool) -> None:
        self._pause(PAUSE_UPSTREAM, paused)

    def body_taken(self) -> None:
        """The buffered body went to a backend; reading may go on."""
        self._pause(PAUSE_BUFFER, False)

    def _pause(self, reason: int, on: bool) -> None:
        before = self.paused
        after = before | reason if on else before & ~reason
        self.paused = after
        transport = self.transport
        if transport is None or bool(before) == bool(after):
            return
        if after:
            transport.pause_reading()
        else:
            transport.resume_reading()
