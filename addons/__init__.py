"""Add-ons: the provider interface, the Postgres provider and the cron scheduler.

`destroy_app_addons` is the entry point for `apps:destroy`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from runtime.settings import Settings
    from runtime.store import Store


def destroy_app_addons(
    settings: Settings, store: Store, app: str, log: Callable[[str], None]
) -> list[str]:
    """Drop `app`'s databases and roles, its backups, backup schedule and cron jobs;
    returns the add-ons' names. Works before or after the app's row is deleted.
    Raises `addons.errors.AddonError` (one line) when a database cannot be dropped."""
    # Imported here: the supervisor imports `addons.system`, which needs none of this.
    from addons.interface import Environment
    from addons.service import destroy_app_addons as destroy

    return destroy(Environment.read(settings), store, app, log)
