"""The supervisor re-executing itself in place, keeping its children and sockets.

As gunicorn's USR2 and systemd's daemon-reexec do: on SIGUSR2 the supervisor
writes what it runs to `run/reexec.json` (each process's pid, start time,
port, state, and the fd of its output pipe), keeps those fds and the
listening sockets open across `exec`, and execs `ouro up --resume`. The new
code adopts the same processes: none is restarted, no connection refused.
The pid stays the same, so the children stay its children.

The state names the code that wrote it (`fallback`): a new code that fails to
take over execs back into it, and the previous supervisor resumes.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

STATE_FILE = "reexec.json"


class ReexecError(Exception):
    """The handover cannot happen now; the message says why."""


def write_state(run_dir: Path, state: dict[str, Any]) -> Path:
    path = run_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(state, out)
    tmp.replace(path)
    return path


def read_state(path: Path) -> dict[str, Any]:
    """The state a previous supervisor of this process left; removed once read."""
    state: dict[str, Any] = json.loads(path.read_text())
    path.unlink(missing_ok=True)
    if state.get("pid") != os.getpid():
        raise ReexecError(f"{path} was written by process {state.get('pid')}, not by this one")
    return state


def exec_resume(path: Path, python: str, env: dict[str, str]) -> None:
    """Replace this process with `python -m runtime.cli up --resume PATH`; returns only
    if exec fails."""
    os.execve(python, [python, "-P", "-m", "runtime.cli", "up", "--resume", str(path)], env)


def exec_fallback(run_dir: Path, state: dict[str, Any], error: str) -> None:
    """The new code could not take over (`error`): exec back into the code that wrote
    `state`, with what it handed over (its fds made inheritable again)."""
    fallback = state.pop("fallback")
    state["failed"] = error
    fds = [*state["sockets"].values(), state["control"]]
    fds += [s["out"] for f in state["formations"].values() for s in f["slots"] if s["out"]]
    fds += [o["out"] for o in state["oneoffs"]["running"] if o["out"]]
    for fd in fds:
        with contextlib.suppress(OSError):
            os.set_inheritable(fd, True)
    path = write_state(run_dir, state)
    exec_resume(path, fallback["python"], fallback["env"])
