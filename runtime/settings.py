"""The one settings object: loaded and validated once at start, passed explicitly.

Every value has an embedded default, an environment variable and (for `ouro up`) a
flag; flags win over the environment, the environment over the defaults.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERSION = "0.1.0"


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    home: Path = Path("~/.ouro")
    bind: str = "127.0.0.1"
    ssh_port: int = 2222
    http_port: int = 8080
    domain: str = "localhost"
    #: seconds between SIGTERM and SIGKILL when stopping a process
    grace_period: float = 30.0
    #: seconds a web process has to listen on its PORT
    boot_timeout: float = 60.0
    #: the most git worker processes gitd runs at once (one is kept ready)
    git_workers: int = 4
    #: seconds a buildpack's compile may take
    build_timeout: float = 900.0
    #: releases whose slugs are kept for rollback
    keep_releases: int = 5
    #: the most processes of one type `ps:scale` accepts
    max_scale: int = 100
    #: a superuser DSN of an existing Postgres: add-ons go there, no managed server
    postgres_url: str = ""
    #: accept a sixth (seconds) field in cron schedules: for tests and benchmarks
    cron_seconds: bool = False
    #: seconds a cron run may take before it is stopped
    job_timeout: float = 3600.0
    #: completed backups kept per app and kind (manual, scheduled)
    backup_retention: int = 10

    # Paths inside the state directory (DESIGN §2 "State").
    @property
    def db_path(self) -> Path:
        return self.home / "ouro.db"

    @property
    def ssh_dir(self) -> Path:
        return self.home / "ssh"

    @property
    def repos_dir(self) -> Path:
        return self.home / "repos"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def slugs_dir(self) -> Path:
        return self.home / "slugs"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def status_file(self) -> Path:
        return self.run_dir / "ouro.json"

    @property
    def control_socket(self) -> Path:
        return self.run_dir / "control.sock"

    def repo_path(self, app: str) -> Path:
        return self.repos_dir / f"{app}.git"

    def git_url(self, app: str) -> str:
        return f"ssh://git@{self.bind}:{self.ssh_port}/{app}"

    def web_url(self, app: str) -> str:
        port = "" if self.http_port == 80 else f":{self.http_port}"
        return f"http://{app}.{self.domain}{port}/"

    def with_ports(self, ssh_port: int, http_port: int) -> Settings:
        return dataclasses.replace(self, ssh_port=ssh_port, http_port=http_port)

    def to_env(self) -> dict[str, str]:
        """The environment that hands these settings to a child process."""
        return {f"OURO_{f.name.upper()}": str(getattr(self, f.name)) for f in _FIELDS}

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `OURO_*` variables of `env`, then non-None `overrides`."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in _FIELDS:
            raw = overrides.get(f.name)
            if raw is None:
                raw = env.get(f"OURO_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, raw)
        settings = cls(**values)
        return dataclasses.replace(settings, home=settings.home.expanduser().absolute())


_FIELDS = dataclasses.fields(Settings)
_TYPES = {f.name: Settings.__annotations__[f.name] for f in _FIELDS}


def _parse(name: str, raw: Any) -> Any:
    kind = _TYPES[name]
    try:
        if kind == "bool":
            return _parse_bool(str(raw))
        if kind == "Path":
            return Path(raw)
        if kind == "int":
            number = int(raw)
            if name.endswith("_port") and not 0 <= number <= 65535:
                raise ValueError
            if not name.endswith("_port") and number < 1:
                raise ValueError
            return number
        if kind == "float":
            seconds = float(raw)
            if seconds < 0 or (name == "job_timeout" and seconds == 0):
                raise ValueError
            return seconds
    except ValueError:
        raise SettingsError(f"invalid value for {name}: {raw!r}") from None
    text = str(raw)
    if not text:
        raise SettingsError(f"{name} must not be empty")
    return text


def _parse_bool(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)
