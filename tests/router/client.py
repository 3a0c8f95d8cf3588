"""Plain clients for the tests: http.client, and raw sockets for what it cannot send."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any


def connect(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def get(port: int, host: str, path: str = "/", **headers: str) -> tuple[int, dict[str, str], bytes]:
    conn = connect(port)
    try:
        conn.request("GET", path, headers={"Host": host, **headers})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def echo(port: int, host: str, path: str = "/", **headers: str) -> dict[str, Any]:
    """What the backend saw of a GET (its echo answer)."""
    status, _, body = get(port, host, path, **headers)
    assert status == 200, body
    info: dict[str, Any] = json.loads(body)
    return info


def raw(port: int, data: bytes) -> bytes:
    """Send raw bytes, return everything the router sends back until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while piece := s.recv(65536):
            chunks.append(piece)
        return b"".join(chunks)
