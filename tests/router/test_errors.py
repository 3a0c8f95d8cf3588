"""What a user sees when no web process can answer: Heroku-coded 503s."""

from __future__ import annotations

import json
import socket

from .client import connect, echo, get, raw
from .conftest import free_port


def error_of(status: int, headers: dict[str, str], body: bytes) -> str:
    assert status == 503, (status, body)
    code = headers["X-Ouro-Error"]
    assert code.encode() in body and b"<html>" in body
    return code


def test_h14_no_web_processes(router):
    router.route({"alpha": []})
    assert error_of(*get(router.port, "alpha.localhost")) == "H14"
    [(app, line)] = router.wait_log(1)
    assert app == "alpha"
    assert line.startswith('at=error code=H14 desc="No web processes running" method=GET path="/"')
    assert "status=503" in line and "dyno= " in line


def test_h10_all_backends_refuse(router):
    router.route({"alpha": [free_port(), free_port()]})
    assert error_of(*get(router.port, "alpha.localhost")) == "H10"
    assert "code=H10" in router.wait_log(1)[0][1]


def test_refused_backend_retried_on_another(router, servers):
    good = servers("web.2")
    router.route({"alpha": [free_port(), good]})
    dynos = [echo(router.port, "alpha.localhost")["dyno"] for _ in range(3)]
    assert dynos == ["web.2"] * 3


def test_h12_timeout(make_router, servers):
    router = make_router(timeout=0.3)
    a = servers()
    router.route({"alpha": [a]})
    conn = connect(router.port)
    conn.request("GET", "/hang", headers={"Host": "alpha.localhost"})
    resp = conn.getresponse()
    assert error_of(resp.status, dict(resp.getheaders()), resp.read()) == "H12"
    a.release.set()
    # The client's connection still serves the next request.
    conn.request("GET", "/", headers={"Host": "alpha.localhost"})
    assert conn.getresponse().status == 200
    conn.close()
    assert "code=H12" in router.wait_log(1)[0][1]


def test_h13_closed_without_response(router, servers):
    router.route({"alpha": [servers()]})
    assert error_of(*get(router.port, "alpha.localhost", "/drop")) == "H13"


def test_h17_malformed_or_endless_response_head(router, servers):
    router.route({"alpha": [servers()]})
    assert error_of(*get(router.port, "alpha.localhost", "/garbage")) == "H17"
    assert error_of(*get(router.port, "alpha.localhost", "/endless-head")) == "H17"
    assert error_of(*get(router.port, "alpha.localhost", "/large-head")) == "H17"
    lines = [line for _, line in router.wait_log(3)]
    assert all('code=H17 desc="Poorly formatted HTTP response"' in line for line in lines)
    assert json.loads(get(router.port, "alpha.localhost")[2])["dyno"] == "web.1"


def test_truncated_response_closes_client_and_router_goes_on(router, servers):
    router.route({"alpha": [servers()]})
    reply = raw(router.port, b"GET /truncate HTTP/1.1\r\nHost: alpha.localhost\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"x" * 10  # cut short, not hung
    assert "code=H13" in router.wait_log(1)[0][1]
    assert json.loads(get(router.port, "alpha.localhost")[2])["dyno"] == "web.1"


def test_client_gone_mid_request_router_goes_on(router, servers):
    a = servers()
    router.route({"alpha": [a]})
    with socket.create_connection(("127.0.0.1", router.port)) as s:
        s.sendall(b"GET /wait HTTP/1.1\r\nHost: alpha.localhost\r\n\r\n")
        assert a.entered.wait(5)
    assert "code=H27" in router.wait_log(1)[0][1]
    a.release.set()
    assert echo(router.port, "alpha.localhost")["dyno"] == "web.1"
