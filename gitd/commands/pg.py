"""`pg:info`, `pg:psql`, `pg:credentials:rotate` and the `pg:backups` family.

Every command acts on one of the app's Postgres add-ons: `DATABASE` unless a
name is given. The server is reached with the app's own credentials, the way
the app itself reaches it: the platform's superuser is used only to provision.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import pty
import re
import signal
import struct
import termios
import time
from collections.abc import Callable
from typing import Any

import asyncssh
import psycopg

from addons import records, service
from addons.errors import AddonError, first_line
from addons.interface import Addon
from addons.postgres import backups
from addons.postgres.backups import Backup, tool_env
from addons.postgres.server import current_server
from addons.scheduler.schedules import timezone
from gitd.commands.addons import addon_errors, environment, require_confirm
from gitd.commands.base import (
    Command,
    CommandError,
    Invocation,
    app_badge,
    format_time,
    styled_header,
    styled_object,
)
from runtime.users import AppUser, needs_drop

CHUNK = 1 << 20
_AT = re.compile(r"^([0-9]{1,2}):00(?:\s+(\S+))?$")


def database(inv: Invocation, name: str | None) -> tuple[Addon, str]:
    """The add-on a pg command acts on, and its URL as the app has it."""
    with addon_errors():
        if name:
            addon = records.find(inv.ctx.store, inv.app, name)
        else:
            found = [a for a in records.of_app(inv.ctx.store, inv.app) if a.provider == "postgres"]
            if not found:
                raise CommandError(
                    f"{app_badge(inv.app)} has no databases: create one with addons:create postgres"
                )
            addon = next((a for a in found if a.attachment == records.DEFAULT_ATTACHMENT), found[0])
    if addon.provider != "postgres" or addon.state != "provisioned":
        raise CommandError(f"{addon.name} is not a ready Postgres database")
    url = inv.ctx.store.config(inv.app).get(addon.config_var)
    if not url:
        raise CommandError(f"{addon.config_var} is not set on {inv.app}: the add-on is detached")
    return addon, url


def pg_info(inv: Invocation, args: argparse.Namespace) -> None:
    addon, url = database(inv, args.database)
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT current_setting('server_version'),"
                " pg_size_pretty(pg_database_size(current_database())),"
                " (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()),"
                " (SELECT count(*) FROM pg_tables"
                "   WHERE schemaname NOT IN ('pg_catalog', 'information_schema'))"
            ).fetchone()
    except psycopg.Error as e:
        raise CommandError(f"cannot reach {addon.config_var}: {first_line(e)}") from None
    if row is None:
        raise CommandError(f"{addon.config_var} answered nothing")
    version, size, connections, tables = row
    inv.out(styled_header(addon.config_var))
    inv.out(
        styled_object(
            {
                "Plan": addon.plan,
                "Status": "Available",
                "Connections": connections,
                "PG Version": version,
                "Created": format_time(addon.created_at),
                "Data Size": size,
                "Tables": tables,
                "Add-on": addon.name,
            }
        )
    )


async def pg_psql(inv: Invocation, args: argparse.Namespace) -> None:
    _, url = await asyncio.to_thread(database, inv, args.database)
    with addon_errors():
        server = current_server(environment(inv))
    argv = [str(server.bin_dir / "psql"), "-X", "--no-password", "-v", "ON_ERROR_STOP=1"]
    if args.command:
        argv += ["-c", args.command]
    env = tool_env(url) | {"PSQL_HISTORY": "/dev/null", "HOME": "/", "TERM": "xterm"}
    # psql can run shell commands (`\!`): it runs as the app's user, as `run` would.
    app = inv.ctx.store.app(inv.app)
    user = AppUser.for_app(app.name, app.uid) if needs_drop() else None
    process = inv.console.process
    tty = process.get_terminal_type() is not None and not args.command
    inv.status = await _run_psql(process, argv, env, user, tty)


def rotate(inv: Invocation, args: argparse.Namespace) -> None:
    addon, _ = database(inv, args.database)
    inv.progress(f"Rotating {addon.config_var} on {app_badge(inv.app)}...")
    with addon_errors():
        release = service.rotate_credentials(environment(inv), inv.ctx.store, addon, inv.key.name)
    inv.api_log(f"Rotate credentials of {addon.config_var} (v{release.version}) by {inv.key.name}")
    inv.progress(f"Rotating {addon.config_var} on {app_badge(inv.app)}... done, v{release.version}")


def list_backups(inv: Invocation, args: argparse.Namespace) -> None:
    found = backups.listing(inv.ctx.store, inv.app)
    inv.out(styled_header("Backups"))
    if not found:
        inv.out("No backups. Capture one with `pg:backups:capture`.")
    else:
        inv.out(f"{'ID':<6}{'Created at':<28}{'Status':<42}{'Size':<10}Database")
        for b in found:
            status = f"Completed {format_time(b.finished_at)}"
            inv.out(
                f"{b.id:<6}{format_time(b.started_at):<28}{status:<42}{_size(b.size):<10}{b.addon}"
            )
    rows = inv.ctx.store.query("SELECT * FROM backup_schedules WHERE app = ?", (inv.app,))
    inv.out()
    inv.out(styled_header("Backup Schedules"))
    for row in rows:
        inv.out(f"{records.DEFAULT_ATTACHMENT}_URL: daily at {row['hour']}:00 {row['timezone']}")
    if not rows:
        inv.out("No backup schedules. Add one with `pg:backups:schedule --at '02:00 UTC'`.")


def capture(inv: Invocation, args: argparse.Namespace) -> None:
    addon, url = database(inv, args.database)
    env = environment(inv)
    inv.progress(f"Starting backup of {addon.name}... done")
    with addon_errors():
        backup = backups.capture(
            env,
            inv.ctx.store,
            addon,
            url,
            backups.MANUAL,
            env.addons.backup_retention,
            inv.progress,
        )
    inv.progress(f"Backing up {addon.attachment} to {backup.id}... done, {_size(backup.size)}")
    inv.out(f"Use `pg:backups:download {backup.id} -a {inv.app}` to download it.")


def restore(inv: Invocation, args: argparse.Namespace) -> None:
    addon, url = database(inv, args.database)
    backup = _backup(inv, args.backup)
    require_confirm(inv, args.confirm, f"overwrite {addon.config_var} with {backup.id}")
    with addon_errors():
        backups.restore(environment(inv), addon, url, backup, inv.progress)
    inv.api_log(f"Restore {backup.id} to {addon.config_var} by {inv.key.name}")
    inv.progress(f"Restoring {backup.id} to {addon.attachment}... done")


async def download(inv: Invocation, args: argparse.Namespace) -> None:
    backup = await asyncio.to_thread(_backup, inv, args.backup)
    path = backups.path_of(environment(inv), backup)
    try:
        stream = await asyncio.to_thread(path.open, "rb")
    except OSError as e:
        raise CommandError(f"cannot read {backup.id}: {e.strerror or e}") from None
    out = inv.console.process.stdout
    with stream:
        while chunk := await asyncio.to_thread(stream.read, CHUNK):
            out.write(chunk)  # the dump's bytes, untouched: never through the text console
            await out.drain()


def delete_backup(inv: Invocation, args: argparse.Namespace) -> None:
    backup = _backup(inv, args.backup)
    require_confirm(inv, args.confirm, f"delete backup {backup.id}")
    backups.delete(environment(inv), inv.ctx.store, backup)
    inv.progress(f"Deleting backup {backup.id} on {app_badge(inv.app)}... done")


def schedule(inv: Invocation, args: argparse.Namespace) -> None:
    addon, _ = database(inv, args.database)
    match = _AT.match(args.at.strip())
    if match is None or int(match.group(1)) > 23:
        raise CommandError(f"--at {args.at!r}: give a full hour and a time zone, e.g. '02:00 UTC'")
    hour, zone = int(match.group(1)), match.group(2) or "UTC"
    with addon_errors():
        timezone(zone)
    with inv.ctx.store.transaction() as db:
        db.execute(
            "INSERT INTO backup_schedules VALUES (?, ?, ?, ?) ON CONFLICT (app) DO UPDATE"
            " SET hour = excluded.hour, timezone = excluded.timezone",
            (inv.app, hour, zone, time.time()),
        )
    inv.progress(
        f"Scheduling automatic daily backups of {addon.name} at {hour:02d}:00 {zone}... done"
    )


def unschedule(inv: Invocation, args: argparse.Namespace) -> None:
    with inv.ctx.store.transaction() as db:
        gone = db.execute("DELETE FROM backup_schedules WHERE app = ?", (inv.app,)).rowcount
    if not gone:
        raise CommandError(f"{app_badge(inv.app)} has no backup schedule")
    inv.progress(f"Stopping automatic backups of {app_badge(inv.app)}... done")


def _backup(inv: Invocation, backup_id: str | None) -> Backup:
    try:
        return backups.find(inv.ctx.store, inv.app, backup_id)
    except AddonError as e:
        raise CommandError(str(e)) from None


def _size(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


def _database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("database", nargs="?", metavar="DATABASE", help="default: DATABASE")


def _psql_arguments(parser: argparse.ArgumentParser) -> None:
    _database_argument(parser)
    parser.add_argument("-c", "--command", metavar="SQL", help="run one SQL command and exit")


def _backup_arguments(confirm: bool) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("backup", nargs="?", metavar="ID", help="default: the latest")
        if confirm:
            parser.add_argument("--confirm", metavar="APP", help="the app's name, to confirm")
        parser.add_argument("--database", dest="database", metavar="DATABASE")

    return add


def _schedule_arguments(parser: argparse.ArgumentParser) -> None:
    _database_argument(parser)
    parser.add_argument("--at", required=True, metavar="'HH:00 TZ'", help="daily, at this hour")


# -- psql as a child of gitd, relayed over the SSH channel -----------------------


async def _run_psql(
    process: asyncssh.SSHServerProcess[bytes],
    argv: list[str],
    env: dict[str, str],
    user: AppUser | None,
    tty: bool,
) -> int:
    """Run psql (never a shell) and relay it; returns its exit status."""
    master = slave = -1
    if tty:
        master, slave = pty.openpty()
        cols, rows, _, _ = process.get_terminal_size()
        if rows and cols:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    stdio: dict[str, Any] = (
        {"stdin": slave, "stdout": slave, "stderr": slave, "preexec_fn": _take_terminal}
        if tty
        else {"stdin": asyncio.subprocess.PIPE, "stdout": asyncio.subprocess.PIPE,
              "stderr": asyncio.subprocess.PIPE}
    )  # fmt: skip
    try:
        child = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd="/", start_new_session=True,
            user=user.uid if user else None, group=user.gid if user else None,
            extra_groups=list(user.groups) if user else None, **stdio,
        )  # fmt: skip
    except OSError as e:
        raise CommandError(f"cannot run psql: {e.strerror or e}") from None
    finally:
        if slave >= 0:
            os.close(slave)
    if tty:
        pumps = [_pump_fd(master, process.stdout), _feed_fd(process, master)]
    else:
        if child.stdin is None or child.stdout is None or child.stderr is None:
            raise CommandError("psql started without its pipes")
        pumps = [
            _pump_stream(child.stdout, process.stdout),
            _pump_stream(child.stderr, process.stderr),
            _feed_stream(process, child.stdin),
        ]
    tasks = [asyncio.ensure_future(p) for p in pumps]
    gone = asyncio.ensure_future(process.wait_closed())
    waiter = asyncio.ensure_future(child.wait())
    try:
        await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            await waiter
        # the output pumps end at EOF once psql is gone
        await asyncio.wait(tasks[:-1], timeout=5)
        return waiter.result()
    finally:
        for task in (*tasks, gone):
            task.cancel()
        if master >= 0:
            os.close(master)


def _take_terminal() -> None:
    # Between fork and exec: the pty becomes psql's controlling terminal.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def _pump_stream(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
    while data := await source.read(65536):
        sink.write(data)
        await sink.drain()


async def _feed_stream(
    process: asyncssh.SSHServerProcess[bytes], sink: asyncio.StreamWriter
) -> None:
    with contextlib.suppress(ConnectionError, asyncssh.Error):
        while data := await process.stdin.read(65536):
            sink.write(data)
            await sink.drain()
    sink.close()


async def _pump_fd(fd: int, sink: asyncssh.SSHWriter[bytes]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            data = await loop.run_in_executor(None, os.read, fd, 65536)
        except OSError:  # EIO: psql, the last holder of the terminal, is gone
            return
        if not data:
            return
        sink.write(data)
        await sink.drain()


async def _feed_fd(process: asyncssh.SSHServerProcess[bytes], fd: int) -> None:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(ConnectionError, OSError, asyncssh.Error):
        while data := await process.stdin.read(65536):
            await loop.run_in_executor(None, os.write, fd, data)


COMMANDS = (
    Command("pg:info", "show the database's server, size, tables and connections", pg_info,
            _database_argument, app=True),
    Command("pg:psql", "open psql on the database (-c SQL: run one command)", pg_psql,
            _psql_arguments, app=True),
    Command("pg:credentials:rotate", "give the database a new password (new release)", rotate,
            _database_argument, app=True, owner=True),
    Command("pg:backups", "list the app's database backups", list_backups, app=True),
    Command("pg:backups:capture", "back up the database now", capture, _database_argument,
            app=True),
    Command("pg:backups:restore", "restore a backup (default: the latest) into the database",
            restore, _backup_arguments(confirm=True), app=True, owner=True),
    Command("pg:backups:download", "write a backup's dump to stdout", download,
            _backup_arguments(confirm=False), app=True),
    Command("pg:backups:delete", "delete a backup", delete_backup,
            _backup_arguments(confirm=True), app=True, owner=True),
    Command("pg:backups:schedule", "back up the database daily at an hour", schedule,
            _schedule_arguments, app=True),
    Command("pg:backups:unschedule", "stop the daily backups", unschedule, app=True),
)  # fmt: skip
