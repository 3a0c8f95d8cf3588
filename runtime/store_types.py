"""The store's records and exceptions.

Exceptions: `StoreError` is the root; `NotFound` (no such row), `Conflict`
(a row with that name exists already, or the change contradicts the state).
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.names import SYSTEM_APP


class StoreError(Exception):
    """Root of the store's exceptions."""


class NotFound(StoreError):
    """The named row does not exist."""


class Conflict(StoreError):
    """A row with that name or key exists already."""


@dataclass(frozen=True)
class Key:
    name: str
    fingerprint: str
    public_key: str
    admin: bool
    created_at: float


#: app processes run as uid/gid FIRST_APP_UID + n, one per app, never reused
FIRST_APP_UID = 200_000
STATUS_PENDING, STATUS_SUCCEEDED, STATUS_FAILED = "pending", "succeeded", "failed"


@dataclass(frozen=True)
class App:
    name: str
    owner: str
    created_at: float
    uid: int = 0


@dataclass(frozen=True)
class Release:
    """vN of an app: the slug and the config it runs with, and how it came about."""

    app: str
    version: int
    description: str
    author: str
    commit: str | None
    slug: str | None
    slug_size: int | None
    config: dict[str, str]
    process_types: dict[str, str]
    buildpacks: tuple[str, ...]
    status: str
    created_at: float

    @property
    def runnable(self) -> bool:
        """It ran, and can run again (rollback): it has a slug, or it is the platform's
        v1, the installed code."""
        has_code = self.slug is not None or self.app == SYSTEM_APP
        return self.status == STATUS_SUCCEEDED and has_code
