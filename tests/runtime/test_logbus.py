"""The log bus on real files."""

from __future__ import annotations

from pathlib import Path

from runtime.logbus import BURST_LINES, KEEP_FILES, RING_LINES, LogBus


def test_lines_have_the_heroku_shape_and_the_ring_keeps_the_newest(tmp_path: Path) -> None:
    bus = LogBus(tmp_path)
    for n in range(RING_LINES + 10):
        bus.emit("myapp", "ouro[api]", f"event {n}")
    recent = bus.recent("myapp", RING_LINES + 100)
    assert len(recent) == RING_LINES
    stamp, source, text = recent[-1].split(" ", 2)
    assert stamp.endswith("+00:00") and "T" in stamp
    assert (source, text) == ("ouro[api]:", f"event {RING_LINES + 9}")
    assert (tmp_path / "myapp" / "myapp.log").read_text().count("\n") == RING_LINES + 10
    bus.close()


def test_files_rotate_by_size(tmp_path: Path) -> None:
    bus = LogBus(tmp_path, rotate_bytes=10_000)
    for n in range(1_000):
        bus.emit("big", "ouro[api]", f"line {n} " + "x" * 100)
    bus.close()
    files = sorted(p.name for p in (tmp_path / "big").iterdir())
    assert files == ["big.log", *(f"big.log.{g}" for g in range(1, KEEP_FILES + 1))]
    assert all(p.stat().st_size <= 10_200 for p in (tmp_path / "big").iterdir())
    assert "line 999 " in (tmp_path / "big" / "big.log").read_text()


def test_a_flood_of_output_is_dropped_and_counted(tmp_path: Path) -> None:
    now = [1000.0]
    bus = LogBus(tmp_path, clock=lambda: now[0])
    flood = BURST_LINES * 3
    for n in range(flood):
        bus.emit("noisy", "app[web.1]", f"spam {n}")
    bus.emit("noisy", "ouro[api]", "not subject to the budget")
    kept = (tmp_path / "noisy" / "noisy.log").read_text().splitlines()
    assert len(kept) == BURST_LINES + 1  # the burst, then only the platform's line
    # once the budget refills, the next line reports what was dropped
    now[0] += 60  # a minute passes
    bus.emit("noisy", "app[web.1]", "calm again")
    tail = (tmp_path / "noisy" / "noisy.log").read_text().splitlines()[-2:]
    assert "ouro[web.1]: Error L10 (output buffer overflow):" in tail[0]
    assert tail[0].endswith("log lines dropped") and tail[1].endswith("app[web.1]: calm again")
    bus.close()


def test_a_new_bus_remembers_the_recent_lines(tmp_path: Path) -> None:
    first = LogBus(tmp_path)
    for n in range(10):
        first.emit("myapp", "ouro[api]", f"before {n}")
    first.close()
    second = LogBus(tmp_path)
    second.emit("myapp", "ouro[api]", "after")
    texts = [line.split(": ", 1)[1] for line in second.recent("myapp", 100)]
    assert texts == [*(f"before {n}" for n in range(10)), "after"]
    second.close()
