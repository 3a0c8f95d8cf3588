"""Cron schedules as users write them, made into APScheduler triggers.

Five fields (`m h dom mon dow`), or `@hourly`, `@daily`...; with the
`OURO_CRON_SECONDS` setting, also six fields whose first is the second (tests
and benchmarks need schedules faster than a minute). Day-of-week numbers are
cron's (0 and 7 are Sunday): APScheduler 3 counts from Monday, so they are
translated to names here.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo

from apscheduler.triggers.cron import CronTrigger

from addons.errors import CronError

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DOW_PART = re.compile(r"^(\*|[0-7]|[a-z]{3})(?:-([0-7]|[a-z]{3}))?(?:/([0-9]+))?$")


def timezone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name!r} (e.g. UTC, Europe/Paris)") from None


def trigger(schedule: str, tz: str, seconds: bool = False) -> CronTrigger:
    """The trigger for `schedule` in zone `tz`; CronError says what is wrong."""
    zone = timezone(tz)
    text = ALIASES.get(schedule.strip().lower(), schedule)
    fields = text.split()
    second = "0"
    if seconds and len(fields) == 6:
        second, fields = fields[0], fields[1:]
    if len(fields) != 5:
        allowed = "five fields (or six with seconds)" if seconds else "five fields"
        raise CronError(
            f"invalid schedule {schedule!r}: cron needs {allowed}, 'MIN HOUR DOM MON DOW',"
            " or @hourly, @daily, @weekly, @monthly, @yearly"
        )
    minute, hour, day, month, dow = fields
    try:
        return CronTrigger(
            second=second, minute=minute, hour=hour, day=day, month=month,
            day_of_week=_day_of_week(dow), timezone=zone,
        )  # fmt: skip
    except ValueError as e:
        raise CronError(f"invalid schedule {schedule!r}: {e}") from None


def next_run(schedule: str, tz: str, seconds: bool = False) -> datetime.datetime | None:
    now = datetime.datetime.now(datetime.UTC)
    fire: datetime.datetime | None = trigger(schedule, tz, seconds).get_next_fire_time(None, now)
    return fire


def _day_of_week(field: str) -> str:
    """Cron's day-of-week field as the set of day names APScheduler reads."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        match = _DOW_PART.match(part)
        if match is None:
            raise CronError(f"invalid day of week {field!r}")
        first, last, step = match.groups()
        if first == "*":
            low, high = 0, 6
        else:
            low = _day(first)
            high = _day(last) if last else low
        if last and high == 0 and low > 0:
            high = 7  # `5-7`, `fri-sun`: up to Sunday
        if step is None and not last and first != "*":
            days.add(low % 7)
            continue
        if high < low or (step is not None and int(step) < 1):
            raise CronError(f"invalid day of week {field!r}")
        days.update(d % 7 for d in range(low, high + 1, int(step or 1)))
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def _day(token: str) -> int:
    if token.isdigit():
        return int(token)
    if token not in _DAY_NAMES:
        raise CronError(f"invalid day of week {token!r}")
    return _DAY_NAMES.index(token)
