"""`ouro local`: run an app directory's Procfile on the developer's machine, like
`heroku local`, with honcho doing the running (its Manager stops everything when
one process exits, which is what a developer wants here, not a supervisor).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from honcho import environ
from honcho.manager import Manager
from honcho.printer import Printer

DEFAULT_PORT = 5000


class LocalError(Exception):
    """The Procfile or the .env file cannot be used; the message says why."""


def run_local(procfile: Path, env_file: Path, types: list[str], port: int = DEFAULT_PORT) -> int:
    """Run `types` (all when empty) of `procfile` in the foreground; returns the exit status."""
    try:
        text = procfile.read_text()
    except OSError as e:
        raise LocalError(f"cannot read {procfile}: {e.strerror}") from None
    try:
        processes = environ.parse_procfile(text).processes
    except (AssertionError, ValueError) as e:
        raise LocalError(f"{procfile}: {e}") from None
    unknown = [t for t in types if t not in processes]
    if unknown:
        raise LocalError(f"no process type {', '.join(unknown)} in {procfile}")
    app_env = _read_env(env_file)
    manager = Manager(Printer(sys.stdout, colour=sys.stdout.isatty()))
    wanted = {t: processes[t] for t in (types or processes)}
    for process in environ.expand_processes(wanted, env=app_env, port=port):
        manager.add_process(
            process.name, process.cmd, env={**os.environ, **process.env}, cwd=str(procfile.parent)
        )
    manager.loop()
    return int(manager.returncode or 0)


def _read_env(env_file: Path) -> dict[str, str]:
    if not env_file.exists():
        return {}
    try:
        return dict(environ.parse(env_file.read_text()))
    except OSError as e:
        raise LocalError(f"cannot read {env_file}: {e.strerror}") from None
