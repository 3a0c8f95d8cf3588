"""The log stream of every app: one line per event, kept in a ring and a file.

A line is `2026-12-04T10:00:00.000000+00:00 app[web.1]: message`.
"""

from __future__ import annotations

import collections
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

RING_LINES = 1500
MAX_LINE = 10_000

Subscriber = Callable[[str, str], None]


def format_line(source: str, text: str, now: datetime.datetime | None = None) -> str:
    stamp = (now or datetime.datetime.now(datetime.UTC)).isoformat(timespec="microseconds")
    return f"{stamp} {source}: {text}"


class LogBus:
    """Per-app rings of recent lines, appended to `logs/APP/APP.log`."""

    def __init__(self, logs_dir: Path) -> None:
        self._dir = logs_dir
        self._rings: dict[str, collections.deque[str]] = {}
        self._files: dict[str, TextIO] = {}
        self._subscribers: list[Subscriber] = []

    def emit(self, app: str, source: str, text: str) -> None:
        for chunk in _split(text):
            line = format_line(source, chunk)
            self._ring(app).append(line)
            out = self._file(app)
            out.write(line + "\n")
            out.flush()
            for subscriber in list(self._subscribers):
                subscriber(app, line)

    def recent(self, app: str, count: int = 100) -> list[str]:
        ring = self._ring(app)
        return list(ring)[-count:] if count else []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def forget(self, app: str) -> None:
        """Drop a destroyed app's lines and close its file (its folder is going away)."""
        self._rings.pop(app, None)
        out = self._files.pop(app, None)
        if out is not None:
            out.close()

    def close(self) -> None:
        for out in self._files.values():
            out.close()
        self._files.clear()

    def _ring(self, app: str) -> collections.deque[str]:
        if app not in self._rings:
            self._rings[app] = collections.deque(maxlen=RING_LINES)
        return self._rings[app]

    def _file(self, app: str) -> TextIO:
        if app not in self._files:
            folder = self._dir / app
            folder.mkdir(parents=True, exist_ok=True)
            self._files[app] = (folder / f"{app}.log").open("a", encoding="utf-8")
        return self._files[app]


def _split(text: str) -> list[str]:
    """Long lines are split so that one line never holds the bus up."""
    text = text.rstrip("\n")
    return [text[i : i + MAX_LINE] for i in range(0, max(len(text), 1), MAX_LINE)]
