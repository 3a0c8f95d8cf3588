"""Who builds and runs app code: never root.

When the platform runs as root, builds and processes run as an unprivileged
user; otherwise they run as the platform's own user.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass


@dataclass(frozen=True)
class AppUser:
    """An unprivileged Unix account that app code runs as."""

    name: str
    uid: int
    gid: int

    @classmethod
    def named(cls, name: str) -> AppUser:
        entry = pwd.getpwnam(name)
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)


def needs_drop() -> bool:
    """True when app code must not run as the current user (it is root)."""
    return os.geteuid() == 0
