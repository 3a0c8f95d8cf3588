"""Which backend a request reaches, what it sees, and what the router logs."""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import threading

from .client import connect, echo, get, raw


def test_routes_by_app_host_ignoring_port(router, servers):
    a, b = servers("web.1"), servers("web.1")
    router.route({"alpha": [a], "beta": [b]})
    assert echo(router.port, "alpha.localhost:8080")["conn"] and len(a.seen) == 1
    echo(router.port, "BETA.localhost")
    assert len(b.seen) == 1 and len(a.seen) == 1


def test_routes_custom_domain(router, servers):
    a = servers()
    router.route({"alpha": [a]}, domain="apps.test", hosts={"alpha": ["www.example.com"]})
    echo(router.port, "www.example.com")
    echo(router.port, "alpha.apps.test")
    assert [p for p, _, _ in a.seen] == ["/", "/"]


def test_unknown_host_is_404(router, servers):
    router.route({"alpha": [servers()]})
    status, _, body = get(router.port, "nope.localhost")
    assert status == 404 and b"No such app" in body


def test_missing_or_bad_host_is_400_and_closes(router, servers):
    router.route({"alpha": [servers()]})
    no_host = raw(router.port, b"GET / HTTP/1.1\r\n\r\n")
    assert no_host.startswith(b"HTTP/1.1 400 ")
    bad = raw(router.port, b"GET / HTTP/1.1\r\nHost: a b!\r\n\r\n")
    assert bad.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in bad
    two = raw(router.port, b"GET / HTTP/1.1\r\nHost: alpha.localhost\r\nHost: x\r\n\r\n")
    assert two.startswith(b"HTTP/1.1 400 ")


def test_malformed_request_is_400_and_closes(router, servers):
    router.route({"alpha": [servers()]})
    assert raw(router.port, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400 ")


def test_endless_request_head_is_431_and_router_goes_on(router, servers):
    """A head that never ends is refused once it passes 64 KiB, not buffered on:
    the client, still sending, gets its 431 (not a reset) and stops."""
    router.route({"alpha": [servers()]})
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: alpha.localhost\r\nCookie: ")
        sent = []

        def send() -> None:
            with contextlib.suppress(OSError):  # the router closes, in the end
                for _ in range(64):  # 16 MB
                    s.sendall(b"a" * (256 * 1024))
                    sent.append(1)

        sender = threading.Thread(target=send)
        sender.start()
        reply = b""
        while piece := s.recv(65536):
            reply += piece
        sender.join()
    assert reply.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"Connection: close" in reply and b"too large" in reply
    assert echo(router.port, "alpha.localhost")["dyno"] == "web.1"


def test_request_head_over_64_kib_is_431_however_it_arrives(router, servers):
    router.route({"alpha": [servers()]})
    seen = echo(router.port, "alpha.localhost", Cookie="b" * 20_000)["headers"]
    assert seen["Cookie"] == "b" * 20_000
    status, headers, body = get(router.port, "alpha.localhost", Cookie="a" * 100_000)
    assert (status, headers["Connection"]) == (431, "close") and b"too large" in body


def test_sequential_requests_alternate_between_backends(router, servers):
    a, b = servers("web.1"), servers("web.2")
    router.route({"alpha": [a, b]})
    dynos = [echo(router.port, "alpha.localhost")["dyno"] for _ in range(4)]
    assert dynos == ["web.1", "web.2", "web.1", "web.2"]


def test_busy_backend_is_passed_over(router, servers):
    a, b = servers("web.1"), servers("web.2")
    router.route({"alpha": [a, b]})
    slow = threading.Thread(target=echo, args=(router.port, "alpha.localhost", "/wait"))
    slow.start()
    assert a.entered.wait(5)
    # web.1 holds one request: the next three all go to web.2.
    dynos = [echo(router.port, "alpha.localhost")["dyno"] for _ in range(3)]
    a.release.set()
    slow.join(5)
    assert dynos == ["web.2"] * 3


def test_forwarded_headers_and_request_id(router, servers):
    a = servers()
    router.route({"alpha": [a]})
    seen = echo(router.port, "alpha.localhost")["headers"]
    assert seen["X-Forwarded-For"] == "127.0.0.1"
    assert seen["X-Forwarded-Proto"] == "http"
    assert seen["X-Forwarded-Port"] == str(router.port)
    first = seen["X-Request-Id"]
    second = echo(router.port, "alpha.localhost")["headers"]["X-Request-Id"]
    assert first and second and first != second
    kept = echo(router.port, "alpha.localhost", **{
        "X-Request-Id": "client-id-123", "X-Forwarded-For": "10.0.0.1",
        "X-Forwarded-Proto": "https"})["headers"]
    assert kept["X-Request-Id"] == "client-id-123"
    assert kept["X-Forwarded-For"] == "10.0.0.1, 127.0.0.1"
    assert kept["X-Forwarded-Proto"] == "http"
    replaced = echo(router.port, "alpha.localhost", **{"X-Request-Id": "no spaces"})["headers"]
    assert replaced["X-Request-Id"] not in ("no spaces", first, second)


def test_log_line_fields(router, servers):
    router.route({"alpha": [servers()]})
    echo(router.port, "alpha.localhost", "/path?q=1", **{"X-Request-Id": "rid-1"})
    [(app, line)] = router.wait_log(1)
    assert app == "alpha"
    assert re.fullmatch(
        r'at=info method=GET path="/path\?q=1" host=alpha\.localhost request_id=rid-1 '
        r'fwd="127\.0\.0\.1" dyno=web\.1 connect=\d+ms service=\d+ms status=200 bytes=\d+',
        line), line
    nbytes = int(line.rsplit("=", 1)[1])
    assert nbytes > 50


def test_table_replaced_while_request_in_flight(router, servers):
    old, new = servers("web.1"), servers("web.2")
    router.route({"alpha": [old]})
    conn = connect(router.port)
    conn.request("GET", "/wait", headers={"Host": "alpha.localhost"})
    assert old.entered.wait(5)
    router.route({"alpha": [new]})
    assert echo(router.port, "alpha.localhost")["dyno"] == "web.2"
    old.release.set()
    resp = conn.getresponse()
    assert resp.status == 200 and b'"web.1"' in resp.read()
    conn.close()
    assert len(old.seen) == 1
    assert echo(router.port, "alpha.localhost")["dyno"] == "web.2"


def test_removed_backend_pooled_connections_closed(router, servers):
    old, new = servers("web.1"), servers("web.2")
    router.route({"alpha": [old]})
    echo(router.port, "alpha.localhost")
    router.route({"alpha": [new]})
    # The pooled keep-alive connection to web.1 is closed: a fresh client to
    # web.1 still works, and the router's idle connection no longer counts.
    assert router.call(lambda: [b.idle for b in router.table.backends()]) == [[]]
    assert echo(router.port, "alpha.localhost")["dyno"] == "web.2"


def test_head_request(router, servers):
    router.route({"alpha": [servers()]})
    conn = connect(router.port)
    for _ in range(2):
        conn.request("HEAD", "/", headers={"Host": "alpha.localhost"})
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == b""
    conn.close()
    assert isinstance(conn, http.client.HTTPConnection)
