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


class Request:
    # Defaults live on the class: a request sets only what differs.
    method = b"GET"
    url = b""
    host: bytes | None = None
    xff: bytes | None = None
    #: the client's X-Request-Id, if it is one the router may keep
    request_id: str | None = None
    upgrade: bytes | None = None
    chunked = http10 = wants_upgrade = head_only = bad = complete = has_body = False
    keep_alive = True
    buffered = 0
    #: bytes after an upgrade request's head, for the backend once it agrees
    leftover = b""
    sink: Callable[[bytes], None] | None = None
    on_complete: Callable[[], None] | None = None

    def __init__(self) -> None:
        #: forwarded header lines, as flat parts to join: name, ": ", value, CRLF
        self.lines: list[bytes] = []
        #: body chunks received before a backend connection took them
        self.body: list[bytes] = []

    def header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if lname not in SPECIAL:
            self.lines += (name, b": ", value, b"\r\n")
        elif lname == b"host":
            if self.host is not None:
                self.bad = True
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

    def feed(self, chunk: bytes) -> None:
        self.has_body = True
        if self.sink is not None:
            self.sink(chunk)
        else:
            self.body.append(chunk)
            self.buffered += len(chunk)
