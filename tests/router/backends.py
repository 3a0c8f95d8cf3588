"""Real HTTP backends for the router's tests: threaded servers on 127.0.0.1 port 0.

Each path is a behaviour a web process can have: echo what it saw, stream
chunks, send a large body, hang, die mid-response, upgrade to an echo pipe.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: AppServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go in separate writes; without this, delayed ACKs add 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.lock:
            self.server.connections += 1
            self.conn_id = self.server.connections

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers.items()), self.conn_id))
        route = self.path.split("?")[0]
        getattr(self, "get_" + route.strip("/").replace("-", "_"), self.get_echo)()

    do_POST = do_PUT = do_HEAD = do_GET

    def send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def get_echo(self) -> None:
        info = {"dyno": self.server.name, "path": self.path, "conn": self.conn_id,
                "headers": dict(self.headers.items())}
        self.send(200, json.dumps(info).encode())

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def get_upload(self) -> None:
        body = self.read_body()
        info = {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        self.send(200, json.dumps(info).encode())

    def get_chunked(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(5):
            piece = f"chunk {i}\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def get_big(self) -> None:
        size = int(self.path.split("=")[1]) if "=" in self.path else 1 << 21
        self.send(200, bytes(range(256)) * (size // 256), "application/octet-stream")

    def get_big_chunked(self) -> None:
        """`n` bytes in chunks of 256 KiB: reads larger than the router joins."""
        body = bytes(range(256)) * (int(self.path.split("=")[1]) // 256)
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(body), 1 << 18):
            piece = body[start : start + (1 << 18)]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def get_garbage(self) -> None:
        self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
        self.close_connection = True

    def get_large_head(self) -> None:
        """A complete response whose head is 100 KB, written at once."""
        large = b"a" * 100_000
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Large: %s\r\nContent-Length: 0\r\n\r\n" % large)

    def get_endless_head(self) -> None:
        """A status line, then a header that goes on for 1 MB."""
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Endless: " + b"a" * (1 << 20))
        self.close_connection = True

    def get_hang(self) -> None:
        self.server.release.wait(10)
        self.close_connection = True

    def get_wait(self) -> None:
        self.server.entered.set()
        self.server.release.wait(10)
        self.get_echo()

    def get_truncate(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"x" * 10)
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def get_drop(self) -> None:
        self.close_connection = True

    def get_ws(self) -> None:
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", self.headers.get("Upgrade", ""))
        self.send_header("Connection", "Upgrade")
        self.end_headers()
        self.wfile.flush()
        while data := self.connection.recv(65536):
            self.connection.sendall(data.upper())
        self.close_connection = True


class AppServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.name = name
        self.lock = threading.Lock()
        self.connections = 0
        self.seen: list[tuple[str, dict[str, str], int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def stop(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()
        self.thread.join(5)
