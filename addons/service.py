"""Add-on operations as the commands (and `apps:destroy`) run them.

Each change of config vars is one `store.change_config` (it cuts the release
that carries it), then the app restarts onto that release when it runs one.
A failed provisioning leaves neither a row, nor a database, nor a config var.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from addons import records
from addons.errors import AddonError, ServerError
from addons.interface import Addon, Environment, Log
from addons.postgres.provider import PostgresProvider
from addons.providers import parse_spec, provider_for
from runtime import rollout
from runtime.store import Release, Store

log = logging.getLogger(__name__)


def create_addon(
    env: Environment, store: Store, app: str, spec_text: str, as_name: str, author: str, log: Log
) -> tuple[Addon, Release]:
    """Provision, attach (config var + release), restart. Raises AddonError, and then
    nothing of the add-on is left: no row, no database, no config var."""
    spec, provider = parse_spec(spec_text, env)
    wanted = records.check_attachment(as_name) if as_name else ""
    addon = records.reserve(
        store, app, spec.provider, spec.plan, provider.service, provider.attachment_prefix, wanted
    )
    try:
        provisioned = provider.provision(app, addon.name, spec.plan, log)
    except BaseException:
        records.forget(store, addon.name)
        raise
    try:
        config = {f"{addon.attachment}_{k}": v for k, v in provisioned.config.items()}
        release = store.change_config(app, config, [], author)
        addon = records.mark_provisioned(store, addon, dict(provisioned.resource))
        roll_out(env, store, release)
    except BaseException:
        provider.deprovision(addon, log)
        records.forget(store, addon.name)
        raise
    return addon, release


def destroy_addon(env: Environment, store: Store, addon: Addon, author: str, log: Log) -> Release:
    """Detach (config var unset, a release, restart), then deprovision. When the app does
    not come up without it, nothing changes and the add-on stays."""
    release = store.change_config(addon.app, {}, [addon.config_var], author)
    roll_out(env, store, release)
    provider_for(addon.provider, env).deprovision(addon, log)
    records.forget(store, addon.name)
    return release


def rotate_credentials(env: Environment, store: Store, addon: Addon, author: str) -> Release:
    """A new password, carried by a new release; the old one works no more."""
    old_url = store.config(addon.app).get(addon.config_var, "")
    provider = PostgresProvider(env)
    url = provider.rotate(addon)
    release = store.change_config(addon.app, {addon.config_var: url}, [], author)
    try:
        roll_out(env, store, release)
    except AddonError:
        # The running processes hold the old password: it must work again.
        provider.rotate(addon, password=urlsplit(old_url).password or None)
        raise
    return release


def destroy_app_addons(env: Environment, store: Store, app: str, log: Log) -> list[str]:
    """Everything `app` had from add-ons: databases and roles, backups, schedules, jobs.

    For `apps:destroy`, before or after the app's own row is deleted (add-on rows
    do not depend on it). Returns the names of the add-ons destroyed; raises
    AddonError on the first one that cannot be (the rest stay, for a retry).
    """
    from addons.postgres import backups

    destroyed = []
    for addon in records.of_app(store, app):
        provider_for(addon.provider, env).deprovision(addon, log)
        records.forget(store, addon.name)
        destroyed.append(addon.name)
    backups.forget_app(env, store, app)
    with store.transaction() as db:
        db.execute("DELETE FROM cron_jobs WHERE app = ?", (app,))
        db.execute("DELETE FROM backup_schedules WHERE app = ?", (app,))
    return destroyed


def roll_out(env: Environment, store: Store, release: Release) -> None:
    """`runtime.rollout.roll_out`, failing as an add-on operation does."""
    try:
        rollout.roll_out(env.settings, store, release)
    except rollout.RolloutError as e:
        raise AddonError(str(e)) from None


__all__ = [
    "AddonError",
    "ServerError",
    "create_addon",
    "destroy_addon",
    "destroy_app_addons",
    "roll_out",
    "rotate_credentials",
]
