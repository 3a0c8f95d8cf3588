"""One run of a cron job: a detached one-off `scheduler.N` in the app's current release.

Shared by the scheduler (on schedule) and `cron:run` (now). A run still going
when the next is due is skipped, and the skip is written to the app's log. Its
exit status is read back from the supervisor's `ouro[scheduler.N]` log line.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

from addons.errors import CronError
from addons.scheduler import jobs
from addons.scheduler.jobs import CronJob
from runtime.control import ControlError, request
from runtime.store import Store

SOURCE = "ouro[scheduler]"
_EXITED = re.compile(r"Process exited with status (-?\d+)$")


class Skipped(CronError):
    """The job's previous run is still going."""


def start(control: Path, store: Store, job: CronJob, timeout: float, reason: str) -> str:
    """Start a run of `job`; returns its process name. Raises Skipped or CronError."""
    if job.running:
        if is_running(control, job.app, job.running):
            message = (
                f"Skipping cron job {job.id} ({reason}): its previous run {job.running}"
                " is still going"
            )
            emit(control, job.app, message)
            raise Skipped(message)
        finish(control, store, job)
    try:
        answer = request(
            control, "run", app=job.app, type="scheduler", command=job.command,
            detached=True, timeout=timeout,
        )  # fmt: skip
    except ControlError as e:
        emit(control, job.app, f"Cron job {job.id} ({reason}) could not start: {e}")
        raise CronError(f"cron job {job.id} could not start: {e}") from None
    name = str(answer["name"])
    jobs.started(store, job, name, time.time())
    emit(control, job.app, f"Cron job {job.id} ({reason}) started as {name}: `{job.command}`")
    return name


def is_running(control: Path, app: str, process: str) -> bool:
    try:
        answer = request(control, "ps", app=app)
    except ControlError:
        return True  # unknown: assume so rather than run twice
    return any(p["name"] == process for p in answer.get("processes", []))


def finish(control: Path, store: Store, job: CronJob) -> None:
    """Record the exit status of the job's run that is no longer running."""
    if job.running is None:
        return
    jobs.finished(store, job.id, job.running, exit_status(control, job.app, job.running))


def exit_status(control: Path, app: str, process: str) -> int | None:
    try:
        answer = request(control, "logs", app=app, lines=1500, ps=process, source="ouro")
    except ControlError:
        return None
    for line in reversed(answer.get("lines", [])):
        match = _EXITED.search(line)
        if match:
            return int(match.group(1))
    return None


def emit(control: Path, app: str, text: str) -> None:
    # The log line is a courtesy; the run itself is what matters.
    with contextlib.suppress(ControlError):
        request(control, "emit", app=app, source=SOURCE, text=text)
