"""Add-on rows in the store: reserved first, then marked provisioned, then removed.

A reservation is the lock against a racing `addons:create`: one transaction
checks that no add-on of the app is being provisioned, picks the attachment
name and inserts the row, so two creations never pick the same name.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time

from addons.errors import Busy, UnknownAddon
from addons.interface import STATE_PROVISIONED, STATE_PROVISIONING, Addon
from runtime.store import Store

DEFAULT_ATTACHMENT = "DATABASE"
COLORS = (
    "RED", "ORANGE", "YELLOW", "GREEN", "BLUE", "PURPLE", "PINK", "BROWN",
    "GRAY", "WHITE", "BLACK", "AQUA", "CYAN", "SILVER", "GOLD", "OLIVE",
)  # fmt: skip
_ATTACHMENT = re.compile(r"^[A-Z][A-Z0-9_]{0,40}$")
_WORDS = ("cubic", "rigid", "shaped", "solid", "vertical", "round", "fluffy", "tapered")


def check_attachment(name: str) -> str:
    upper = name.upper().replace("-", "_")
    if not _ATTACHMENT.match(upper):
        raise UnknownAddon(
            f"invalid attachment name {name!r}: letters, digits and _, starting with a letter"
        )
    return upper.removesuffix("_URL")


def reserve(
    store: Store, app: str, provider: str, plan: str, service: str, prefix: str, wanted: str
) -> Addon:
    """Record a new add-on as being provisioned, with a free attachment name.

    `service` starts its name (`postgresql-cubic-04121`), `prefix` its attachment
    when `DATABASE` is taken (`OURO_POSTGRES_RED`), `wanted` is `--as`'s name.
    """
    name = f"{service}-{secrets.choice(_WORDS)}-{secrets.randbelow(100000):05d}"
    now = time.time()
    with store.transaction() as db:
        busy = db.execute(
            "SELECT name FROM addons WHERE app = ? AND state = ?", (app, STATE_PROVISIONING)
        ).fetchone()
        if busy:
            raise Busy(f"{busy['name']} is being provisioned for {app}: try again when it is done")
        rows = db.execute("SELECT attachment FROM addons WHERE app = ?", (app,))
        taken = {r["attachment"] for r in rows}
        config = {r["key"] for r in db.execute("SELECT key FROM config WHERE app = ?", (app,))}
        attachment = _attachment(taken, config, prefix, wanted)
        db.execute(
            "INSERT INTO addons VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (name, app, provider, plan, attachment, STATE_PROVISIONING, "{}", now),
        )
    return Addon(name, app, provider, plan, attachment, STATE_PROVISIONING, {}, now)


def _attachment(taken: set[str], config: set[str], prefix: str, wanted: str) -> str:
    def free(candidate: str) -> bool:
        return candidate not in taken and f"{candidate}_URL" not in config

    if wanted:
        if not free(wanted):
            raise Busy(f"{wanted}_URL is in use already: pick another name with --as")
        return wanted
    if free(DEFAULT_ATTACHMENT):
        return DEFAULT_ATTACHMENT
    for color in COLORS:
        if free(f"{prefix}_{color}"):
            return f"{prefix}_{color}"
    raise Busy("no free attachment name left: give one with --as")


def mark_provisioned(store: Store, addon: Addon, resource: dict[str, str]) -> Addon:
    with store.transaction() as db:
        db.execute(
            "UPDATE addons SET state = ?, resource = ? WHERE name = ?",
            (STATE_PROVISIONED, json.dumps(resource), addon.name),
        )
    return Addon(
        addon.name, addon.app, addon.provider, addon.plan, addon.attachment,
        STATE_PROVISIONED, resource, addon.created_at,
    )  # fmt: skip


def forget(store: Store, name: str) -> None:
    with store.transaction() as db:
        db.execute("DELETE FROM addons WHERE name = ?", (name,))


def of_app(store: Store, app: str) -> list[Addon]:
    rows = store.query("SELECT * FROM addons WHERE app = ? ORDER BY created_at", (app,))
    return [_addon(r) for r in rows]


def find(store: Store, app: str, name: str) -> Addon:
    """An app's add-on by its name or its attachment (`DATABASE`, `DATABASE_URL`)."""
    for addon in of_app(store, app):
        if name in (addon.name, addon.attachment, addon.config_var):
            return addon
    raise UnknownAddon(f"Couldn't find that add-on: {name} (see `addons -a {app}`)")


def _addon(row: sqlite3.Row) -> Addon:
    return Addon(
        row["name"], row["app"], row["provider"], row["plan"], row["attachment"],
        row["state"], json.loads(row["resource"]), row["created_at"],
    )  # fmt: skip
