"""Which code a release of app `ouro` runs: the installed code, or a slug's virtualenv.

The platform is an app (DESIGN §2, §4). Its v1 is the code `ouro up` was
started from; a push of the platform's repository builds a slug whose
`.venv` holds that commit, installed editable. Every process of the platform,
the supervisor included, runs the Python of its release: the Procfile's
`python` is found first on the slug's `PATH`, and `OURO_COMMIT` tells
`version` which commit that is (a slug has no `.git`).
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from runtime.names import SYSTEM_APP
from runtime.plan import RELEASE_PHASE
from runtime.settings import Settings
from runtime.store import Release

#: the interpreter of the installed code, set by the first `ouro up` and inherited
BOOTSTRAP_PYTHON = "OURO_BOOTSTRAP_PYTHON"
#: the commit a slug's code was built from
COMMIT_ENV = "OURO_COMMIT"
#: the platform's own process types and the module each runs (the installed code's
#: Procfile; a pushed release brings its own)
BUILTIN_TYPES = {"gitd": "gitd", "router": "runtime.router", "scheduler": "addons.scheduler"}
#: what a pushed repository must be to count as the platform
REQUIRED_TYPES = tuple(BUILTIN_TYPES)
#: seconds the pre-flight import check of a release's code may take
CHECK_TIMEOUT = 60.0


def bootstrap_python() -> str:
    return os.environ.get(BOOTSTRAP_PYTHON) or sys.executable


@dataclass(frozen=True)
class PlatformCode:
    """The interpreter a release of `ouro` runs, and the commit it reports."""

    python: str
    #: None for the installed code: `runtime.version` finds its commit itself
    commit: str | None = None
    slug_dir: Path | None = None

    @classmethod
    def of(cls, release: Release | None, settings: Settings) -> PlatformCode:
        if release is None or release.slug is None:
            return cls(bootstrap_python())
        slug_dir = settings.slugs_dir / SYSTEM_APP / release.slug
        commit = (release.commit or "")[:7] or None
        return cls(str(slug_dir / ".venv" / "bin" / "python"), commit, slug_dir)

    def process_types(self, release: Release | None) -> dict[str, str]:
        """The release's Procfile; the installed code's own types for the bootstrap.
        `-P`: the working directory (OURO_HOME, with its `addons/` folder) must never
        shadow a package."""
        if self.slug_dir is not None and release is not None:
            return {t: c for t, c in release.process_types.items() if t != RELEASE_PHASE}
        return {type_: f"{self.python} -P -m {module}" for type_, module in BUILTIN_TYPES.items()}

    def environ(self, base: dict[str, str]) -> dict[str, str]:
        """`base` for a process of this code: its virtualenv first on PATH, its commit."""
        env = {k: v for k, v in base.items() if k not in (COMMIT_ENV, "VIRTUAL_ENV")}
        env[BOOTSTRAP_PYTHON] = bootstrap_python()
        if self.slug_dir is not None:
            env.pop("PYTHONPATH", None)  # the slug's code, not the installed code
            venv = self.slug_dir / ".venv"
            env["PATH"] = f"{venv / 'bin'}:{base.get('PATH', os.defpath)}"
            env["VIRTUAL_ENV"] = str(venv)
            if self.commit:
                env[COMMIT_ENV] = self.commit
        return env

    def command(self, *args: str) -> list[str]:
        """`ouro ARGS` run by this code."""
        return [self.python, "-P", "-m", "runtime.cli", *args]

    async def check(self) -> str | None:
        """Pre-flight: None when this code imports and runs `ouro check`, else why not."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command("check"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=self.environ(dict(os.environ)),
                cwd="/",
            )
        except OSError as e:
            return f"cannot run {self.python}: {e.strerror or e}"
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), CHECK_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return f"`ouro check` took over {CHECK_TIMEOUT:g} s"
        if proc.returncode == 0:
            return None
        lines = out.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"`ouro check` exited with status {proc.returncode}"
