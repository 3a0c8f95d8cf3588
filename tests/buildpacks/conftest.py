"""Helpers for buildpack tests: apps and buildpacks as real directories."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class Log:
    lines: list[str] = field(default_factory=list)

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def write_app(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return directory


def write_buildpack(
    directory: Path,
    *,
    compile_script: str = "true",
    detect: str | None = 'echo "Custom"',
    release: str | None = None,
    executable: bool = True,
) -> Path:
    """A third-party buildpack whose scripts are the given shell snippets."""
    scripts = {"compile": compile_script, "detect": detect, "release": release}
    (directory / "bin").mkdir(parents=True)
    for name, body in scripts.items():
        if body is None:
            continue
        path = directory / "bin" / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        mode = 0o755 if executable else 0o644
        path.chmod(mode)
    return directory


def release_yaml(text: str) -> str:
    return f"cat <<'YAML'\n{text}\nYAML"


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory an unprivileged user can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="ouro-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def process_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie awaiting its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def requires_root() -> pytest.MarkDecorator:
    return pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
