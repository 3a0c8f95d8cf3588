"""Helpers for the add-on tests: an app with a running release, SQL through the platform."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from tests.harness import Platform, SshKey, make_repo, ok, refused

__all__ = ["ok", "refused"]  # the add-on tests import them from here

WEB = "web: python3 -m http.server $PORT --bind 127.0.0.1\n"

if subprocess.run(["sh", "-c", "command -v pg_config || ls /usr/lib/postgresql"],
                  capture_output=True).returncode != 0:  # fmt: skip
    pytest.skip("PostgreSQL is not installed", allow_module_level=True)


def deploy(platform: Platform, key: SshKey, app: str, folder: Path) -> None:
    """Push a tiny web app, so that one-offs have a release to run in."""
    repo = make_repo(folder / app, {"Procfile": WEB, "index.html": "ok\n"})
    pushed = platform.git(key, "push", platform.url(app), "main", cwd=repo, check=False)
    assert pushed.returncode == 0, pushed.stderr


def app_sql(platform: Platform, key: SshKey, app: str, statement: str) -> str:
    """Run SQL from a one-off of the app, through its own DATABASE_URL (the app's view)."""
    line = f'run -a {app} -- psql -X -A -t "$DATABASE_URL" -c {shlex.quote(statement)}'
    return ok(platform.ssh_raw(key, line)).strip()


def psql(platform: Platform, key: SshKey, app: str, statement: str) -> str:
    return ok(platform.ssh(key, "pg:psql", "-a", app, "-c", statement))
