"""What every gitd request shares: the settings and this process's store connection."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.settings import Settings
from runtime.store import Store


@dataclass(frozen=True)
class Context:
    settings: Settings
    store: Store
