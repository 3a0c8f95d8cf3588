"""Procfile parsing: honcho's parser, with errors instead of silent skips.

honcho ignores lines it cannot parse and asserts on duplicate names (an
``assert`` vanishes under ``python -O``), so each line is checked here first
and a bad one is named in a one-line error.
"""

from __future__ import annotations

from honcho.environ import PROCFILE_LINE
from honcho.environ import parse_procfile as honcho_parse_procfile

from buildpacks.errors import BuildError


def parse_procfile(text: str) -> dict[str, str]:
    """Map each process type to its command, in the Procfile's order.

    Blank lines and ``#`` comments are skipped. Raises ``BuildError``
    (``Procfile line 3: ...``) for a line that is not ``type: command``, a
    command that is empty, or a type declared twice.
    """
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = PROCFILE_LINE.match(line)
        if match is None:
            raise BuildError(f"Procfile line {number}: expected 'type: command', got {line!r}")
        name, command = match.group(1), match.group(2)
        if not command.strip():
            raise BuildError(f"Procfile line {number}: process type {name!r} has no command")
        if name in seen:
            raise BuildError(f"Procfile line {number}: process type {name!r} is declared twice")
        seen.add(name)
    processes = honcho_parse_procfile(text).processes
    return {name: command.strip() for name, command in processes.items()}
