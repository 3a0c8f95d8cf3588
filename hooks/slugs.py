"""Slugs: built in `slugs/APP/ID/` (the directory they run from), archived as `ID.tgz`.

Old slugs that no release can roll back to any more are pruned.
"""

from __future__ import annotations

import fnmatch
import os
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path

from runtime.users import AppUser

SLUGIGNORE = ".slugignore"


def new_slug_id(sha: str) -> str:
    return f"{time.strftime('%Y%m%d%H%M%S')}-{sha[:7]}-{secrets.token_hex(2)}"


def app_dir(root: Path, user: AppUser | None) -> Path:
    """Create `root` (an app's folder of slugs or cache) owned by the app, private to it."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    if user is not None:
        os.chown(root, user.uid, user.gid)
    return root


def apply_slugignore(slug: Path) -> list[str]:
    """Remove what `.slugignore` names (gitignore-style globs); returns what went."""
    ignore = slug / SLUGIGNORE
    if ignore.is_symlink() or not ignore.is_file():
        return []
    removed = []
    patterns = [p.strip() for p in ignore.read_text(errors="replace").splitlines()]
    for pattern in (p for p in patterns if p and not p.startswith("#")):
        anchored = pattern.startswith("/")
        glob = pattern.strip("/")
        for path in sorted(_matches(slug, glob, anchored), reverse=True):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
            removed.append(str(path.relative_to(slug)))
    return removed


def _matches(slug: Path, glob: str, anchored: bool) -> list[Path]:
    found = []
    for parent, dirs, files in os.walk(slug):
        rel_parent = Path(parent).relative_to(slug)
        for name in (*dirs, *files):
            rel = str(rel_parent / name) if str(rel_parent) != "." else name
            if fnmatch.fnmatch(rel, glob) or (not anchored and fnmatch.fnmatch(name, glob)):
                found.append(Path(parent) / name)
    return found


def archive_later(slug: Path) -> threading.Thread:
    """Pack the slug into `ID.tgz` in the background: the slug runs in place, so
    the archive (the unit a multi-host runtime would ship) is off the deploy's path."""
    thread = threading.Thread(target=_archive, args=(slug,), name=f"archive {slug.name}")
    thread.daemon = True
    thread.start()
    return thread


def _archive(slug: Path) -> None:
    target = slug.with_name(slug.name + ".tgz")
    tmp = target.with_suffix(".tmp")
    done = subprocess.run(
        ["tar", "-czf", str(tmp), "-C", str(slug), "."],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    if done.returncode == 0:
        tmp.replace(target)
    else:
        tmp.unlink(missing_ok=True)


def prune(app_slugs: Path, keep: set[str]) -> list[str]:
    """Remove every slug (directory and archive) of the app not in `keep`."""
    removed = []
    for entry in app_slugs.iterdir():
        slug_id = entry.name.removesuffix(".tgz").removesuffix(".tmp")
        if slug_id in keep or entry.name.startswith("."):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return removed
