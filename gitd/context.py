"""What every gitd request shares: the settings and this process's store connection."""

from __future__ import annotations

from dataclasses import dataclass

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
