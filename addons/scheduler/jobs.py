"""Cron job rows: what to run when, and how its last run went."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from addons.errors import CronError
from runtime.store import Store


@dataclass(frozen=True)
class CronJob:
    id: int
    app: str
    schedule: str
    timezone: str
    command: str
    created_at: float
    last_run_at: float | None = None
    #: the one-off of the last run (`scheduler.3`)
    last_process: str | None = None
    last_status: int | None = None
    #: the one-off of a run still going, as far as the scheduler knows
    running: str | None = None

    @property
    def definition(self) -> tuple[int, str, str, str, str]:
        """What the scheduler's trigger depends on: a change means a new trigger."""
        return (self.id, self.app, self.schedule, self.timezone, self.command)


def add(store: Store, app: str, schedule: str, tz: str, command: str) -> CronJob:
    with store.transaction() as db:
        cursor = db.execute(
            "INSERT INTO cron_jobs (app, schedule, timezone, command, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (app, schedule, tz, command, time.time()),
        )
        job_id = cursor.lastrowid
    return get(store, app, str(job_id))


def remove(store: Store, app: str, job_id: str) -> CronJob:
    job = get(store, app, job_id)
    with store.transaction() as db:
        db.execute("DELETE FROM cron_jobs WHERE id = ?", (job.id,))
    return job


def get(store: Store, app: str, job_id: str) -> CronJob:
    if not job_id.isdigit():
        raise CronError(f"{job_id!r} is not a cron job id (see `cron -a {app}`)")
    rows = store.query("SELECT * FROM cron_jobs WHERE id = ? AND app = ?", (int(job_id), app))
    if not rows:
        raise CronError(f"no cron job {job_id} on {app} (see `cron -a {app}`)")
    return _job(rows[0])


def of_app(store: Store, app: str) -> list[CronJob]:
    return [
        _job(r) for r in store.query("SELECT * FROM cron_jobs WHERE app = ? ORDER BY id", (app,))
    ]


def every(store: Store) -> list[CronJob]:
    return [_job(r) for r in store.query("SELECT * FROM cron_jobs ORDER BY id")]


def started(store: Store, job: CronJob, process: str, at: float) -> None:
    with store.transaction() as db:
        db.execute(
            "UPDATE cron_jobs SET running = ?, last_process = ?, last_run_at = ?,"
            " last_status = NULL WHERE id = ?",
            (process, process, at, job.id),
        )


def finished(store: Store, job_id: int, process: str, status: int | None) -> None:
    with store.transaction() as db:
        db.execute(
            "UPDATE cron_jobs SET running = NULL, last_status = ? WHERE id = ? AND running = ?",
            (status, job_id, process),
        )


def _job(row: sqlite3.Row) -> CronJob:
    return CronJob(
        row["id"], row["app"], row["schedule"], row["timezone"], row["command"],
        row["created_at"], row["last_run_at"], row["last_process"], row["last_status"],
        row["running"],
    )  # fmt: skip
