"""One request's trip: pick a backend, forward the request, stream the response back.

An Exchange is the response parser's callback object, so the response is
parsed, reframed for the client and written with one write per read. Failures
before the client has seen a response become Heroku-coded 503s; after that,
the client's connection is closed so it sees a truncated response, not a hang.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import httptools

from . import pages
from .logline import request_line
from .pages import H10, H12, H13, H14, H17, H27, RouterError
from .request import HEAD_MAX, PLAIN_MAX
from .table import AppRoute, Backend
from .tunnel import Tunnel
from .upstream import Upstream

if TYPE_CHECKING:
    from .client import ClientConnection
    from .request import Request

#: response headers the router handles itself rather than copying through
_RESPONSE_SPECIAL = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"content-length",
    }
)
#: response header names as received, known not to be special (see request.PLAIN)
_RESPONSE_PLAIN: set[bytes] = set()
#: the common methods' log spelling, so most requests skip a decode
_METHODS = {m: m.decode() for m in (b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE")}
#: status lines up to the reason phrase: formatting one costs more than a lookup
_STATUS_LINES = {status: b"HTTP/1.1 %d " % status for status in range(100, 600)}
#: past this size a read's response pieces are handed to the transport as a list
_JOIN_MAX = 64 * 1024


class Exchange:
    # Slots, every one set in __init__: reading an attribute left to a class
    # default misses the interpreter's fast path (it looks in the instance, then
    # the class), and the hot path read a dozen per request: ~1% of its cost.
    __slots__ = (
        "backend",
        "backend_keep_alive",
        "body_sent",
        "chunked_in",
        "chunked_out",
        "client",
        "close_client",
        "connecting",
        "ctx",
        "deadline",
        "done",
        "dyno",
        "eof_body",
        "got_bytes",
        "has_length",
        "head_sent",
        "head_size",
        "host",
        "interim",
        "length",
        "lines",
        "nbytes",
        "out",
        "parser",
        "raw_left",
        "reading",
        "reason",
        "req",
        "request_id",
        "response_complete",
        "reused",
        "route",
        "status",
        "t_connect",
        "t_start",
        "tried",
        "upgrade",
        "upstream",
    )

    def __init__(self, client: ClientConnection, req: Request, route: AppRoute, host: str) -> None:
        self.client = client
        self.ctx = client.ctx
        self.req = req
        self.route = route
        self.host = host
        self.request_id = req.request_id or self.ctx.ids()
        # One clock, time.monotonic(), for all the router's times: an exchange
        # reads it at its start and end, and its end time serves the pool and
        # the client connection too.
        self.t_start = self.t_connect = time.monotonic()
        #: when H12 is due, while the exchange waits for the response's first byte
        self.deadline = 0.0
        self.backend: Backend | None = None
        self.dyno = ""
        self.tried: tuple[Backend, ...] = ()
        self.connecting: asyncio.Task[None] | None = None
        self.upstream: Upstream | None = None
        self.parser: httptools.HttpResponseParser | None = None
        self.reused = self.done = self.body_sent = False
        # the response, as parsed
        self.status = 0
        self.reason = b""
        self.lines: list[bytes] = []
        self.has_length = self.chunked_in = False
        #: the response being parsed is an interim one (100 Continue)
        self.interim = False
        self.length = 0
        self.upgrade: bytes | None = None
        self.backend_keep_alive = False
        # the response, as passed on
        self.out: list[bytes] = []
        self.got_bytes = self.head_sent = self.response_complete = False
        #: bytes read before the response's head was complete (see HEAD_MAX)
        self.head_size = 0
        #: the size of the read being parsed
        self.reading = 0
        self.close_client = self.chunked_out = self.eof_body = False
        self.nbytes = 0
        #: body bytes still due on a Content-Length response: passed on unparsed
        self.raw_left = 0

    # choosing and reaching a backend

    def start(self) -> None:
        if not self.route.backends:
            self.fail(H14)
            return
        self.deadline = self.t_start + self.ctx.config.timeout
        self._connect()

    def _connect(self) -> None:
        backend = self.route.pick(self.tried)
        if backend is None:
            self.fail(H10)
            return
        self.backend = backend
        self.dyno = backend.dyno
        backend.outstanding += 1
        up = backend.take_idle()
        if up is not None:
            self._attach(up)
        else:
            self.connecting = self.ctx.loop.create_task(self._open(backend))

    async def _open(self, backend: Backend) -> None:
        try:
            _, up = await self.ctx.loop.create_connection(
                lambda: Upstream(backend), backend.host, backend.port
            )
        except OSError:
            # Refused or unreachable: this process cannot answer, another may.
            self.connecting = None
            if not self.done:
                self.tried += (backend,)
                self._release_backend()
                self._connect()
            return
        self.connecting = None
        if self.done:
            up.release(self.ctx.config.backend_idle_max, time.monotonic())
        else:
            self.t_connect = time.monotonic()
            self._attach(up)

    def _attach(self, up: Upstream) -> None:
        self.upstream = up
        self.reused = up.reused
        up.user = self
        self.parser = httptools.HttpResponseParser(self)
        req = self.req
        parts = self._request_head()
        if req.body:
            for chunk in req.body:
                parts += self._framed(chunk)
            req.body.clear()
            req.buffered = 0
        if req.complete:
            self.body_sent = True
            if req.chunked:
                parts.append(b"0\r\n\r\n")
        else:
            req.sink = self._send_body
            req.on_complete = self._body_done
            self.client.body_taken()
        up.write(b"".join(parts))

    def _request_head(self) -> list[bytes]:
        """The request's head as parts to join."""
        req, client = self.req, self.client
        parts = [req.method, b" ", req.url, b" HTTP/1.1\r\n", *req.lines]
        if req.xff is None:
            parts.append(client.xff_line)
        else:
            parts += (b"X-Forwarded-For: ", req.xff, b", ", client.ip, b"\r\n")
        parts += (self.ctx.forwarded_lines, b"X-Request-Id: ", self.request_id.encode(), b"\r\n")
        if req.chunked:
            parts.append(b"Transfer-Encoding: chunked\r\n")
        if req.wants_upgrade and req.upgrade is not None:
            parts += (b"Connection: upgrade\r\nUpgrade: ", req.upgrade, b"\r\n")
        parts.append(b"\r\n")
        return parts

    def _framed(self, chunk: bytes) -> tuple[bytes, ...]:
        if self.req.chunked:
            return (b"%x\r\n" % len(chunk), chunk, b"\r\n")
        return (chunk,)

    def _send_body(self, chunk: bytes) -> None:
        if self.upstream is not None and not self.done:
            self.upstream.write(b"".join(self._framed(chunk)))

    def _body_done(self) -> None:
        self.body_sent = True
        if self.upstream is not None and not self.done and self.req.chunked:
            self.upstream.write(b"0\r\n\r\n")
        # The backend's time to answer counts from the end of the upload.
        self.deadline = time.monotonic() + self.ctx.config.timeout

    # the response (httptools callbacks)

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if name in _RESPONSE_PLAIN:
            self.lines += (name, b": ", value, b"\r\n")
            return
        lname = name.lower()
        if lname not in _RESPONSE_SPECIAL:
            if len(_RESPONSE_PLAIN) < PLAIN_MAX:
                _RESPONSE_PLAIN.add(name)
            self.lines += (name, b": ", value, b"\r\n")
        elif lname == b"content-length":
            self.has_length = True
            self.length = int(value)
            self.lines += (name, b": ", value, b"\r\n")
        elif lname == b"transfer-encoding":
            self.chunked_in = self.chunked_in or b"chunked" in value.lower()
        elif lname == b"upgrade":
            self.upgrade = value

    def on_headers_complete(self) -> None:
        parser = self.parser
        if parser is None:
            return
        if self.head_size + self.reading > HEAD_MAX and (
            len(self.reason) + sum(map(len, self.lines)) > HEAD_MAX
        ):
            raise httptools.HttpParserError("response head too large")  # H17
        status = parser.get_status_code()
        out = self.out
        out += (_STATUS_LINES.get(status) or b"HTTP/1.1 %d " % status, self.reason, b"\r\n")
        out += self.lines
        if 100 <= status < 200 and status != 101:
            # An interim response (100 Continue): passed on, the real one follows.
            out.append(b"\r\n")
            self.lines = []
            self.reason = b""
            self.has_length = self.chunked_in = False
            self.interim = True
            return
        self.status = status
        self.backend_keep_alive = parser.should_keep_alive()
        self._framing(status, out)
        self.head_sent = True
        if self.req.head_only or status in (101, 204, 304):
            self.response_complete = True
        elif self.has_length:
            self.raw_left = self.length

    def _framing(self, status: int, parts: list[bytes]) -> None:
        """End the response head in `parts` with the router's framing headers."""
        req = self.req
        self.close_client = close = not req.keep_alive or self.ctx.stopping
        if status == 101:
            parts += (b"Connection: upgrade\r\nUpgrade: ", self.upgrade or b"", b"\r\n\r\n")
            return
        if not (self.has_length or req.head_only or status in (204, 304)):
            self.eof_body = not self.chunked_in
            if req.http10:
                self.close_client = close = True
            else:
                self.chunked_out = True
                parts.append(b"Transfer-Encoding: chunked\r\n")
        if close:
            parts.append(b"Connection: close\r\n")
        elif req.http10:
            parts.append(b"Connection: keep-alive\r\n")
        parts.append(b"\r\n")

    def on_body(self, body: bytes) -> None:
        self.nbytes += len(body)
        if self.raw_left:
            self.raw_left -= len(body)
        if self.chunked_out:
            self.out += (b"%x\r\n" % len(body), body, b"\r\n")
        else:
            self.out.append(body)

    def on_message_complete(self) -> None:
        if self.interim:  # the end of the 100 Continue: the response follows
            self.interim = False
            return
        if self.chunked_out:
            self.out.append(b"0\r\n\r\n")
        self.response_complete = True

    # events from the backend connection

    def upstream_data(self, data: bytes) -> None:
        self.got_bytes = True
        if self.raw_left and not self.out:
            self._pass_body(data)
            return
        leftover = b""
        broken = False
        self.reading = len(data)
        try:
            if self.parser is not None:
                self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            leftover = data[e.args[0] :]
        except httptools.HttpParserError:
            broken = True
        if not self.head_sent:
            self.head_size += len(data)
            broken = broken or self.head_size > HEAD_MAX
        self._flush(len(data))
        if broken:
            self._broken(H17)
        elif self.status == 101 and self.req.wants_upgrade:
            self._tunnel(leftover)
        elif self.response_complete:
            self._finish()

    def _pass_body(self, data: bytes) -> None:
        # The body's length is known: parsing it would only copy it once more.
        left, n = self.raw_left, len(data)
        if n > left:
            # More than the backend announced: its connection is out of step.
            data = data[:left]
            self.backend_keep_alive = False
            n = left
        self.raw_left = left - n
        self.nbytes += n
        self.client.write(data)
        if n == left:
            self.response_complete = True
            self._finish()

    def upstream_lost(self) -> None:
        self.upstream = None
        if self.done:
            return
        if self.head_sent and self.eof_body:
            self.on_message_complete()
            self._flush()
            self._finish()
        elif self._replayable() and self.backend is not None:
            # A pooled connection the backend had closed as we sent: nothing was
            # lost, so the request goes again on a fresh connection.
            self.reused = False
            self.connecting = self.ctx.loop.create_task(self._open(self.backend))
        else:
            self._broken(H13)

    def _replayable(self) -> bool:
        req = self.req
        return self.reused and not self.got_bytes and req.complete and not req.has_body

    def upstream_paused(self, paused: bool) -> None:
        self.client.set_upstream_paused(paused)

    def client_paused(self, paused: bool) -> None:
        up = self.upstream
        if up is not None and up.transport is not None:
            if paused:
                up.transport.pause_reading()
            else:
                up.transport.resume_reading()

    def client_lost(self) -> None:
        if not self.done:
            self._end(H27, 499)
            if self.upstream is not None:
                self.upstream.abort()
                self.upstream = None

    # endings

    def _flush(self, size: int = 0) -> None:
        """Write what the last read of `size` bytes made: joined, unless that is large."""
        out = self.out
        if not out:
            return
        self.out = []
        if size <= _JOIN_MAX:
            # What one read makes (head, body, chunk framing) is hardly more than
            # the read itself: cheaper to join than to sum its length first.
            self.client.write(b"".join(out))
        else:
            self.client.writelines(out)  # one writev, no copy of the large pieces

    def _finish(self) -> None:
        req = self.req
        now = self._end(None, self.status)
        up, self.upstream = self.upstream, None
        if up is not None:
            if self.backend_keep_alive and not self.eof_body and self.body_sent:
                up.release(self.ctx.config.backend_idle_max, now)
            else:
                up.close()
        if req.sink is not None:
            req.sink = req.on_complete = None
        self.client.done(not self.close_client and req.complete and not req.wants_upgrade, now)

    def _tunnel(self, leftover: bytes) -> None:
        up = self.upstream
        self._end(None, 101)
        self.upstream = None
        if up is None:
            self.client.close()
            return
        tunnel = Tunnel(self.client, up)
        up.user = tunnel
        if leftover:
            self.client.write(leftover)
        self.client.start_tunnel(tunnel, self.req.leftover)

    def fail(self, err: RouterError) -> None:
        """Answer with the router's error page, or cut the response if one began."""
        if self.head_sent:
            self._broken(err)
            return
        req = self.req
        now = self._end(err, 503)
        if self.upstream is not None:
            self.upstream.abort()
            self.upstream = None
        keep = req.keep_alive and req.complete and not req.wants_upgrade and not self.ctx.stopping
        req.sink = req.on_complete = None
        self.client.write(pages.router_error(err, close=not keep, head_only=req.head_only))
        self.client.done(keep, now)

    def _broken(self, err: RouterError) -> None:
        if not self.head_sent:
            self.fail(err)
            return
        self._end(err, self.status)
        if self.upstream is not None:
            self.upstream.abort()
            self.upstream = None
        self.client.close()

    def expire(self) -> None:
        """The backend did not start answering in time."""
        if not self.done and not self.got_bytes:
            self.fail(H12)

    def _release_backend(self) -> None:
        if self.backend is not None:
            self.backend.outstanding -= 1
            self.backend = None

    def _end(self, err: RouterError | None, status: int) -> float:
        """Mark done, free the backend slot and write the log line; return the time."""
        now = time.monotonic()
        self.done = True
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None
        self._release_backend()
        self._log(err, status, now)
        self.parser = None  # it refers back to the exchange: a cycle only the GC would free
        return now

    def _log(self, err: RouterError | None, status: int, now: float) -> None:
        req = self.req
        if self.parser is not None:  # a backend connection was reached
            connect_ms = int((self.t_connect - self.t_start) * 1000)
            service_ms = int((now - self.t_connect) * 1000)
        else:
            connect_ms = service_ms = 0
        method = _METHODS.get(req.method) or req.method.decode("ascii", "replace")
        fwd = self.client.fwd
        if req.xff is not None:
            fwd = f"{req.xff.decode('latin-1')}, {fwd}"
        at = "at=info" if err is None else f'at=error code={err.code} desc="{err.desc}"'
        path = req.url.decode("latin-1")
        line = request_line(at, method, path, self.host, self.request_id, fwd, self.dyno,
                            connect_ms, service_ms, status, self.nbytes)  # fmt: skip
        self.ctx.log(self.route.name, line)
