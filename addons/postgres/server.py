"""The server that holds the databases: the managed cluster, or `OURO_POSTGRES_URL`'s.

`DatabaseServer.admin()` is a superuser connection (autocommit: `CREATE
DATABASE` runs outside transactions). Starting the managed server is the
supervisor's job: `ensure_server` asks it (`system_refresh`) and waits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from addons.errors import ServerError, first_line
from addons.interface import Environment, Log
from addons.postgres import cluster as clusters
from addons.postgres.binaries import CLIENT_PROGRAMS, find_bin_dir
from runtime.control import ControlError, request

#: how long a server (re)start may take before provisioning gives up
START_TIMEOUT = 60.0
CONNECT_TIMEOUT = 3


@dataclass(frozen=True)
class DatabaseServer:
    #: where apps reach it (their URLs)
    host: str
    port: int
    #: a superuser DSN (libpq's key=value form)
    admin_dsn: str
    #: psql, pg_dump, pg_restore live here
    bin_dir: Path
    managed: bool

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        try:
            return psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as e:
            raise ServerError(f"cannot reach the Postgres server: {first_line(e)}") from None


def ensure_server(env: Environment, log: Log) -> DatabaseServer:
    """The server, made and started if need be, accepting connections."""
    if env.addons.postgres_url:
        return _external(env.addons.postgres_url)
    home = env.settings.home
    cluster = clusters.load(home)
    if cluster is None:
        with clusters.locked(home):
            cluster = clusters.create(home, log)
    server = _managed(cluster)
    if not _accepts(server):
        log("Starting the platform's Postgres server (ouro.postgres.1)...")
        try:
            request(env.settings.control_socket, "system_refresh")
        except ControlError as e:
            raise ServerError(f"cannot start the Postgres server: {e}") from None
        _wait(server)
    _harden(server)
    return server


def current_server(env: Environment) -> DatabaseServer:
    """The server as recorded, without starting anything (pg:* commands, backups)."""
    if env.addons.postgres_url:
        return _external(env.addons.postgres_url)
    cluster = clusters.load(env.settings.home)
    if cluster is None:
        raise ServerError("the platform has no Postgres server yet: run addons:create postgres")
    return _managed(cluster)


def _managed(cluster: clusters.Cluster) -> DatabaseServer:
    dsn = make_conninfo("", **cluster.admin_conninfo())
    return DatabaseServer("127.0.0.1", cluster.port, dsn, cluster.bin_dir, True)


def _external(url: str) -> DatabaseServer:
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError as e:
        raise ServerError(f"OURO_POSTGRES_URL is not a valid DSN: {first_line(e)}") from None
    host = str(info.get("host") or "")
    if not host or host.startswith("/"):
        raise ServerError("OURO_POSTGRES_URL must name a TCP host that apps can reach")
    admin = {k: v for k, v in info.items() if v is not None}
    admin.setdefault("dbname", "postgres")
    port = int(str(info.get("port") or 5432))
    dsn = make_conninfo("", **admin)
    return DatabaseServer(host, port, dsn, find_bin_dir(CLIENT_PROGRAMS), False)


def _accepts(server: DatabaseServer) -> bool:
    try:
        with psycopg.connect(server.admin_dsn, connect_timeout=CONNECT_TIMEOUT):
            return True
    except psycopg.OperationalError:
        return False


def _wait(server: DatabaseServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not _accepts(server):
        if time.monotonic() > deadline:
            raise ServerError(
                f"the Postgres server did not accept connections in {START_TIMEOUT:.0f}s:"
                " see `logs -a ouro --ps postgres.1`"
            )
        time.sleep(0.1)


def _harden(server: DatabaseServer) -> None:
    """No role but the superuser may open the managed cluster's own databases."""
    if not server.managed:
        return  # an external server's other databases are its owner's business
    with server.admin() as conn:
        conn.execute("REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC")
