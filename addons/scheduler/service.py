"""The scheduler process: APScheduler's triggers over the store's cron jobs.

It is rebuilt from the store at start and follows the store after: every
`POLL` seconds it reads the jobs (a small table) and adds, replaces or removes
APScheduler jobs to match, so `cron:add` takes effect without a restart. A
run is started by the supervisor (`runs.start`) and returns at once; its end
is noticed by the same poll. Runs missed while the platform was down are
coalesced into one, started as soon as the scheduler is back.
"""

from __future__ import annotations

import datetime
import logging
import threading
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from addons.errors import AddonError
from addons.interface import Environment
from addons.scheduler import jobs, runs
from addons.scheduler.jobs import CronJob
from addons.scheduler.schedules import timezone, trigger
from runtime.store import Store

log = logging.getLogger(__name__)

POLL = 0.5
_BACKUP = "backup:"
_CRON = "cron:"


class CronScheduler:
    def __init__(self, env: Environment, store: Store) -> None:
        self._env = env
        self._store = store
        self._aps = BackgroundScheduler(
            timezone=datetime.UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        #: APScheduler job id -> the definition it was made from
        self._known: dict[str, tuple[Any, ...]] = {}

    def run(self, stop: threading.Event) -> None:
        self._aps.start()
        try:
            while not stop.is_set():
                self.sync()
                self.finish_runs()
                stop.wait(POLL)
        finally:
            self._aps.shutdown(wait=False)

    def sync(self) -> None:
        """Make APScheduler's jobs match the store's cron jobs and backup schedules."""
        wanted: dict[str, tuple[tuple[Any, ...], CronJob | None]] = {}
        for cron_job in jobs.every(self._store):
            wanted[f"{_CRON}{cron_job.id}"] = (cron_job.definition, cron_job)
        for row in self._store.query("SELECT * FROM backup_schedules"):
            wanted[f"{_BACKUP}{row['app']}"] = ((row["app"], row["hour"], row["timezone"]), None)
        for gone in set(self._known) - set(wanted):
            self._aps.remove_job(gone)
            del self._known[gone]
        for key, (definition, job) in wanted.items():
            if self._known.get(key) == definition:
                continue
            if key in self._known:
                self._aps.remove_job(key)
            self._known[key] = definition
            try:
                made = self._trigger(definition, job)
            except AddonError as e:
                log.warning("%s cannot be scheduled: %s", key, e)
                continue
            first = _first_run(made, job)
            self._aps.add_job(self._fire, made, args=(key,), id=key, next_run_time=first)
            log.info("scheduled %s: %s", key, definition)

    def _trigger(self, definition: tuple[Any, ...], job: CronJob | None) -> CronTrigger:
        if job is not None:
            return trigger(job.schedule, job.timezone, self._env.addons.cron_seconds)
        _, hour, zone = definition
        return CronTrigger(hour=hour, minute=0, timezone=timezone(zone))

    def finish_runs(self) -> None:
        control = self._env.settings.control_socket
        for job in jobs.every(self._store):
            if job.running and not runs.is_running(control, job.app, job.running):
                runs.finish(control, self._store, job)

    def _fire(self, key: str) -> None:
        kind, _, ident = key.partition(":")
        try:
            if f"{kind}:" == _BACKUP:
                self._backup(ident)
                return
            job = jobs.get(self._store, _app_of(self._store, int(ident)), ident)
            runs.start(
                self._env.settings.control_socket, self._store, job,
                self._env.addons.job_timeout, "scheduled",
            )  # fmt: skip
        except AddonError as e:
            log.warning("%s: %s", key, e)

    def _backup(self, app: str) -> None:
        from addons.postgres import backups
        from addons.records import find

        addon = find(self._store, app, "DATABASE")
        url = self._store.config(app)[addon.config_var]
        control = self._env.settings.control_socket
        try:
            backup = backups.capture(
                self._env, self._store, addon, url, backups.SCHEDULED,
                self._env.addons.backup_retention, log.info,
            )  # fmt: skip
        except AddonError as e:
            runs.emit(control, app, f"Scheduled backup of {addon.attachment} failed: {e}")
            raise
        runs.emit(control, app, f"Scheduled backup {backup.id} of {addon.attachment} done")


def _app_of(store: Store, job_id: int) -> str:
    rows = store.query("SELECT app FROM cron_jobs WHERE id = ?", (job_id,))
    return str(rows[0]["app"]) if rows else ""


def _first_run(made: CronTrigger, job: CronJob | None) -> datetime.datetime | None:
    """The first fire time after the job's last run (or its creation): in the past when
    runs were missed while the scheduler was down, which APScheduler then coalesces."""
    if job is None:
        return made.get_next_fire_time(None, datetime.datetime.now(datetime.UTC))  # type: ignore[no-any-return]
    since = datetime.datetime.fromtimestamp(job.last_run_at or job.created_at, datetime.UTC)
    return made.get_next_fire_time(None, since)  # type: ignore[no-any-return]
