"""`python -m addons.scheduler`: the platform process `ouro.scheduler.1`."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from addons.interface import Environment
from addons.scheduler.service import CronScheduler
from runtime.settings import Settings, SettingsError
from runtime.store import Store, StoreError


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        settings = Settings.load()
        store = Store(settings.db_path)
    except (SettingsError, StoreError) as e:
        print(f"scheduler: {e}", file=sys.stderr)
        return 1
    try:
        CronScheduler(Environment.read(settings), store).run(stop)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
