"""Who builds and runs app code: never root.

When the platform runs as root, builds and processes run as an unprivileged
user; otherwise they run as the platform's own user.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

#: the group of every app user: granted search on the directories above OURO_HOME
APPS_GID = 199_999


@dataclass(frozen=True)
class AppUser:
    """An unprivileged Unix account that app code runs as."""

    name: str
    uid: int
    gid: int
    #: supplementary groups: the apps' group, which may pass through OURO_HOME
    groups: tuple[int, ...] = ()

    @classmethod
    def named(cls, name: str) -> AppUser:
        entry = pwd.getpwnam(name)
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid)

    @classmethod
    def for_app(cls, app: str, uid: int) -> AppUser:
        """An app's own account: uid and gid of its own, no passwd entry needed."""
        return cls(app, uid, uid, (APPS_GID,))


def needs_drop() -> bool:
    """True when app code must not run as the current user (it is root)."""
    return os.geteuid() == 0
