"""A real push hook for the tests (selected with OURO_GIT_HOOK): it talks, waits, decides.

It logs a line, then waits (with a deadline) until the test, having seen that
line on git's terminal, creates `go` in $OURO_TEST_HOOK_DIR: proof that the
log streams live. Apps whose name starts with `reject` are refused.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from gitd.hooks import Log

DEADLINE = 30.0


class GatedHook:
    def on_push(
        self, app: str, old_sha: str, new_sha: str, ref: str, log: Log, pusher: str
    ) -> str | None:
        log(f"-----> building {app} {new_sha[:7]} for {ref}")
        gate = Path(os.environ["OURO_TEST_HOOK_DIR"]) / "go"
        end = time.monotonic() + DEADLINE
        while not gate.exists():
            if time.monotonic() > end:
                return "the test never opened the gate"
            time.sleep(0.02)
        log("-----> gate open")
        if app.startswith("reject"):
            return "build failed: the test hook says no"
        log("-----> done")
        return None
