"""What every gitd request shares: the settings and this process's store connection."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from gitd.hooks import DEFAULT_HOOK
from gitd.workers import WorkerPool
from runtime.settings import Settings
from runtime.store import Store


@dataclass(frozen=True)
class Context:
    settings: Settings
    store: Store
    #: the git worker processes (None: git is not served, e.g. in command-only tests)
    git_workers: WorkerPool | None = None
    #: the push hook spec the workers run (`gitd.hooks`)
    git_hook: str = DEFAULT_HOOK
    #: set when gitd stops: work in progress may finish, but what only follows
    #: (`logs --tail`) ends now rather than hold the stop up to the grace period
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
