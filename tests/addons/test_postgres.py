"""The Postgres add-on end to end: real ssh, a real managed server, real app processes."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.addons.conftest import app_sql, deploy, ok, psql, refused
from tests.conftest import start_platform
from tests.harness import Platform, SshKey, wait_for


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SshKey]
) -> Iterator[Platform]:
    platform = start_platform(
        tmp_path_factory.mktemp("addons"),
        keys,
        {"OURO_GRACE_PERIOD": "5", "OURO_BOOT_TIMEOUT": "10"},
    )
    yield platform
    assert platform.stop() == 0
    assert not _postmaster_pid(platform), "the Postgres server outlived the platform"


def _config(platform: Platform, key: SshKey, app: str) -> dict[str, str]:
    out = ok(platform.ssh(key, "config", "-a", app, "--shell"))
    pairs = (line.split("=", 1) for line in out.splitlines() if "=" in line)
    return {k: v.strip("'") for k, v in pairs}


def _postmaster_pid(platform: Platform) -> int:
    pid_file = platform.home / "addons" / "postgres" / "data" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return 0
    return pid


def test_an_app_writes_its_database_and_backups_restore_it(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    deploy(platform, bob, "shop", tmp_path)
    created = platform.ssh(bob, "addons:create", "-a", "shop", "heroku-postgresql:hobby-dev")
    assert "as DATABASE_URL" in ok(created)
    url = _config(platform, bob, "shop")["DATABASE_URL"]
    assert url.startswith("postgres://") and "@127.0.0.1:" in url
    releases = ok(platform.ssh(bob, "releases", "-a", "shop"))
    assert "DATABASE_URL" in releases  # the attachment cut a release

    app_sql(platform, bob, "shop", "CREATE TABLE orders (id int); INSERT INTO orders VALUES (42)")
    assert "42" in psql(platform, bob, "shop", "SELECT id FROM orders")
    assert "Tables:      1" in ok(platform.ssh(bob, "pg:info", "-a", "shop"))

    captured = platform.ssh(bob, "pg:backups:capture", "-a", "shop")
    assert "b001" in ok(captured)
    assert "b001" in ok(platform.ssh(bob, "pg:backups", "-a", "shop"))
    psql(platform, bob, "shop", "DROP TABLE orders")
    refused(platform.ssh(bob, "pg:backups:restore", "-a", "shop"), "--confirm shop")
    ok(platform.ssh(bob, "pg:backups:restore", "b001", "-a", "shop", "--confirm", "shop"))
    assert app_sql(platform, bob, "shop", "SELECT id FROM orders") == "42"

    dump = subprocess.run(
        [*platform.ssh_command(bob), "git@127.0.0.1", "pg:backups:download -a shop"],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    assert dump.stdout.startswith(b"PGDMP")
    (tmp_path / "shop.dump").write_bytes(dump.stdout)
    listing = subprocess.run(
        ["pg_restore", "-l", str(tmp_path / "shop.dump")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "TABLE public orders" in listing.stdout


def test_apps_cannot_open_each_others_databases(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob, carol = keys["bob"], keys["carol"]
    ok(platform.ssh(bob, "apps:create", "iso-bob"))
    ok(platform.ssh(carol, "apps:create", "iso-carol"))
    ok(platform.ssh(bob, "addons:create", "-a", "iso-bob", "postgres"))
    ok(platform.ssh(carol, "addons:create", "-a", "iso-carol", "postgresql"))
    mine = psycopg.conninfo.conninfo_to_dict(_config(platform, bob, "iso-bob")["DATABASE_URL"])
    theirs = psycopg.conninfo.conninfo_to_dict(
        _config(platform, carol, "iso-carol")["DATABASE_URL"]
    )
    with psycopg.connect(**mine) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    for database in (theirs["dbname"], "postgres", "template1"):
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(**{**mine, "dbname": database})
    refused(platform.ssh(bob, "pg:info", "-a", "iso-carol"), "Couldn't find that app")


def test_a_second_database_rotation_and_destroy(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    ok(platform.ssh(bob, "apps:create", "multi"))
    ok(platform.ssh(bob, "addons:create", "-a", "multi", "postgres"))
    second = ok(platform.ssh(bob, "addons:create", "-a", "multi", "postgres"))
    assert "as OURO_POSTGRES_RED_URL" in second
    ok(platform.ssh(bob, "addons:create", "-a", "multi", "postgres", "--as", "REPORTS"))
    config = _config(platform, bob, "multi")
    assert {"DATABASE_URL", "OURO_POSTGRES_RED_URL", "REPORTS_URL"} <= set(config)

    ok(platform.ssh(bob, "pg:credentials:rotate", "-a", "multi"))
    rotated = _config(platform, bob, "multi")["DATABASE_URL"]
    assert rotated != config["DATABASE_URL"]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(config["DATABASE_URL"])
    psycopg.connect(rotated).close()

    name = second.split()[1]
    refused(platform.ssh(bob, "addons:destroy", name, "-a", "multi"), "--confirm multi")
    ok(platform.ssh(bob, "addons:destroy", name, "-a", "multi", "--confirm", "multi"))
    assert "OURO_POSTGRES_RED_URL" not in _config(platform, bob, "multi")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(config["OURO_POSTGRES_RED_URL"])
    assert name not in ok(platform.ssh(bob, "addons", "-a", "multi"))


def test_bad_input_is_refused_in_one_line(platform: Platform, keys: dict[str, SshKey]) -> None:
    bob = keys["bob"]
    ok(platform.ssh(bob, "apps:create", "plain"))
    refused(platform.ssh(bob, "addons:create", "-a", "plain", "mysql"), "mysql")
    refused(platform.ssh(bob, "addons:create", "-a", "plain", "postgres:gold"), "no plan 'gold'")
    refused(platform.ssh(bob, "addons:create", "-a", "plain", "postgres", "--as", "9x"), "9x")
    refused(platform.ssh(bob, "pg:info", "-a", "plain"), "has no databases")
    refused(platform.ssh(bob, "pg:backups:capture", "-a", "plain"), "has no databases")
    refused(platform.ssh(bob, "addons:info", "nothing", "-a", "plain"), "Couldn't find that add-on")
    assert ok(platform.ssh(bob, "addons", "-a", "plain")).startswith("No add-ons")
    ok(platform.ssh(bob, "addons:create", "-a", "plain", "postgres"))
    for backup, words in (("b999", "no backup b999"), ("shop::b001", "backup of shop"),
                          ("x; rm", "not a backup id")):  # fmt: skip
        refused(
            platform.ssh(bob, "pg:backups:restore", backup, "-a", "plain", "--confirm", "plain"),
            words,
        )
    refused(platform.ssh(bob, "pg:backups:download", "-a", "plain"), "has no backups")
    refused(platform.ssh(bob, "pg:backups:schedule", "-a", "plain", "--at", "25:00"), "full hour")
    refused(
        platform.ssh(bob, "pg:backups:schedule", "-a", "plain", "--at", "02:00 Mars/Base"),
        "unknown time zone",
    )
    ok(platform.ssh(bob, "pg:backups:schedule", "-a", "plain", "--at", "02:00 Europe/Paris"))
    assert "daily at 2:00 Europe/Paris" in ok(platform.ssh(bob, "pg:backups", "-a", "plain"))
    ok(platform.ssh(bob, "pg:backups:unschedule", "-a", "plain"))


def test_a_killed_server_is_restarted_with_its_data(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    deploy(platform, bob, "durable", tmp_path)
    ok(platform.ssh(bob, "addons:create", "-a", "durable", "postgres"))
    app_sql(
        platform, bob, "durable", "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('safe')"
    )
    pid = _postmaster_pid(platform)
    assert pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: _postmaster_pid(platform) not in (0, pid), what="a new postmaster")

    def reads() -> str:
        result = platform.ssh_raw(
            bob, "run -a durable -- psql -X -A -t \"$DATABASE_URL\" -c 'SELECT v FROM kept'"
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    assert wait_for(reads, what="the app to reconnect") == "safe"


def test_destroying_an_app_drops_its_databases(
    platform: Platform, keys: dict[str, SshKey]
) -> None:
    bob = keys["bob"]
    ok(platform.ssh(bob, "apps:create", "doomed"))
    ok(platform.ssh(bob, "addons:create", "-a", "doomed", "postgres"))
    url = _config(platform, bob, "doomed")["DATABASE_URL"]
    psycopg.connect(url).close()
    result = platform.ssh(bob, "apps:destroy", "-a", "doomed", "--confirm", "doomed")
    assert result.returncode == 0, result.stderr
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url)
    ok(platform.ssh(bob, "apps:create", "doomed"))
    assert ok(platform.ssh(bob, "addons", "-a", "doomed")) == "No add-ons for app doomed.\n"
