"""The responses the router writes itself: 400, 404, 431 and the Heroku-coded 503s."""

from __future__ import annotations

import html
from typing import NamedTuple


class RouterError(NamedTuple):
    code: str
    desc: str


#: Heroku's router error codes (https://devcenter.heroku.com/articles/error-codes)
H10 = RouterError("H10", "App crashed")
H12 = RouterError("H12", "Request timeout")
H13 = RouterError("H13", "Connection closed without response")
H14 = RouterError("H14", "No web processes running")
H17 = RouterError("H17", "Poorly formatted HTTP response")
H27 = RouterError("H27", "Client Request Interrupted")

_REASONS = {
    400: "Bad Request",
    404: "Not Found",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}
_REFUSALS = {
    400: "The request could not be understood.",
    431: "The request's headers are too large.",
}


def page(
    status: int,
    title: str,
    message: str,
    *,
    code: str = "",
    close: bool = False,
    head_only: bool = False,
) -> bytes:
    """A complete HTTP/1.1 response with a small HTML page."""
    body = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n<body><h1>{html.escape(title)}</h1>\n"
        f"<p>{html.escape(message)}</p>\n"
        + (f"<p>Error code: <code>{code}</code></p>\n" if code else "")
        + "</body></html>\n"
    ).encode()
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        "Content-Type: text/html; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-cache, no-store",
    ]
    if code:
        lines.append(f"X-Ouro-Error: {code}")
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head if head_only else head + body


def bad_request(status: int = 400, head_only: bool = False) -> bytes:
    """A request refused before it reached an app (400 or 431); the connection closes."""
    return page(status, _REASONS[status], _REFUSALS[status], close=True, head_only=head_only)


def no_such_app(host: str, close: bool, head_only: bool = False) -> bytes:
    return page(404, "No such app", f"There is no app at {host}.", close=close, head_only=head_only)


def router_error(err: RouterError, close: bool, head_only: bool = False) -> bytes:
    return page(
        503,
        "Application error",
        f"The application could not answer ({err.desc}). Please try again later.",
        code=err.code,
        close=close,
        head_only=head_only,
    )
