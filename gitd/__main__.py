"""`python -m gitd`: the SSH server process (`ouro.gitd.1`), run by the supervisor.

It takes the SSH listening socket from `LISTEN_FDS` and its settings from the
`OURO_*` environment; SIGTERM stops accepting and lets open sessions finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from gitd.context import Context
from gitd.server import serve
from runtime.settings import Settings
from runtime.sockets import inherited_sockets
from runtime.store import Store


async def main() -> int:
    sockets = inherited_sockets()
    if not sockets:
        print("gitd: no listening socket was handed over (LISTEN_FDS)", file=sys.stderr)
        return 2
    settings = Settings.load()
    store = Store(settings.db_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    acceptor = await serve(Context(settings, store), sockets[0])
    print(f"gitd listening on {settings.bind}:{settings.ssh_port}", flush=True)
    await stop.wait()
    acceptor.close()
    await acceptor.wait_closed()
    store.close()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main()))
