"""`cron`, `cron:add`, `cron:remove`, `cron:run`.

`cron:add`'s command is the rest of the raw line after the schedule, verbatim,
as `run`'s is: the one-off's `/bin/sh -c` is the only thing that parses it.
"""

from __future__ import annotations

import argparse
import datetime

from addons.errors import CronError
from addons.scheduler import jobs, runs
from addons.scheduler.schedules import trigger
from gitd.commands.addons import addon_errors, environment
from gitd.commands.base import Command, Invocation, app_badge, styled_header
from gitd.commands.run import words

DEFAULT_TZ = "UTC"


def parse_add_line(line: str, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """`cron:add [-a APP] [--tz TZ] SCHEDULE COMMAND...` from the raw line."""
    args = argparse.Namespace(app=None, tz=DEFAULT_TZ, schedule="", command="")
    stream = words(line)
    next(stream, None)  # `cron:add` itself
    for word in stream:
        text = _text(word.raw, parser)
        if not text.startswith("-") or text == "-":
            args.schedule = text
            args.command = line[word.end :].strip()
            break
        name, has_value, value = text.partition("=")
        if name in ("-h", "--help"):
            parser.print_help()
            parser.exit()
        if name not in ("-a", "--app", "--tz"):
            parser.error(f"unrecognized option {text}")
        if not has_value:
            following = next(stream, None)
            if following is None:
                parser.error(f"{name} needs a value")
            value = _text(following.raw, parser)
        if name == "--tz":
            args.tz = value
        else:
            args.app = value
    if not args.schedule or not args.command:
        parser.error("give a schedule and a command: cron:add '*/10 * * * *' COMMAND")
    return args


def _text(raw: str, parser: argparse.ArgumentParser) -> str:
    import shlex

    try:
        return "".join(shlex.split(raw))
    except ValueError as e:
        parser.error(f"cannot parse {raw!r}: {e}")


def list_jobs(inv: Invocation, args: argparse.Namespace) -> None:
    env = environment(inv)
    found = jobs.of_app(inv.ctx.store, inv.app)
    inv.out(styled_header(f"{inv.app} Cron Jobs"))
    if not found:
        inv.out("No cron jobs. Add one with `cron:add 'SCHEDULE' COMMAND`.")
        return
    rows = [("ID", "Schedule", "Next run", "Last run", "Command")]
    for job in found:
        try:
            upcoming = trigger(job.schedule, job.timezone, env.addons.cron_seconds)
            now = datetime.datetime.now(datetime.UTC)
            fire = upcoming.get_next_fire_time(None, now)
            next_run = _stamp(fire.timestamp()) if fire else "never"
        except CronError:
            next_run = "invalid"
        rows.append(
            (str(job.id), f"{job.schedule} ({job.timezone})", next_run, _last(job), job.command)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        inv.out("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4])


def add_job(inv: Invocation, args: argparse.Namespace) -> None:
    env = environment(inv)
    with addon_errors():
        trigger(args.schedule, args.tz, env.addons.cron_seconds)
    job = jobs.add(inv.ctx.store, inv.app, args.schedule, args.tz, args.command)
    inv.api_log(f"Add cron job {job.id} ({job.schedule} {job.timezone}) by {inv.key.name}")
    inv.progress(f"Adding cron job {job.id} to {app_badge(inv.app)}... done")
    inv.out(f"{job.id}  {job.schedule} ({job.timezone})  {job.command}")


def remove_job(inv: Invocation, args: argparse.Namespace) -> None:
    with addon_errors():
        job = jobs.remove(inv.ctx.store, inv.app, args.id)
    inv.api_log(f"Remove cron job {job.id} by {inv.key.name}")
    inv.progress(f"Removing cron job {job.id} from {app_badge(inv.app)}... done")


def run_job(inv: Invocation, args: argparse.Namespace) -> None:
    env = environment(inv)
    with addon_errors():
        job = jobs.get(inv.ctx.store, inv.app, args.id)
        name = runs.start(
            env.settings.control_socket, inv.ctx.store, job, env.addons.job_timeout, "on demand"
        )
    inv.progress(f"Running cron job {job.id} on {app_badge(inv.app)}... up, {name}")
    inv.out(f"Run `logs -a {inv.app} --ps {name}` to view its output.")


def _last(job: jobs.CronJob) -> str:
    if job.last_run_at is None:
        return "never"
    if job.running:
        outcome = "running"
    elif job.last_status is None:
        outcome = "exit ?"
    else:
        outcome = f"exit {job.last_status}"
    return f"{_stamp(job.last_run_at)} ({outcome})"


def _stamp(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _id_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", metavar="ID", help="the job's id (see `cron`)")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tz", default=DEFAULT_TZ, help="the schedule's time zone (UTC)")
    parser.add_argument("schedule", metavar="SCHEDULE", help="'MIN HOUR DOM MON DOW' or @daily")
    parser.add_argument("command", nargs="+", metavar="COMMAND")


COMMANDS = (
    Command("cron", "list the app's cron jobs", list_jobs, app=True),
    Command("cron:add", "schedule a command: cron:add 'SCHEDULE' COMMAND", add_job,
            _add_arguments, app=True, line_parser=parse_add_line),
    Command("cron:remove", "remove a cron job", remove_job, _id_arguments, app=True),
    Command("cron:run", "run a cron job now", run_job, _id_arguments, app=True),
)  # fmt: skip
