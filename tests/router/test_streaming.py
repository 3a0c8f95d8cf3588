"""Keep-alive, streamed and chunked bodies, large bodies, HTTP/1.0, upgrades."""

from __future__ import annotations

import hashlib
import json
import re
import socket

from .client import connect, raw


def test_keep_alive_reused_on_both_sides(router, servers):
    a = servers()
    router.route({"alpha": [a]})
    conn = connect(router.port)
    seen_conns = set()
    for _ in range(5):
        conn.request("GET", "/", headers={"Host": "alpha.localhost"})
        resp = conn.getresponse()
        seen_conns.add(json.loads(resp.read())["conn"])
    client_sock = conn.sock
    conn.request("GET", "/", headers={"Host": "alpha.localhost"})
    conn.getresponse().read()
    assert conn.sock is client_sock  # the client's connection stayed open
    conn.close()
    assert seen_conns == {1} and a.connections == 1


def test_connection_close_honoured(router, servers):
    router.route({"alpha": [servers()]})
    reply = raw(
        router.port, b"GET / HTTP/1.1\r\nHost: alpha.localhost\r\nConnection: close\r\n\r\n"
    )
    assert reply.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in reply


def test_http10_client(router, servers):
    router.route({"alpha": [servers()]})
    reply = raw(router.port, b"GET /chunked HTTP/1.0\r\nHost: alpha.localhost\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"chunked" not in head.lower()
    assert body == b"".join(f"chunk {i}\n".encode() for i in range(5))


def test_chunked_response_streamed(router, servers):
    router.route({"alpha": [servers()]})
    conn = connect(router.port)
    conn.request("GET", "/chunked", headers={"Host": "alpha.localhost"})
    resp = conn.getresponse()
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.read() == b"".join(f"chunk {i}\n".encode() for i in range(5))
    conn.close()


def test_chunked_upload_streamed(router, servers):
    router.route({"alpha": [servers()]})
    pieces = [bytes([i]) * 100_000 for i in range(20)]
    conn = connect(router.port)
    conn.request("POST", "/upload", body=iter(pieces), encode_chunked=True,
                 headers={"Host": "alpha.localhost", "Transfer-Encoding": "chunked"})
    info = json.loads(conn.getresponse().read())
    conn.close()
    whole = b"".join(pieces)
    assert info == {"length": len(whole), "sha256": hashlib.sha256(whole).hexdigest()}


def test_large_upload_and_download_intact(router, servers):
    router.route({"alpha": [servers()]})
    body = bytes(range(256)) * 12_000  # 3 MB
    conn = connect(router.port)
    conn.request("PUT", "/upload", body=body, headers={"Host": "alpha.localhost"})
    info = json.loads(conn.getresponse().read())
    assert info["sha256"] == hashlib.sha256(body).hexdigest()
    conn.request("GET", "/big?n=2000000", headers={"Host": "alpha.localhost"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    assert len(data) == 2_000_000 // 256 * 256
    assert data == bytes(range(256)) * (2_000_000 // 256)
    [(_, line)] = [entry for entry in router.wait_log(2)[1:]]
    assert line.endswith(f"status=200 bytes={len(data)}")


def test_large_chunked_download_intact(router, servers):
    router.route({"alpha": [servers()]})
    conn = connect(router.port)
    for _ in range(2):  # and the connection serves the next request
        conn.request("GET", "/big-chunked?n=3000000", headers={"Host": "alpha.localhost"})
        resp = conn.getresponse()
        assert resp.getheader("Transfer-Encoding") == "chunked"
        assert resp.read() == bytes(range(256)) * (3_000_000 // 256)
    conn.close()


def test_pipelined_requests_answered_in_order(router, servers):
    a = servers()
    router.route({"alpha": [a]})
    reqs = b"".join(
        f"GET /{i} HTTP/1.1\r\nHost: alpha.localhost\r\n\r\n".encode() for i in range(3))
    reply = raw(router.port, reqs + b"GET /last HTTP/1.1\r\nHost: alpha.localhost\r\n"
                b"Connection: close\r\n\r\n")
    assert reply.count(b"HTTP/1.1 200 ") == 4
    paths = re.findall(rb'"path": "([^"]*)"', reply)
    assert paths == [b"/0", b"/1", b"/2", b"/last"]


def test_websocket_upgrade_is_a_raw_pipe(router, servers):
    router.route({"alpha": [servers()]})
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: alpha.localhost\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"upgrade: websocket" in head.lower()
        for word in (b"hello", b"world" * 10_000):
            s.sendall(word)
            got = b""
            while len(got) < len(word):
                got += s.recv(65536)
            assert got == word.upper()
    [(_, line)] = router.wait_log(1)
    assert "status=101" in line


def _response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response with a Content-Length off `sock`: (head, body)."""
    def more() -> bytes:
        piece = sock.recv(65536)
        assert piece, "the router closed the connection"
        return piece

    data = b""
    while b"\r\n\r\n" not in data:
        data += more()
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += more()
    return head, body


def test_expect_100_continue(router, servers):
    """A client that waits for `100 Continue` before its body (curl, for a large
    upload) gets it, then the answer, and keeps its connection."""
    router.route({"alpha": [servers()]})
    body = bytes(range(256)) * 400
    with socket.create_connection(("127.0.0.1", router.port), timeout=10) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: alpha.localhost\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        assert s.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(body)
        head, answer = _response(s)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert json.loads(answer)["sha256"] == hashlib.sha256(body).hexdigest()
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: alpha.localhost\r\n\r\n")
        head, _ = _response(s)
        assert head.startswith(b"HTTP/1.1 200 ")
