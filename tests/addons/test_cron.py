"""Cron jobs through the real scheduler process (`ouro.scheduler.1`), and a platform
restart that keeps jobs and data. Schedules with seconds (OURO_CRON_SECONDS) keep it fast."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.addons.conftest import app_sql, deploy, ok, psql, refused
from tests.conftest import start_platform
from tests.harness import Platform, SshKey, wait_for


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SshKey]
) -> Iterator[Platform]:
    platform = start_platform(
        tmp_path_factory.mktemp("cron"), keys,
        {"OURO_CRON_SECONDS": "1", "OURO_GRACE_PERIOD": "5", "OURO_BOOT_TIMEOUT": "10"},
    )  # fmt: skip
    yield platform
    assert platform.stop() == 0


def _logs(platform: Platform, key: SshKey, app: str) -> str:
    return ok(platform.ssh(key, "logs", "-a", app, "-n", "1500"))


def _listing_with(platform: Platform, key: SshKey, app: str, words: str) -> str:
    out = ok(platform.ssh(key, "cron", "-a", app))
    return out if words in out else ""


def _add(platform: Platform, key: SshKey, app: str, schedule: str, command: str) -> str:
    out = ok(platform.ssh_raw(key, f"cron:add -a {app} '{schedule}' {command}"))
    return out.split()[0]


def test_a_job_runs_on_its_schedule_and_on_demand(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    deploy(platform, bob, "ticker", tmp_path)
    job = _add(platform, bob, "ticker", "* * * * * *", 'echo "tick from $DYNO"')
    ticks = re.compile(r"app\[scheduler\.\d+\]: tick from scheduler\.\d+")
    wait_for(lambda: len(ticks.findall(_logs(platform, bob, "ticker"))) >= 2, what="two ticks")
    listing = wait_for(lambda: _listing_with(platform, bob, "ticker", "(exit 0)"), what="exit 0")
    assert 'echo "tick from $DYNO"' in str(listing)
    ok(platform.ssh(bob, "cron:remove", job, "-a", "ticker"))
    assert "No cron jobs" in ok(platform.ssh(bob, "cron", "-a", "ticker"))

    yearly = _add(platform, bob, "ticker", "@yearly", "echo on demand; exit 3")
    started = ok(platform.ssh(bob, "cron:run", yearly, "-a", "ticker"))
    assert "scheduler." in started
    wait_for(lambda: "on demand" in _logs(platform, bob, "ticker"), what="the on-demand run")
    wait_for(lambda: _listing_with(platform, bob, "ticker", "(exit 3)"), what="exit 3")


def test_a_run_still_going_is_skipped(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    deploy(platform, bob, "sleepy", tmp_path)
    job = _add(platform, bob, "sleepy", "* * * * * *", "sleep 4")
    wait_for(lambda: f"Skipping cron job {job}" in _logs(platform, bob, "sleepy"), what="a skip")
    ok(platform.ssh(bob, "cron:remove", job, "-a", "sleepy"))


def test_bad_schedules_are_refused(platform: Platform, keys: dict[str, SshKey]) -> None:
    bob = keys["bob"]
    ok(platform.ssh(bob, "apps:create", "badcron"))
    refused(platform.ssh_raw(bob, "cron:add -a badcron '* * *' echo hi"), "invalid schedule")
    refused(platform.ssh_raw(bob, "cron:add -a badcron '61 * * * *' echo hi"), "invalid schedule")
    refused(platform.ssh_raw(bob, "cron:add -a badcron --tz Mars/Base @daily echo"), "time zone")
    refused(platform.ssh_raw(bob, "cron:add -a badcron @daily"), "give a schedule and a command")
    refused(platform.ssh(bob, "cron:remove", "12345", "-a", "badcron"), "no cron job 12345")
    refused(platform.ssh(bob, "cron:run", "x", "-a", "badcron"), "not a cron job id")
    assert "No cron jobs" in ok(platform.ssh(bob, "cron", "-a", "badcron"))


def test_a_restart_keeps_jobs_and_data(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    deploy(platform, bob, "keeper", tmp_path)
    ok(platform.ssh(bob, "addons:create", "-a", "keeper", "postgres"))
    app_sql(platform, bob, "keeper", "CREATE TABLE notes (n text); INSERT INTO notes VALUES ('x')")
    job = _add(platform, bob, "keeper", "*/2 * * * * *", 'echo "after restart"')

    assert platform.stop() == 0
    data = platform.home / "addons" / "postgres" / "data"
    assert not (data / "postmaster.pid").exists(), "Postgres was not shut down cleanly"
    platform.start()

    assert job in ok(platform.ssh(bob, "cron", "-a", "keeper"))
    assert "x" in wait_for(lambda: _sql_or_empty(platform, bob), what="the database back")
    wait_for(
        lambda: "after restart" in _logs(platform, bob, "keeper"), what="the job after restart"
    )
    assert "x" in psql(platform, bob, "keeper", "SELECT n FROM notes")


def _sql_or_empty(platform: Platform, key: SshKey) -> str:
    result = platform.ssh(key, "pg:psql", "-a", "keeper", "-c", "SELECT n FROM notes")
    return result.stdout if result.returncode == 0 else ""
