"""A client's request as parsed: what is forwarded, and what the router needs."""

from __future__ import annotations

import re
from collections.abc import Callable

#: request headers the router handles itself rather than copying through
SPECIAL = frozenset(
    {
        b"host",
        b"x-forwarded-for",
        b"x-request-id",
        b"transfer-encoding",
        b"upgrade",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"x-forwarded-proto",
        b"x-forwarded-port",
    }
)

#: header names, exactly as clients spell them, known not to be SPECIAL: a set
#: lookup on the name as received skips a lower() per header; bounded by PLAIN_MAX
PLAIN: set[bytes] = set()
PLAIN_MAX = 512

_REQUEST_ID = re.compile(rb"[\w+/=.:@-]{1,200}", re.ASCII)

#: past this much body waiting for a backend connection, the client is paused
BUFFER_MAX = 256 * 1024

#: the largest request or response head (request or status line and headers)
#: the router takes: past it, a request gets 431 and a response H17. Without a
#: bound, a head that never ends would be buffered until memory runs out.
HEAD_MAX = 64 * 1024


class Request:
    # Slots, every one set in __init__, as for Exchange: reading an attribute
    # left to a class default misses the interpreter's fast path.
    __slots__ = (
        "body",
        "buffered",
        "chunked",
        "complete",
        "error",
        "has_body",
        "head_done",
        "head_only",
        "head_size",
        "host",
        "http10",
        "keep_alive",
        "leftover",
        "lines",
        "method",
        "on_complete",
        "request_id",
        "sink",
        "upgrade",
        "url",
        "wants_upgrade",
        "xff",
    )

    def __init__(self) -> None:
        self.method = b"GET"
        self.url = b""
        #: forwarded header lines, as flat parts to join: name, ": ", value, CRLF
        self.lines: list[bytes] = []
        self.host: bytes | None = None
        self.xff: bytes | None = None
        #: the client's X-Request-Id, if it is one the router may keep
        self.request_id: str | None = None
        self.upgrade: bytes | None = None
        self.chunked = self.http10 = self.wants_upgrade = self.head_only = False
        self.complete = self.has_body = self.head_done = False
        #: the HTTP status to refuse the request with, instead of forwarding it
        self.error = 0
        #: bytes read while the head was incomplete (see HEAD_MAX)
        self.head_size = 0
        self.keep_alive = True
        #: body chunks received before a backend connection took them
        self.body: list[bytes] = []
        self.buffered = 0
        #: bytes after an upgrade request's head, for the backend once it agrees
        self.leftover = b""
        self.sink: Callable[[bytes], None] | None = None
        self.on_complete: Callable[[], None] | None = None

    def special_header(self, lname: bytes, name: bytes, value: bytes) -> None:
        """A header in SPECIAL, `lname` being its `name` in lower case."""
        if lname == b"host":
            if self.host is not None:
                self.error = 400
            self.host = value
            self.lines += (name, b": ", value, b"\r\n")
        elif lname == b"x-forwarded-for":
            self.xff = value if self.xff is None else self.xff + b", " + value
        elif lname == b"x-request-id":
            self.request_id = value.decode() if _REQUEST_ID.fullmatch(value) else None
        elif lname == b"transfer-encoding":
            self.chunked = self.chunked or b"chunked" in value.lower()
        elif lname == b"upgrade":
            self.upgrade = value

    def head_bytes(self) -> int:
        """The size of the head as parsed (not counting the headers the router drops)."""
        return len(self.url) + sum(map(len, self.lines)) + len(self.xff or b"")

    def feed(self, chunk: bytes) -> None:
        self.has_body = True
        if self.sink is not None:
            self.sink(chunk)
        else:
            self.body.append(chunk)
            self.buffered += len(chunk)
