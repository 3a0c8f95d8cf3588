"""Process groups a supervisor leaves behind when it is killed with SIGKILL.

Direct children die with the supervisor (`PR_SET_PDEATHSIG`), but what they
forked lives on in their process groups. The supervisor records its groups
(each child leads one) with the leader's start time; the next start kills
whatever is left of them. A group whose leader's pid now belongs to another
process (same pid, other start time) is left alone: that pid was reused.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from pathlib import Path

log = logging.getLogger(__name__)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def record_groups(path: Path, groups: dict[int, int | None]) -> None:
    """Write `{pgid: leader's start time}` for the next start after a crash."""
    entries = [{"pgid": pgid, "start": start} for pgid, start in sorted(groups.items())]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"boot": _boot_id(), "groups": entries}))
    tmp.replace(path)


def kill_leftovers(path: Path) -> int:
    """SIGKILL the recorded groups that still exist; returns how many were killed."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0
    path.unlink(missing_ok=True)
    if record.get("boot") != _boot_id():
        return 0  # a reboot: every recorded pid means something else now
    killed = 0
    for entry in record.get("groups", []):
        pgid, started = int(entry["pgid"]), entry.get("start")
        now = start_time(pgid)
        if now is not None and now != started:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
            killed += 1
    if killed:
        log.warning("killed %d process groups left by a supervisor that died", killed)
    return killed


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""
