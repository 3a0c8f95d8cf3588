"""Backups of an add-on's database: `pg_dump -Fc` files under `OURO_HOME/backups/APP/`.

A capture writes to a hidden `.ID.partial` name and renames it when pg_dump
succeeded, and only then records the row: a capture that was killed, or ran out
of disk, is never listed as completed (its partial file goes at the next
capture). Manual captures are `b001`, `b002`...; scheduled ones `a001`...
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from addons.errors import BackupError, Busy, UnknownAddon
from addons.interface import Addon, Environment, Log
from addons.postgres.server import current_server
from runtime.store import Store

MANUAL, SCHEDULED = "b", "a"
PROGRESS_EVERY = 2.0
#: restores and captures are bounded, but generously (a 1 h cron timeout is the norm)
TOOL_TIMEOUT = 6 * 3600.0
_ID = re.compile(r"^[ab][0-9]{3,}$")


@dataclass(frozen=True)
class Backup:
    app: str
    id: str
    addon: str
    size: int
    started_at: float
    finished_at: float


def backups_dir(env: Environment, app: str) -> Path:
    return env.settings.home / "backups" / app


def path_of(env: Environment, backup: Backup) -> Path:
    return backups_dir(env, backup.app) / f"{backup.id}.dump"


def listing(store: Store, app: str) -> list[Backup]:
    rows = store.query("SELECT * FROM backups WHERE app = ? ORDER BY finished_at, id", (app,))
    return [Backup(r["app"], r["id"], r["addon"], r["size"], r["started_at"], r["finished_at"])
            for r in rows]  # fmt: skip


def find(store: Store, app: str, backup_id: str | None) -> Backup:
    """`backup_id` of `app` (default: its latest); another app's backup is refused."""
    if backup_id and "::" in backup_id:
        owner, _, backup_id = backup_id.partition("::")
        if owner != app:
            raise UnknownAddon(f"{backup_id} is a backup of {owner}: only {app}'s may be used here")
    if backup_id and not _ID.match(backup_id):
        raise UnknownAddon(f"{backup_id!r} is not a backup id (b001, a001, ...)")
    backups = listing(store, app)
    if backup_id is None:
        if not backups:
            raise UnknownAddon(f"{app} has no backups: capture one with pg:backups:capture")
        return backups[-1]
    for backup in backups:
        if backup.id == backup_id:
            return backup
    raise UnknownAddon(f"no backup {backup_id} of {app} (see `pg:backups -a {app}`)")


def capture(
    env: Environment, store: Store, addon: Addon, url: str, kind: str, retention: int, log: Log
) -> Backup:
    """Dump the add-on's database to the next id of `kind`; prune beyond `retention`."""
    folder = backups_dir(env, addon.app)
    with _locked(folder, addon.app):
        for stale in folder.glob(".*.partial"):
            stale.unlink(missing_ok=True)
        backup_id = _next_id(store, folder, addon.app, kind)
        final = folder / f"{backup_id}.dump"
        partial = folder / f".{backup_id}.dump.partial"
        log(f"Backing up {addon.attachment} to {backup_id}...")
        started = time.time()
        tool = current_server(env).bin_dir / "pg_dump"
        argv = [str(tool), "-Fc", "--no-password", "-f", str(partial)]
        try:
            _run_tool(argv, url, log, watch=partial)
            with partial.open("rb") as stream:
                os.fsync(stream.fileno())
            partial.rename(final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        backup = Backup(
            addon.app, backup_id, addon.name, final.stat().st_size, started, time.time()
        )
        with store.transaction() as db:
            db.execute(
                "INSERT INTO backups VALUES (?, ?, ?, ?, ?, ?)",
                (backup.app, backup.id, backup.addon, backup.size, started, backup.finished_at),
            )
        _prune(env, store, addon.app, kind, retention)
    return backup


def restore(env: Environment, addon: Addon, url: str, backup: Backup, log: Log) -> None:
    """Replace the database's objects with the dump's, in one transaction."""
    path = path_of(env, backup)
    if not path.is_file():
        raise BackupError(f"the file of {backup.id} is missing: {path}")
    log(f"Restoring {backup.id} to {addon.attachment}...")
    tool = current_server(env).bin_dir / "pg_restore"
    argv = [
        str(tool), "--clean", "--if-exists", "--no-owner", "--no-acl", "--single-transaction",
        "--exit-on-error", "--no-password", "-d", _database(url), str(path),
    ]  # fmt: skip
    _run_tool(argv, url, log)


def delete(env: Environment, store: Store, backup: Backup) -> None:
    with store.transaction() as db:
        db.execute("DELETE FROM backups WHERE app = ? AND id = ?", (backup.app, backup.id))
    path_of(env, backup).unlink(missing_ok=True)


def forget_app(env: Environment, store: Store, app: str) -> None:
    with store.transaction() as db:
        db.execute("DELETE FROM backups WHERE app = ?", (app,))
    shutil.rmtree(backups_dir(env, app), ignore_errors=True)


def tool_env(url: str) -> dict[str, str]:
    """libpq's variables for `url`: the password never appears in an argv (`ps`)."""
    parts = urlsplit(url)
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PGHOST": parts.hostname or "127.0.0.1",
        "PGPORT": str(parts.port or 5432),
        "PGUSER": unquote(parts.username or ""),
        "PGPASSWORD": unquote(parts.password or ""),
        "PGDATABASE": _database(url),
        "PGPASSFILE": "/dev/null",
        "PGCONNECT_TIMEOUT": "10",
    }


def _database(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def _run_tool(argv: list[str], url: str, log: Log, watch: Path | None = None) -> None:
    name = Path(argv[0]).name
    try:
        proc = subprocess.Popen(
            argv, env=tool_env(url), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    except OSError as e:
        raise BackupError(f"cannot run {name}: {e.strerror or e}") from None
    try:
        deadline = time.monotonic() + TOOL_TIMEOUT
        while True:
            try:
                _, errors = proc.communicate(timeout=PROGRESS_EVERY)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise BackupError(f"{name} took longer than {TOOL_TIMEOUT:.0f}s") from None
                if watch is not None and watch.exists():
                    log(f"  {watch.stat().st_size / 1e6:.1f} MB written")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        lines = [line for line in errors.strip().splitlines() if line.strip()]
        raise BackupError(f"{name} failed: {lines[-1] if lines else f'exit {proc.returncode}'}")


@contextlib.contextmanager
def _locked(folder: Path, app: str) -> Iterator[None]:
    folder.parent.mkdir(mode=0o700, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)
    with (folder / ".lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"a backup of {app} is running already") from None
        yield


def _next_id(store: Store, folder: Path, app: str, kind: str) -> str:
    used = [r["id"] for r in store.query("SELECT id FROM backups WHERE app = ?", (app,))]
    used += [p.stem for p in folder.glob(f"{kind}*.dump")]
    numbers = [int(i[1:]) for i in used if i.startswith(kind) and i[1:].isdigit()]
    return f"{kind}{max(numbers, default=0) + 1:03d}"


def _prune(env: Environment, store: Store, app: str, kind: str, retention: int) -> None:
    mine = [b for b in listing(store, app) if b.id.startswith(kind)]
    for old in mine[: max(0, len(mine) - retention)]:
        delete(env, store, old)


def counts(backups: list[Backup]) -> Mapping[str, int]:
    return {kind: sum(b.id.startswith(kind) for b in backups) for kind in (MANUAL, SCHEDULED)}
