"""The state store: one SQLite database (WAL) under `OURO_HOME`.

One connection per process, short transactions, schema versioned with
`PRAGMA user_version`: `MIGRATIONS[i]` takes the schema from version i to i+1.
Every write happens in one transaction, so a failure leaves nothing half-written.

Exceptions: `StoreError` is the root; `NotFound` (no such row), `Conflict`
(a row with that name exists already).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runtime.releases import ReleaseStore
from runtime.store_types import (
    FIRST_APP_UID,
    STATUS_FAILED,
    STATUS_PENDING,
    STATUS_SUCCEEDED,
    App,
    Conflict,
    Key,
    NotFound,
    Release,
    StoreError,
)

__all__ = [
    "STATUS_FAILED",
    "STATUS_PENDING",
    "STATUS_SUCCEEDED",
    "App",
    "Conflict",
    "Key",
    "NotFound",
    "Release",
    "Store",
    "StoreError",
]

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE keys (
        name TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL UNIQUE,
        public_key TEXT NOT NULL,
        admin INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE apps (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE access (
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        key_name TEXT NOT NULL REFERENCES keys(name) ON DELETE CASCADE,
        PRIMARY KEY (app, key_name)
    );
    CREATE TABLE config (
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (app, key)
    );
    """,
    """
    ALTER TABLE apps ADD COLUMN uid INTEGER;
    CREATE TABLE uid_sequence (next INTEGER NOT NULL);
    INSERT INTO uid_sequence VALUES (0);
    CREATE TABLE releases (
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        description TEXT NOT NULL,
        author TEXT NOT NULL,
        commit_sha TEXT,
        slug TEXT,
        slug_size INTEGER,
        config TEXT NOT NULL,
        process_types TEXT NOT NULL,
        buildpacks TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (app, version)
    );
    CREATE TABLE formation (
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        type TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        PRIMARY KEY (app, type)
    );
    CREATE TABLE domains (
        hostname TEXT PRIMARY KEY,
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        created_at REAL NOT NULL
    );
    CREATE TABLE app_buildpacks (
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        reference TEXT NOT NULL,
        PRIMARY KEY (app, position)
    );
    """,
    # Add-ons (addons/): no foreign key to apps, so that an app's add-ons can be
    # deprovisioned before or after the app's own row goes.
    """
    CREATE TABLE addons (
        name TEXT PRIMARY KEY,
        app TEXT NOT NULL,
        provider TEXT NOT NULL,
        plan TEXT NOT NULL,
        attachment TEXT NOT NULL,
        state TEXT NOT NULL,
        resource TEXT NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (app, attachment)
    );
    CREATE TABLE backups (
        app TEXT NOT NULL,
        id TEXT NOT NULL,
        addon TEXT NOT NULL,
        size INTEGER NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL NOT NULL,
        PRIMARY KEY (app, id)
    );
    CREATE TABLE backup_schedules (
        app TEXT PRIMARY KEY REFERENCES apps(name) ON DELETE CASCADE,
        hour INTEGER NOT NULL,
        timezone TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE cron_jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
        schedule TEXT NOT NULL,
        timezone TEXT NOT NULL,
        command TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_run_at REAL,
        last_process TEXT,
        last_status INTEGER,
        running TEXT
    );
    """,
)


class Store(ReleaseStore):
    """The platform's state. Thread-safe: one connection, one lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed on success, rolled back on any error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _migrate(self) -> None:
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"the state directory has schema v{version}, newer than this"
                    f" code knows (v{len(MIGRATIONS)})"
                )
            for index in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[index].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    # -- keys -------------------------------------------------------------

    def add_key(self, name: str, fingerprint: str, public_key: str, admin: bool) -> Key:
        """Register a key; the first key ever registered is an admin."""
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM keys WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"a key named {name!r} exists already")
            row = db.execute("SELECT name FROM keys WHERE fingerprint = ?", (fingerprint,))
            if existing := row.fetchone():
                raise Conflict(f"this key is registered already, as {existing['name']!r}")
            first = db.execute("SELECT COUNT(*) FROM keys").fetchone()[0] == 0
            key = Key(name, fingerprint, public_key, admin or first, time.time())
            db.execute(
                "INSERT INTO keys VALUES (?, ?, ?, ?, ?)",
                (key.name, key.fingerprint, key.public_key, int(key.admin), key.created_at),
            )
        return key

    def remove_key(self, name: str) -> None:
        with self.transaction() as db:
            if not db.execute("DELETE FROM keys WHERE name = ?", (name,)).rowcount:
                raise NotFound(f"no key named {name!r}")

    def all_keys(self) -> list[Key]:
        return [_key(r) for r in self.query("SELECT * FROM keys ORDER BY created_at, name")]

    def key(self, name: str) -> Key:
        rows = self.query("SELECT * FROM keys WHERE name = ?", (name,))
        if not rows:
            raise NotFound(f"no key named {name!r}")
        return _key(rows[0])

    def key_by_fingerprint(self, fingerprint: str) -> Key | None:
        rows = self.query("SELECT * FROM keys WHERE fingerprint = ?", (fingerprint,))
        return _key(rows[0]) if rows else None

    # -- apps -------------------------------------------------------------

    def create_app(self, name: str, owner: str) -> App:
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM apps WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"app {name!r} exists already")
            (serial,) = db.execute("SELECT next FROM uid_sequence").fetchone()
            db.execute("UPDATE uid_sequence SET next = next + 1")
            app = App(name, owner, time.time(), FIRST_APP_UID + serial)
            db.execute(
                "INSERT INTO apps (name, owner, created_at, uid) VALUES (?, ?, ?, ?)",
                (name, owner, app.created_at, app.uid),
            )
        return app

    def app(self, name: str) -> App:
        rows = self.query("SELECT * FROM apps WHERE name = ?", (name,))
        if not rows:
            raise NotFound(f"app {name!r} does not exist")
        return _app(rows[0])

    def apps(self) -> list[App]:
        return [_app(r) for r in self.query("SELECT * FROM apps ORDER BY name")]

    def delete_app(self, name: str) -> None:
        with self.transaction() as db:
            if not db.execute("DELETE FROM apps WHERE name = ?", (name,)).rowcount:
                raise NotFound(f"app {name!r} does not exist")

    # -- access -----------------------------------------------------------

    def collaborators(self, app: str) -> list[str]:
        rows = self.query("SELECT key_name FROM access WHERE app = ? ORDER BY key_name", (app,))
        return [r["key_name"] for r in rows]

    def grant(self, app: str, key_name: str) -> None:
        with self.transaction() as db:
            if not db.execute("SELECT 1 FROM keys WHERE name = ?", (key_name,)).fetchone():
                raise NotFound(f"no key named {key_name!r}")
            row = db.execute("SELECT owner FROM apps WHERE name = ?", (app,)).fetchone()
            if row is None:
                raise NotFound(f"app {app!r} does not exist")
            if row["owner"] == key_name:
                raise Conflict(f"{key_name} owns {app} already")
            exists = db.execute(
                "SELECT 1 FROM access WHERE app = ? AND key_name = ?", (app, key_name)
            ).fetchone()
            if exists:
                raise Conflict(f"{key_name} has access to {app} already")
            db.execute("INSERT INTO access VALUES (?, ?)", (app, key_name))

    def revoke(self, app: str, key_name: str) -> None:
        with self.transaction() as db:
            deleted = db.execute(
                "DELETE FROM access WHERE app = ? AND key_name = ?", (app, key_name)
            ).rowcount
            if not deleted:
                raise NotFound(f"{key_name} has no access to {app}")

    def can_access(self, key: Key, app: str) -> bool:
        """Admins reach every app; other keys their own apps and those shared with them."""
        if key.admin:
            return True
        rows = self.query(
            "SELECT 1 FROM apps WHERE name = ? AND owner = ?"
            " UNION SELECT 1 FROM access WHERE app = ? AND key_name = ?",
            (app, key.name, app, key.name),
        )
        return bool(rows)

    # -- config -----------------------------------------------------------

    def config(self, app: str) -> dict[str, str]:
        rows = self.query("SELECT key, value FROM config WHERE app = ? ORDER BY key", (app,))
        return {r["key"]: r["value"] for r in rows}


def _app(row: sqlite3.Row) -> App:
    return App(row["name"], row["owner"], row["created_at"], row["uid"] or 0)


def _key(row: sqlite3.Row) -> Key:
    return Key(
        row["name"], row["fingerprint"], row["public_key"], bool(row["admin"]), row["created_at"]
    )
