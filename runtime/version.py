"""The version string: `ouro 0.1.0 (abc1234)`, the commit the platform runs."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from runtime.settings import VERSION

_SOURCE = Path(__file__).resolve().parent.parent
#: written into the installed package by setup.py when built from a git checkout
_COMMIT_FILE = Path(__file__).resolve().parent / "COMMIT"


@functools.cache
def commit() -> str:
    """The short commit of the running code, or `unknown`. A release of app `ouro`
    says it in `OURO_COMMIT` (runtime.selfhost): its slug has no `.git`."""
    if os.environ.get("OURO_COMMIT"):
        return os.environ["OURO_COMMIT"][:7]
    if (_SOURCE / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(_SOURCE), "rev-parse", "--short=7", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            )
            return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    if _COMMIT_FILE.exists():
        return _COMMIT_FILE.read_text().strip()[:7] or "unknown"
    return "unknown"


def version_string() -> str:
    return f"ouro {VERSION} ({commit()})"
