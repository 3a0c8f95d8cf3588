"""`python -m runtime.router`: the router as a process of the `ouro` app."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from runtime.settings import Settings

from .config import RouterConfig
from .glue import ControlLink, FileSnapshots, JsonLinesSink, follow, inherited_socket
from .server import serve
from .table import RoutingTable

logger = logging.getLogger("runtime.router")

EXIT_OK = 0
EXIT_USAGE = 2


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m runtime.router", description=__doc__)
    p.add_argument("--routes", type=Path, help="JSON-lines snapshots; re-read on SIGHUP")
    p.add_argument(
        "--control", type=Path, help="the supervisor's control socket (default: OURO_HOME's)"
    )
    p.add_argument("--listen", metavar="HOST:PORT", help="bind here when no LISTEN_FDS socket")
    p.add_argument("--port", type=int, help="X-Forwarded-Port (default: the socket's port)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds before H12")
    p.add_argument("--grace", type=float, default=30.0, help="seconds to drain on SIGTERM")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    return p.parse_args(argv)


def _listen(spec: str) -> socket.socket:
    host, _, port = spec.rpartition(":")
    sock = socket.create_server((host or "127.0.0.1", int(port)), backlog=1024)
    sock.setblocking(False)
    return sock


async def _run(sock: socket.socket, config: RouterConfig, args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    table = RoutingTable()
    sink: JsonLinesSink | ControlLink
    if args.routes is not None:
        sink = JsonLinesSink(sys.stdout.buffer)
        feeder = loop.create_task(follow(FileSnapshots(args.routes), table))
    else:
        link = ControlLink(args.control or Settings.load().control_socket)
        sink = link
        feeder = loop.create_task(link.follow(table))
    server = loop.create_task(serve(sock, table, config, sink.log))
    await stop.wait()
    server.cancel()
    feeder.cancel()
    for task in (server, feeder):
        with contextlib.suppress(asyncio.CancelledError):
            await task
    sink.flush()
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    sock = inherited_socket()
    if sock is None:
        if not args.listen:
            logger.error("no LISTEN_FDS socket and no --listen")
            return EXIT_USAGE
        sock = _listen(args.listen)
    sock.setblocking(False)
    port = args.port if args.port is not None else sock.getsockname()[1]
    config = RouterConfig(port=port, timeout=args.timeout, grace=args.grace)
    if args.loop == "uvloop":
        import uvloop

        return uvloop.run(_run(sock, config, args))
    return asyncio.run(_run(sock, config, args))


if __name__ == "__main__":
    sys.exit(main())
