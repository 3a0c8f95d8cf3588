"""The add-ons' exceptions, one tree.

AddonError                 root: the message is the one line a user sees
|-- UnknownAddon           no such provider, plan or add-on
|-- Busy                   another operation holds what this one needs
|-- ServerError            the database server is missing, down or refused
|-- BackupError            a capture, restore or download failed
`-- CronError              a bad schedule, time zone or job
"""

from __future__ import annotations


class AddonError(Exception):
    """Root of the add-ons' exceptions."""


class UnknownAddon(AddonError):
    """No provider, plan or add-on by that name."""


class Busy(AddonError):
    """Another operation (a provisioning, a backup) is in progress."""


class ServerError(AddonError):
    """The Postgres server cannot be found, started or reached."""


class BackupError(AddonError):
    """A backup could not be captured, restored or read."""


class CronError(AddonError):
    """A cron schedule, time zone or job that cannot be used."""


def first_line(error: BaseException) -> str:
    """A library's (psycopg's) multi-line message as the one line a user sees."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
