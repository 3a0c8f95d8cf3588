"""Which buildpacks a build runs, and where each one's files are.

A reference is a built-in name, an absolute path to a buildpack directory, or
a git URL (``https://``, ``git://``, ``file://``, ``ssh://``, scp-style, or an
absolute path to a git repository), optionally ending in ``#ref``.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from buildpacks.errors import BuildError
from buildpacks.git import is_git_url, redact, split_ref
from buildpacks.workspace import read_app_file

_BUILTIN_ROOT = Path(__file__).resolve().parent / "builtin"

# Auto-detection tries these in this order: procfile is the catch-all for a
# repository with nothing to build.
BUILTINS: dict[str, Path] = {
    "python": _BUILTIN_ROOT / "python",
    "node": _BUILTIN_ROOT / "node",
    "static": _BUILTIN_ROOT / "static",
    "procfile": _BUILTIN_ROOT / "procfile",
}


@dataclass(frozen=True)
class Buildpack:
    """A buildpack directory with ``bin/detect``, ``bin/compile``, ``bin/release``."""

    reference: str  # as the user gave it (URLs without credentials)
    path: Path
    builtin: bool = False

    def has(self, script: str) -> bool:
        return (self.path / "bin" / script).is_file()

    def command(self, script: str, *args: str) -> list[str]:
        """The argv running ``bin/SCRIPT``.

        Built-ins run through ``/bin/sh`` because an installed wheel need not
        keep executable bits; other buildpacks are exec'd, as Heroku does.
        """
        program = str(self.path / "bin" / script)
        return ["/bin/sh", program, *args] if self.builtin else [program, *args]

    def at(self, path: Path) -> Buildpack:
        return replace(self, path=path)

    def check_runnable(self) -> None:
        compile_script = self.path / "bin" / "compile"
        if not compile_script.is_file():
            raise BuildError(f"buildpack {self.reference} has no bin/compile")
        if not self.builtin and not compile_script.stat().st_mode & stat.S_IXUSR:
            raise BuildError(f"buildpack {self.reference}: bin/compile is not executable")


@dataclass(frozen=True)
class Selection:
    references: tuple[str, ...]
    source: str  # where the list came from, for messages
    explicit: bool  # False: auto-detection over the built-ins


def select(build_dir: Path, env: Mapping[str, str], configured: Sequence[str]) -> Selection:
    """Dokku's order: app settings, then ``.buildpacks``, then ``BUILDPACK_URL``."""
    if configured:
        return Selection(tuple(configured), "the app's buildpacks", True)
    listing = read_app_file(build_dir, ".buildpacks")
    if listing is not None:
        lines = (line.strip() for line in listing.splitlines())
        references = tuple(line for line in lines if line and not line.startswith("#"))
        if references:
            return Selection(references, ".buildpacks", True)
    url = env.get("BUILDPACK_URL", "").strip()
    if url:
        return Selection((url,), "BUILDPACK_URL", True)
    return Selection(tuple(BUILTINS), "built-in", False)


def kind(reference: str) -> str:
    """'builtin', 'directory' or 'git'; raises ``BuildError`` for anything else."""
    if reference in BUILTINS:
        return "builtin"
    if is_git_url(reference):
        return "git"
    if reference.startswith("/"):
        path_text, ref = split_ref(reference)
        path = Path(path_text)
        if ref is not None or (not (path / "bin").is_dir() and _is_git_repo(path)):
            return "git"
        if not path.is_dir():
            raise BuildError(f"buildpack path {path} does not exist")
        return "directory"
    raise BuildError(
        f"unknown buildpack {redact(reference)!r}: not a built-in "
        f"({', '.join(BUILTINS)}), an absolute path or a git URL"
    )


def _is_git_repo(path: Path) -> bool:
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())
