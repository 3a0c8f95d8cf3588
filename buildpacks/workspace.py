"""The directories a build hands to its buildpacks, and who may use them.

Each build gets a scratch directory (removed afterwards) holding ENV_DIR,
a HOME for the buildpack processes and a private copy of every buildpack:
copies because a built-in may sit in a package directory the build user
cannot read (and wheels drop executable bits), and because buildpacks write
their ``export`` file into their own directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from buildpacks.errors import BuildError
from runtime.users import AppUser


@dataclass(frozen=True)
class Workspace:
    root: Path
    env_dir: Path
    home: Path
    buildpacks: Path  # private copies, one subdirectory per buildpack


@contextmanager
def workspace(env: Mapping[str, str], user: AppUser | None) -> Iterator[Workspace]:
    """A fresh scratch directory for one build, owned by ``user``; removed on exit."""
    root = Path(tempfile.mkdtemp(prefix="ouro-build-"))
    try:
        space = Workspace(root, root / "env", root / "home", root / "buildpacks")
        for directory in (space.env_dir, space.home, space.buildpacks):
            directory.mkdir(mode=0o700)
        write_env_dir(space.env_dir, env)
        hand_over(root, user)
        yield space
    finally:
        shutil.rmtree(root, ignore_errors=True)


def write_env_dir(env_dir: Path, env: Mapping[str, str]) -> None:
    """One file per config var, named after it, holding its value as is."""
    for name, value in env.items():
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise BuildError(f"config var name {name!r} cannot be passed to a buildpack")
        path = env_dir / name
        path.write_text(value, encoding="utf-8")
        path.chmod(0o600)


def hand_over(path: Path, user: AppUser | None, *, trust_owned_root: bool = False) -> None:
    """Make ``path`` and everything under it owned by ``user``.

    With ``trust_owned_root`` a tree whose top already belongs to the user is
    left unwalked: a persistent cache is only ever written by that user, and
    walking a large one would cost every build.
    """
    if user is None:
        return
    check_reachable(path, user)
    top = path.lstat()
    if trust_owned_root and (top.st_uid, top.st_gid) == (user.uid, user.gid):
        return
    os.lchown(path, user.uid, user.gid)
    for parent, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.lchown(os.path.join(parent, name), user.uid, user.gid)


def check_reachable(path: Path, user: AppUser) -> None:
    """Raise a clear error when ``user`` cannot traverse a parent of ``path``.

    Asked of the kernel, as that user: mode bits alone would miss ACLs.
    """
    parent = path.absolute().parent
    if _searchable(parent, user):
        return
    blocked = next(p for p in reversed(parent.parents) if not _searchable(p, user))
    raise BuildError(
        f"the build user {user.name} cannot reach {path}: {blocked} is not searchable by it"
    )


def _searchable(folder: Path, user: AppUser) -> bool:
    probe = subprocess.run(
        ["/bin/test", "-x", str(folder)],
        user=user.uid,
        group=user.gid,
        extra_groups=list(user.groups),
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return probe.returncode == 0


def stage(source: Path, destination: Path, user: AppUser | None) -> Path:
    """Copy a buildpack directory (without its ``.git``) for this build only."""
    shutil.copytree(source, destination, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    hand_over(destination, user)
    return destination


def read_app_file(build_dir: Path, name: str) -> str | None:
    """The text of an app's file, or None when there is none.

    The platform reads these with its own privileges, so a symlink out of the
    build directory (to a secret on the host) is refused.
    """
    path = build_dir / name
    if not path.is_file():
        return None
    if not path.resolve().is_relative_to(build_dir.resolve()):
        raise BuildError(f"{name} points outside the app's directory")
    return path.read_text(encoding="utf-8", errors="replace")
