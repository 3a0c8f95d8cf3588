"""`ouro local` runs a Procfile here, like `heroku local`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.harness import OURO


def test_runs_the_named_types_with_the_env_file(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text("hello: echo hi $GREETING on $PORT\nother: echo other\n")
    (tmp_path / ".env").write_text("GREETING='there you are'\n")
    result = subprocess.run(
        [*OURO, "local", "hello"], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "hello.1 | hi there you are on 5000" in result.stdout
    assert "other" not in result.stdout


def test_refuses_unknown_types_and_missing_procfiles(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text("web: true\n")
    unknown = subprocess.run([*OURO, "local", "nope"], cwd=tmp_path, capture_output=True, text=True)
    assert unknown.returncode == 1 and "no process type nope" in unknown.stderr
    missing = subprocess.run(
        [*OURO, "local", "-f", "elsewhere/Procfile"], cwd=tmp_path, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "cannot read elsewhere/Procfile" in missing.stderr
