"""`python -m gitd`: the SSH server process (`ouro.gitd.1`), run by the supervisor.

It takes the SSH listening socket from `LISTEN_FDS` and its settings from the
`OURO_*` environment; SIGTERM stops accepting and lets open sessions finish.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from gitd.context import Context
from gitd.hooks import DEFAULT_HOOK, HOOK_ENV
from gitd.server import Sessions, serve
from gitd.worker import remove_orphans
from gitd.workers import WorkerPool, bound_heap
from runtime.settings import Settings
from runtime.sockets import inherited_sockets
from runtime.store import Store

#: seconds of the supervisor's grace period kept for stopping after the drain
DRAIN_MARGIN = 5.0


async def main() -> int:
    sockets = inherited_sockets()
    if not sockets:
        print("gitd: no listening socket was handed over (LISTEN_FDS)", file=sys.stderr)
        return 2
    settings = Settings.load()
    store = Store(settings.db_path)
    for objects in settings.repos_dir.glob("*.git/objects"):
        remove_orphans(str(objects))  # left by a gitd generation that was killed
    workers = WorkerPool(settings.git_workers)
    workers.start()
    hook = os.environ.get(HOOK_ENV) or DEFAULT_HOOK
    ctx = Context(settings, store, workers, hook)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, ctx.stopping.set)
    sessions = Sessions()
    acceptor = await serve(ctx, sockets[0], sessions)
    print(f"gitd listening on {settings.bind}:{settings.ssh_port}", flush=True)
    await ctx.stopping.wait()
    acceptor.close()  # no new connections; open sessions go on
    deadline = loop.time() + max(1.0, settings.grace_period - DRAIN_MARGIN)
    await sessions.drained(deadline - loop.time())
    await workers.close(timeout=max(0.1, deadline - loop.time()))
    await acceptor.wait_closed()
    store.close()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    bound_heap()
    sys.exit(asyncio.run(main()))
