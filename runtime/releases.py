"""The store's release half: releases, formation, domains and buildpack settings.

Mixed into `runtime.store.Store`; every write is one transaction there.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from runtime.store_types import (
    STATUS_FAILED,
    STATUS_PENDING,
    STATUS_SUCCEEDED,
    Conflict,
    NotFound,
    Release,
)

#: what an app runs: its newest release that succeeded
_NEWEST_SUCCEEDED = (
    "SELECT * FROM releases WHERE app = ? AND status = ? ORDER BY version DESC LIMIT 1"
)


class ReleaseStore:
    """Needs `transaction()` and `query()` from the store it is mixed into."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def query(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        raise NotImplementedError

    # -- releases ---------------------------------------------------------

    def releases(self, app: str, limit: int | None = None) -> list[Release]:
        """Newest first."""
        sql = "SELECT * FROM releases WHERE app = ? ORDER BY version DESC"
        rows = self.query(sql + (" LIMIT ?" if limit else ""), (app, limit) if limit else (app,))
        return [_release(r) for r in rows]

    def release(self, app: str, version: int) -> Release:
        rows = self.query("SELECT * FROM releases WHERE app = ? AND version = ?", (app, version))
        if not rows:
            raise NotFound(f"no release v{version} of {app}")
        return _release(rows[0])

    def current_release(self, app: str) -> Release | None:
        """The newest release that succeeded: what the app runs."""
        rows = self.query(_NEWEST_SUCCEEDED, (app, STATUS_SUCCEEDED))
        return _release(rows[0]) if rows else None

    def cut_release(
        self,
        app: str,
        description: str,
        author: str,
        *,
        commit: str | None,
        slug: str | None,
        slug_size: int | None,
        process_types: Mapping[str, str],
        buildpacks: Sequence[str],
        status: str = STATUS_PENDING,
    ) -> Release:
        """A new release of `slug` with the app's current config."""
        with self.transaction() as db:
            return _insert(
                db,
                app,
                description,
                author,
                commit,
                slug,
                slug_size,
                _config(db, app),
                dict(process_types),
                tuple(buildpacks),
                status,
            )

    def finish_release(self, app: str, version: int, succeeded: bool) -> None:
        status = STATUS_SUCCEEDED if succeeded else STATUS_FAILED
        with self.transaction() as db:
            db.execute(
                "UPDATE releases SET status = ? WHERE app = ? AND version = ?",
                (status, app, version),
            )

    def change_config(
        self, app: str, set_vars: Mapping[str, str], unset: Sequence[str], author: str
    ) -> Release:
        """Change config vars and cut the release that carries them, atomically.

        When the app runs a slug the release is pending until its processes are up
        (`finish_release`, or `abandon_release` to put the config back)."""
        if set_vars:
            description = f"Set {', '.join(set_vars)} config vars"
        else:
            description = f"Unset {', '.join(unset)} config vars"
        with self.transaction() as db:
            _require_app(db, app)
            db.executemany(
                "INSERT INTO config VALUES (?, ?, ?)"
                " ON CONFLICT (app, key) DO UPDATE SET value = excluded.value",
                [(app, k, v) for k, v in set_vars.items()],
            )
            db.executemany(
                "DELETE FROM config WHERE app = ? AND key = ?", [(app, k) for k in unset]
            )
            return _derive(db, app, description, author)

    def pending_releases(self) -> list[Release]:
        """Releases of every app cut but neither run nor refused yet."""
        rows = self.query("SELECT * FROM releases WHERE status = ?", (STATUS_PENDING,))
        return [_release(row) for row in rows]

    def abandon_release(self, app: str, version: int) -> None:
        """Mark a pending release failed and restore the config of the release that runs."""
        with self.transaction() as db:
            db.execute(
                "UPDATE releases SET status = ? WHERE app = ? AND version = ?",
                (STATUS_FAILED, app, version),
            )
            running = _newest_succeeded(db, app)
            db.execute("DELETE FROM config WHERE app = ?", (app,))
            if running is not None:
                db.executemany(
                    "INSERT INTO config VALUES (?, ?, ?)",
                    [(app, k, v) for k, v in running.config.items()],
                )

    def rollback(self, app: str, version: int, author: str) -> Release:
        """A new release with the slug and config of `version`; the config is restored."""
        with self.transaction() as db:
            target = db.execute(
                "SELECT * FROM releases WHERE app = ? AND version = ?", (app, version)
            ).fetchone()
            if target is None:
                raise NotFound(f"no release v{version} of {app}")
            old = _release(target)
            if not old.runnable:
                raise Conflict(f"v{version} never ran: it cannot be rolled back to")
            db.execute("DELETE FROM config WHERE app = ?", (app,))
            db.executemany(
                "INSERT INTO config VALUES (?, ?, ?)", [(app, k, v) for k, v in old.config.items()]
            )
            return _insert(
                db,
                app,
                f"Rollback to v{version}",
                author,
                old.commit,
                old.slug,
                old.slug_size,
                old.config,
                old.process_types,
                old.buildpacks,
                STATUS_PENDING,
            )

    def previous_release(self, app: str, version: int) -> Release | None:
        """The newest release before `version` that can run again: what a rollback
        without a version goes back to."""
        return next((r for r in self.releases(app) if r.version < version and r.runnable), None)

    def slugs_in_use(self, app: str, keep: int) -> set[str]:
        """Slugs of the newest `keep` releases, and of the current one: never pruned."""
        rows = self.query(
            "SELECT slug FROM releases WHERE app = ? AND slug IS NOT NULL"
            " ORDER BY version DESC LIMIT ?",
            (app, keep),
        )
        kept = {r["slug"] for r in rows}
        current = self.current_release(app)
        if current is not None and current.slug:
            kept.add(current.slug)
        return kept

    # -- formation --------------------------------------------------------

    def formation(self, app: str) -> dict[str, int]:
        rows = self.query(
            "SELECT type, quantity FROM formation WHERE app = ? ORDER BY type", (app,)
        )
        return {r["type"]: r["quantity"] for r in rows}

    def set_formation(self, app: str, quantities: Mapping[str, int]) -> None:
        with self.transaction() as db:
            _require_app(db, app)
            db.executemany(
                "INSERT INTO formation VALUES (?, ?, ?)"
                " ON CONFLICT (app, type) DO UPDATE SET quantity = excluded.quantity",
                [(app, t, q) for t, q in quantities.items()],
            )

    # -- domains ----------------------------------------------------------

    def domains(self, app: str | None = None) -> dict[str, str]:
        """`{hostname: app}`, of one app or of all."""
        if app is None:
            rows = self.query("SELECT hostname, app FROM domains ORDER BY hostname")
        else:
            rows = self.query(
                "SELECT hostname, app FROM domains WHERE app = ? ORDER BY hostname", (app,)
            )
        return {r["hostname"]: r["app"] for r in rows}

    def add_domain(self, app: str, hostname: str) -> None:
        with self.transaction() as db:
            _require_app(db, app)
            row = db.execute("SELECT app FROM domains WHERE hostname = ?", (hostname,)).fetchone()
            if row is not None:
                raise Conflict(f"{hostname} is already in use")
            db.execute("INSERT INTO domains VALUES (?, ?, ?)", (hostname, app, time.time()))

    def remove_domain(self, app: str, hostname: str) -> None:
        with self.transaction() as db:
            deleted = db.execute(
                "DELETE FROM domains WHERE hostname = ? AND app = ?", (hostname, app)
            ).rowcount
            if not deleted:
                raise NotFound(f"{hostname} is not a domain of {app}")

    # -- buildpacks -------------------------------------------------------

    def buildpacks(self, app: str) -> list[str]:
        rows = self.query(
            "SELECT reference FROM app_buildpacks WHERE app = ? ORDER BY position", (app,)
        )
        return [r["reference"] for r in rows]

    def set_buildpacks(self, app: str, references: Sequence[str]) -> None:
        with self.transaction() as db:
            _require_app(db, app)
            db.execute("DELETE FROM app_buildpacks WHERE app = ?", (app,))
            db.executemany(
                "INSERT INTO app_buildpacks VALUES (?, ?, ?)",
                [(app, i, ref) for i, ref in enumerate(references)],
            )


def _require_app(db: sqlite3.Connection, app: str) -> None:
    if not db.execute("SELECT 1 FROM apps WHERE name = ?", (app,)).fetchone():
        raise NotFound(f"app {app!r} does not exist")


def _newest_succeeded(db: sqlite3.Connection, app: str) -> Release | None:
    row = db.execute(_NEWEST_SUCCEEDED, (app, STATUS_SUCCEEDED)).fetchone()
    return _release(row) if row else None


def _config(db: sqlite3.Connection, app: str) -> dict[str, str]:
    return dict(db.execute("SELECT key, value FROM config WHERE app = ?", (app,)).fetchall())


def _derive(db: sqlite3.Connection, app: str, description: str, author: str) -> Release:
    """A release like the current one with the app's config as it is now: pending when
    there are processes to restart with it, succeeded at once when nothing runs yet."""
    base = _newest_succeeded(db, app)
    config = _config(db, app)
    return _insert(
        db,
        app,
        description,
        author,
        base.commit if base else None,
        base.slug if base else None,
        base.slug_size if base else None,
        config,
        base.process_types if base else {},
        base.buildpacks if base else (),
        STATUS_PENDING if base is not None and base.slug else STATUS_SUCCEEDED,
    )


def _insert(
    db: sqlite3.Connection,
    app: str,
    description: str,
    author: str,
    commit: str | None,
    slug: str | None,
    slug_size: int | None,
    config: dict[str, str],
    process_types: dict[str, str],
    buildpacks: tuple[str, ...],
    status: str,
) -> Release:
    (last,) = db.execute(
        "SELECT COALESCE(MAX(version), 0) FROM releases WHERE app = ?", (app,)
    ).fetchone()
    release = Release(
        app,
        last + 1,
        description,
        author,
        commit,
        slug,
        slug_size,
        config,
        process_types,
        buildpacks,
        status,
        time.time(),
    )
    db.execute(
        "INSERT INTO releases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            app,
            release.version,
            description,
            author,
            commit,
            slug,
            slug_size,
            json.dumps(config),
            json.dumps(process_types),
            json.dumps(list(buildpacks)),
            status,
            release.created_at,
        ),
    )
    return release


def _release(row: sqlite3.Row) -> Release:
    def load(name: str) -> Any:
        return json.loads(row[name])

    return Release(
        row["app"],
        row["version"],
        row["description"],
        row["author"],
        row["commit_sha"],
        row["slug"],
        row["slug_size"],
        load("config"),
        load("process_types"),
        tuple(load("buildpacks")),
        row["status"],
        row["created_at"],
    )
