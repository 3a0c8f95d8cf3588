"""The add-ons' settings: their part of `runtime.settings.Settings`."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.settings import Settings


@dataclass(frozen=True)
class AddonSettings:
    #: a superuser DSN of an existing server: add-ons go there, no managed server
    postgres_url: str = ""
    #: accept a sixth (seconds) field in cron schedules: for tests and benchmarks
    cron_seconds: bool = False
    #: seconds a cron run may take before it is stopped
    job_timeout: float = 3600.0
    #: completed backups kept per app and kind (manual, scheduled)
    backup_retention: int = 10

    @classmethod
    def of(cls, settings: Settings) -> AddonSettings:
        return cls(
            settings.postgres_url,
            settings.cron_seconds,
            settings.job_timeout,
            settings.backup_retention,
        )
