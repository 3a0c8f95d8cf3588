"""The log stream of every app: one line per event, kept in a ring and a file.

A line is `2026-12-04T10:00:00.000000+00:00 app[web.1]: message`. Files under
`logs/APP/` are rotated by size. An app that prints faster than its budget
never blocks: the excess lines are dropped and counted in the log, as
Heroku's `L10` does.
"""

from __future__ import annotations

import collections
import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

RING_LINES = 1500
MAX_LINE = 10_000
#: a log file is rotated past this size; this many older files are kept
ROTATE_BYTES = 16 * 1024 * 1024
KEEP_FILES = 3
#: how much of a log file is read back into the ring when the bus starts
TAIL_BYTES = 1 << 20
#: lines an app's processes may log per second, with bursts up to the capacity
LINES_PER_SECOND = 5_000
BURST_LINES = 20_000

Subscriber = Callable[[str, str], None]


def format_line(source: str, text: str, now: datetime.datetime | None = None) -> str:
    stamp = (now or datetime.datetime.now(datetime.UTC)).isoformat(timespec="microseconds")
    return f"{stamp} {source}: {text}"


@dataclass
class _Budget:
    """A token bucket of lines per app; what it refuses is counted, not kept."""

    tokens: float = BURST_LINES
    stamp: float = 0.0
    dropped: int = 0
    #: the process whose lines were dropped last (`web.1`)
    dyno: str = ""

    def take(self, now: float) -> bool:
        self.tokens = min(BURST_LINES, self.tokens + (now - self.stamp) * LINES_PER_SECOND)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.dropped += 1
        return False


@dataclass
class _File:
    out: TextIO
    size: int


class LogBus:
    """Per-app rings of recent lines, appended to `logs/APP/APP.log`."""

    def __init__(
        self,
        logs_dir: Path,
        rotate_bytes: int = ROTATE_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dir = logs_dir
        self._clock = clock
        self._rotate_bytes = rotate_bytes
        self._rings: dict[str, collections.deque[str]] = {}
        self._files: dict[str, _File] = {}
        self._budgets: dict[str, _Budget] = {}
        self._subscribers: list[Subscriber] = []

    def emit(self, app: str, source: str, text: str) -> None:
        """Log `text` (split when long); app output (`app[...]`) is subject to the budget."""
        if source.startswith("app["):
            now = self._clock()
            budget = self._budgets.setdefault(app, _Budget(stamp=now))
            if not budget.take(now):
                budget.dyno = source[4:-1]
                return
            self._report(app, budget)
        for chunk in _split(text):
            self._write(app, source, chunk)

    def report_drops(self) -> None:
        """Count dropped lines in the log now, for floods that ended on a dropped line
        (the supervisor calls this every second)."""
        for app, budget in self._budgets.items():
            self._report(app, budget)

    def _report(self, app: str, budget: _Budget) -> None:
        if budget.dropped:
            dropped, budget.dropped = budget.dropped, 0
            self._write(
                app,
                f"ouro[{budget.dyno}]",
                f"Error L10 (output buffer overflow): {dropped} log lines dropped",
            )

    def recent(self, app: str, count: int = 100) -> list[str]:
        ring = self._ring(app)
        return list(ring)[-count:] if count else []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def forget(self, app: str) -> None:
        """Drop a destroyed app's lines and close its file (its folder is going away)."""
        self._rings.pop(app, None)
        self._budgets.pop(app, None)
        record = self._files.pop(app, None)
        if record is not None:
            record.out.close()

    def close(self) -> None:
        for record in self._files.values():
            record.out.close()
        self._files.clear()

    def _write(self, app: str, source: str, text: str) -> None:
        line = format_line(source, text)
        self._ring(app).append(line)
        record = self._file(app)
        record.out.write(line + "\n")
        record.out.flush()
        record.size += len(line) + 1
        if record.size > self._rotate_bytes:
            self._rotate(app)
        for subscriber in list(self._subscribers):
            subscriber(app, line)

    def _ring(self, app: str) -> collections.deque[str]:
        if app not in self._rings:
            # Seeded from the file, so `logs` still has its history after a restart.
            self._rings[app] = collections.deque(self._tail(app), maxlen=RING_LINES)
        return self._rings[app]

    def _tail(self, app: str) -> list[str]:
        try:
            with self._path(app).open("rb") as stream:
                stream.seek(max(0, stream.seek(0, 2) - TAIL_BYTES))
                data = stream.read()
        except OSError:
            return []
        lines = data.decode("utf-8", "replace").splitlines()
        return lines[1:] if len(data) == TAIL_BYTES else lines  # the first may be cut

    def _path(self, app: str, generation: int = 0) -> Path:
        suffix = f".{generation}" if generation else ""
        return self._dir / app / f"{app}.log{suffix}"

    def _file(self, app: str) -> _File:
        if app not in self._files:
            path = self._path(app)
            path.parent.mkdir(parents=True, exist_ok=True)
            out = path.open("a", encoding="utf-8")
            self._files[app] = _File(out, out.tell())
        return self._files[app]

    def _rotate(self, app: str) -> None:
        self._files.pop(app).out.close()
        self._path(app, KEEP_FILES).unlink(missing_ok=True)
        for generation in range(KEEP_FILES - 1, -1, -1):
            older = self._path(app, generation)
            if older.exists():
                older.rename(self._path(app, generation + 1))


def _split(text: str) -> list[str]:
    """Long lines are split so that one line never holds the bus up."""
    text = text.rstrip("\n")
    return [text[i : i + MAX_LINE] for i in range(0, max(len(text), 1), MAX_LINE)]
