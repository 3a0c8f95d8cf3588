"""The receive pipeline's stages, in order: checkout, build, release, release phase, deploy.

Each stage is a small object with a `name` and a `run(push)`; it reports
through `push.log` and fails by raising `StageError` with the reason the
client sees (`! [remote rejected] main -> main (reason)`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from buildpacks import BuildError, BuildResult, compile_slug
from buildpacks.procfile import parse_procfile
from hooks.checkout import CheckoutError, checkout
from hooks.slugs import apply_slugignore
from runtime.control import ControlError, run_attached
from runtime.names import SYSTEM_APP
from runtime.process import LineReader
from runtime.rollout import deploy
from runtime.selfhost import REQUIRED_TYPES
from runtime.settings import Settings
from runtime.sizes import human_size, tree_size
from runtime.store import Release, Store
from runtime.users import AppUser

Log = Callable[[str], None]
INDENT = "       "


class StageError(Exception):
    """A stage failed: the message is the push's rejection reason."""


@dataclass
class Push:
    """One deploy in the making, handed from stage to stage."""

    settings: Settings
    store: Store
    app: str
    sha: str
    pusher: str
    log: Log
    user: AppUser | None
    slug_id: str
    slug_dir: Path
    build: BuildResult | None = None
    slug_size: int = 0
    release: Release | None = None
    timings: dict[str, float] = field(default_factory=dict)


class Stage(Protocol):
    name: str

    def run(self, push: Push) -> None: ...


class Checkout:
    name = "checkout"

    def run(self, push: Push) -> None:
        push.slug_dir.mkdir(mode=0o755)
        if push.user is not None:
            os.chown(push.slug_dir, push.user.uid, push.user.gid)
        try:
            checkout(push.settings.repo_path(push.app), push.sha, push.slug_dir, push.user)
        except CheckoutError as e:
            raise StageError(str(e)) from None
        apply_slugignore(push.slug_dir)


class PlatformCheck:
    """A push to app `ouro` must be the platform: its Procfile runs the platform's
    processes and it installs as a Python project (the rest is `ouro check`'s)."""

    name = "platform check"

    def run(self, push: Push) -> None:
        procfile = push.slug_dir / "Procfile"
        try:
            types = parse_procfile(procfile.read_text())
        except (OSError, UnicodeDecodeError, BuildError) as e:
            raise StageError(f"not the platform: no readable Procfile ({e})") from None
        missing = [t for t in REQUIRED_TYPES if t not in types]
        if missing:
            raise StageError(f"not the platform: its Procfile has no {', '.join(missing)}")
        if not any((push.slug_dir / f).is_file() for f in ("pyproject.toml", "setup.py")):
            raise StageError("not the platform: no pyproject.toml or setup.py to install")
        push.log("-----> Building the platform itself (app ouro)")


class Build:
    name = "build"

    def run(self, push: Push) -> None:
        config = push.store.config(push.app)
        try:
            push.build = compile_slug(
                push.slug_dir,
                push.settings.cache_dir / push.app,
                config,
                buildpacks=push.store.buildpacks(push.app),
                log=push.log,
                user=push.user,
                timeout=push.settings.build_timeout,
                clone_dir=push.settings.cache_dir / ".buildpacks",
            )
        except BuildError as e:
            push.log(f" !     {e}")
            push.log(" !     Push rejected, failed to compile app.")
            raise StageError("build failed") from None
        push.slug_size = tree_size(push.slug_dir)
        push.log(f"-----> Compressing... done, {human_size(push.slug_size, compact=True)}")


class CutRelease:
    name = "release"

    def run(self, push: Push) -> None:
        if push.build is None:
            raise StageError("nothing was built")
        push.release = push.store.cut_release(
            push.app,
            f"Deploy {push.sha[:7]}",
            push.pusher,
            commit=push.sha,
            slug=push.slug_id,
            slug_size=push.slug_size,
            process_types=push.build.process_types,
            buildpacks=push.build.buildpacks,
        )


class ReleasePhase:
    name = "release phase"

    def run(self, push: Push) -> None:
        release = _release(push)
        command = release.process_types.get("release")
        if not command:
            return
        push.log("-----> Running release command...")
        lines = LineReader(lambda line: push.log(INDENT + line))
        try:
            status = run_attached(
                push.settings.control_socket,
                lines.feed,
                app=push.app,
                command=command,
                type="release",
                version=release.version,
            )
        except ControlError as e:
            raise StageError(f"release phase failed: {e}") from None
        lines.flush()
        if status != 0:
            push.log(f" !     Release command exited with status {status}")
            raise StageError(f"release phase failed (exit status {status})")


class Deploy:
    name = "deploy"

    def run(self, push: Push) -> None:
        release = _release(push)
        try:
            deploy(push.settings, push.app, release.version)
        except ControlError as e:
            push.log(f" !     {e}")
            raise StageError(f"deploy failed: {e}") from None
        push.log(f"-----> Launching... done, v{release.version}")
        if push.app == SYSTEM_APP:
            push.log(f"{INDENT}The platform runs {push.sha[:7]} (v{release.version})")
        else:
            push.log(f"{INDENT}{push.settings.web_url(push.app)} deployed to Ouro")


STAGES: tuple[Stage, ...] = (Checkout(), Build(), CutRelease(), ReleasePhase(), Deploy())
#: the platform has no release phase: `ouro check` and the health gates stand for it
PLATFORM_STAGES: tuple[Stage, ...] = (Checkout(), PlatformCheck(), Build(), CutRelease(), Deploy())


def stages_for(app: str) -> tuple[Stage, ...]:
    return PLATFORM_STAGES if app == SYSTEM_APP else STAGES


def discard_slug(push: Push) -> None:
    shutil.rmtree(push.slug_dir, ignore_errors=True)


def _release(push: Push) -> Release:
    if push.release is None:
        raise StageError("no release was cut")
    return push.release
