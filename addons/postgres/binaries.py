"""Where the PostgreSQL programs are: on PATH, through `pg_config`, or under
`/usr/lib/postgresql/*/bin` (Debian's versioned layout, newest first)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from addons.errors import ServerError

SERVER_PROGRAMS = ("initdb", "postgres", "pg_dump", "pg_restore", "psql")
CLIENT_PROGRAMS = ("pg_dump", "pg_restore", "psql")
INSTALL_HINT = (
    "install them (Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install"
    " postgresql-server; macOS: brew install postgresql), or set OURO_POSTGRES_URL"
    " to an existing server's superuser DSN"
)


def find_bin_dir(programs: tuple[str, ...] = SERVER_PROGRAMS) -> Path:
    """The first directory holding every one of `programs`; ServerError when none does."""
    for folder in _candidates():
        if all((folder / name).is_file() for name in programs):
            return folder
    raise ServerError(f"PostgreSQL programs not found ({', '.join(programs)}): {INSTALL_HINT}")


def _candidates() -> Iterator[Path]:
    on_path = shutil.which("initdb") or shutil.which("pg_dump")
    if on_path:
        yield Path(on_path).resolve().parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            yield Path(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    versioned = Path("/usr/lib/postgresql").glob("*/bin")
    yield from sorted(versioned, key=_version_key, reverse=True)


def _version_key(folder: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", folder.parent.name)) or (0,)
