"""The add-ons' own settings, read from `ouro up`'s environment.

`runtime.settings.Settings` hands only its own fields to the platform's
processes, so the supervisor writes these (`publish`, when it asks for the
system processes) to `OURO_HOME/run/addons.json`, where gitd and the
scheduler read them (`AddonSettings.read`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runtime.settings import SettingsError

DEFAULT_JOB_TIMEOUT = 3600.0
DEFAULT_RETENTION = 10


@dataclass(frozen=True)
class AddonSettings:
    #: a superuser DSN of an existing server: add-ons go there, no managed server
    postgres_url: str = ""
    #: accept a sixth (seconds) field in cron schedules: for tests and benchmarks
    cron_seconds: bool = False
    #: seconds a cron run may take before it is stopped
    job_timeout: float = DEFAULT_JOB_TIMEOUT
    #: completed backups kept per app and kind (manual, scheduled)
    backup_retention: int = DEFAULT_RETENTION

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AddonSettings:
        env = os.environ if env is None else env
        try:
            timeout = float(env.get("OURO_JOB_TIMEOUT") or DEFAULT_JOB_TIMEOUT)
            retention = int(env.get("OURO_BACKUP_RETENTION") or DEFAULT_RETENTION)
        except ValueError as e:
            raise SettingsError(f"invalid add-on setting: {e}") from None
        if timeout <= 0 or retention < 1:
            raise SettingsError("OURO_JOB_TIMEOUT and OURO_BACKUP_RETENTION must be positive")
        return cls(
            postgres_url=env.get("OURO_POSTGRES_URL", ""),
            cron_seconds=env.get("OURO_CRON_SECONDS", "") not in ("", "0", "false"),
            job_timeout=timeout,
            backup_retention=retention,
        )

    def publish(self, home: Path) -> None:
        """Write these for the platform's processes (readable by root only: a DSN is a secret)."""
        path = settings_path(home)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as stream:
            json.dump(dataclasses.asdict(self), stream)
        tmp.replace(path)

    @classmethod
    def read(cls, home: Path) -> AddonSettings:
        """What the supervisor published; defaults when it published nothing."""
        try:
            values = json.loads(settings_path(home).read_text())
        except FileNotFoundError:
            return cls()
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def settings_path(home: Path) -> Path:
    # Under run/ (root only), and not in an `addons/` directory: see cluster_root.
    return home / "run" / "addons.json"
