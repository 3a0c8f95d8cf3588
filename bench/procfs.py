"""What the benchmarks read of other processes in /proc: the process tree, CPU
ticks, and memory (RSS and PSS, from smaps_rollup). A process gone meanwhile
reads as absent, never as an error."""

from __future__ import annotations

import contextlib
from pathlib import Path


def stat(pid: int) -> tuple[int, int]:
    """(ppid, utime + stime in clock ticks) of `pid`; raises OSError when it is gone."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def process_tree() -> dict[int, list[int]]:
    """Each pid's children, now."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                tree.setdefault(stat(int(entry.name))[0], []).append(int(entry.name))
    return tree


def descendants(pid: int, tree: dict[int, list[int]] | None = None) -> list[int]:
    """`pid` and every process below it (in `tree`, by default the tree now)."""
    tree = process_tree() if tree is None else tree
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def memory_kb(pid: int) -> dict[str, int]:
    """`{"Rss": kB, "Pss": kB}` of `pid`; empty when it is gone."""
    found = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("Rss", "Pss"):
                found[name] = int(value.split()[0])
    return found
