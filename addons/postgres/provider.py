"""The `postgres` provider: one role and one database per add-on.

Each database is owned by its role and `CONNECT` is revoked from `PUBLIC`, so
one app's credentials open no other app's database; the role gets no other
right. Identifiers and literals go through `psycopg.sql`, never formatting.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from urllib.parse import quote

import psycopg
from psycopg import sql

from addons.errors import ServerError, first_line
from addons.interface import Addon, Environment, Log, Provisioned
from addons.postgres.server import DatabaseServer, current_server, ensure_server

PLANS = ("hobby-dev", "mini", "basic", "standard-0")
#: connections one add-on's role may hold at once
CONNECTION_LIMIT = 40


class PostgresProvider:
    plans: tuple[str, ...] = PLANS
    service: str = "postgresql"
    attachment_prefix: str = "OURO_POSTGRES"

    def __init__(self, env: Environment) -> None:
        self._env = env

    def provision(self, app: str, addon_name: str, plan: str, log: Log) -> Provisioned:
        server = ensure_server(self._env, log)
        role, database = "u" + secrets.token_hex(7), "d" + secrets.token_hex(7)
        password = new_password()
        with server.admin() as conn:
            try:
                conn.execute(
                    sql.SQL(
                        "CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE"
                        " NOREPLICATION NOBYPASSRLS CONNECTION LIMIT {}"
                    ).format(sql.Identifier(role), sql.Literal(password), CONNECTION_LIMIT)
                )
                conn.execute(
                    sql.SQL(
                        "CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0"
                    ).format(sql.Identifier(database), sql.Identifier(role))
                )
                conn.execute(
                    sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
                        sql.Identifier(database)
                    )
                )
            except psycopg.Error as e:
                _drop(conn, role, database)
                raise ServerError(f"cannot create the database: {first_line(e)}") from None
        resource = {
            "role": role,
            "database": database,
            "host": server.host,
            "port": str(server.port),
        }
        return Provisioned({"URL": database_url(resource, password)}, resource)

    def deprovision(self, addon: Addon, log: Log) -> None:
        server = ensure_server(self._env, log)
        with server.admin() as conn:
            try:
                _drop(conn, addon.resource["role"], addon.resource["database"], strict=True)
            except psycopg.Error as e:
                raise ServerError(f"cannot drop the database: {first_line(e)}") from None

    def describe(self, addon: Addon) -> Mapping[str, str]:
        return {
            "Database": addon.resource.get("database", ""),
            "Host": f"{addon.resource.get('host', '')}:{addon.resource.get('port', '')}",
            "Role": addon.resource.get("role", ""),
        }

    def rotate(self, addon: Addon, password: str | None = None) -> str:
        """A new password (or `password`) for the add-on's role; returns the new URL.
        Open sessions end."""
        password = password or new_password()
        role = addon.resource["role"]
        with self.server().admin() as conn:
            try:
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                    (role,),
                )
            except psycopg.Error as e:
                raise ServerError(f"cannot rotate the credentials: {first_line(e)}") from None
        return database_url(addon.resource, password)

    def server(self) -> DatabaseServer:
        return current_server(self._env)


def new_password() -> str:
    return secrets.token_urlsafe(24)


def database_url(resource: Mapping[str, str], password: str) -> str:
    return (
        f"postgres://{resource['role']}:{quote(password, safe='')}"
        f"@{resource['host']}:{resource['port']}/{resource['database']}"
    )


def _drop(
    conn: psycopg.Connection[tuple[object, ...]], role: str, database: str, strict: bool = False
) -> None:
    """Drop what a provisioning made; with `strict`, a failure is raised, not ignored."""
    statements = (
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)),
        sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)),
    )
    for statement in statements:
        try:
            conn.execute(statement)
        except psycopg.Error:
            if strict:
                raise
