"""Fixtures: the real router on 127.0.0.1 port 0 in a thread, real backends."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvloop

from runtime.router import RouterConfig, RoutingTable, serve

from .backends import AppServer


def free_port() -> int:
    """A port that refuses connections: bound, then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Router:
    """The router serving in its own event loop thread, as the supervisor runs it."""

    def __init__(self, **config: Any) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])
        self.config = RouterConfig(port=self.port, **config)
        self.table = RoutingTable()
        self.logs: list[tuple[str, str]] = []
        self.log_event = threading.Event()
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever)
        self.thread.start()
        self.task = self.call(lambda: self.loop.create_task(self._serve()))

    async def _serve(self) -> None:
        await serve(self.sock, self.table, self.config, self._log)

    def _log(self, app: str, line: str) -> None:
        self.logs.append((app, line))
        self.log_event.set()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run fn on the router's loop and return its result."""
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as e:  # handed back to the test thread
                done.set_exception(e)

        self.loop.call_soon_threadsafe(run)
        return done.result(5)

    def replace(self, snapshot: dict[str, Any]) -> None:
        self.call(lambda: self.table.replace(snapshot))

    def route(self, apps: dict[str, list[AppServer | int]], domain: str = "localhost",
              hosts: dict[str, list[str]] | None = None) -> None:
        """Route each app to servers (or bare ports), dynos named web.1, web.2, ..."""
        snapshot: dict[str, Any] = {"domain": domain, "apps": {}}
        for app, servers in apps.items():
            backends = [
                {"dyno": f"web.{i}", "host": "127.0.0.1",
                 "port": s if isinstance(s, int) else s.port}
                for i, s in enumerate(servers, 1)
            ]
            snapshot["apps"][app] = {"hosts": (hosts or {}).get(app, []), "backends": backends}
        self.replace(snapshot)

    def wait_log(self, count: int, timeout: float = 5.0) -> list[tuple[str, str]]:
        """The first `count` log lines, waiting for them with a deadline."""
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while len(self.logs) < count and not deadline.is_set():
                self.log_event.wait(0.05)
                self.log_event.clear()
        finally:
            timer.cancel()
        assert len(self.logs) >= count, self.logs
        return self.logs[:count]

    def stop(self) -> None:
        async def cancel() -> None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
        self.sock.close()


@pytest.fixture
def router() -> Iterator[Router]:
    r = Router()
    yield r
    r.stop()


@pytest.fixture
def make_router() -> Iterator[Callable[..., Router]]:
    made: list[Router] = []

    def make(**config: Any) -> Router:
        made.append(Router(**config))
        return made[-1]

    yield make
    for r in made:
        r.stop()


@pytest.fixture
def servers() -> Iterator[Callable[[str], AppServer]]:
    made: list[AppServer] = []

    def make(name: str = "web.1") -> AppServer:
        s = AppServer(name)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()
