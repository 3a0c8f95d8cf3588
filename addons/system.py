"""The platform processes that add-ons need, for the supervisor to run as app `ouro`'s.

`system_processes(settings)` is asked at start and on the control op
`system_refresh` (after an add-on set up a server it needs run). It runs in the
supervisor, the one process that has `ouro up`'s environment: it publishes the
add-ons' settings from there for gitd and the scheduler (`addons.settings`).
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.settings import Settings
from runtime.users import AppUser


@dataclass(frozen=True)
class SystemProcess:
    type: str
    #: argv as shell words (split with shlex, never run by a shell)
    command: str
    #: None: the platform's own user
    user: AppUser | None = None


def system_processes(settings: Settings) -> list[SystemProcess]:
    """The Postgres server once the managed cluster exists. (The scheduler is one of
    the platform's own types: `runtime.selfhost`.)"""
    from addons.postgres.cluster import load

    cluster = None if settings.postgres_url else load(settings.home)
    if cluster is None:
        return []
    return [SystemProcess("postgres", cluster.command, cluster.user())]
