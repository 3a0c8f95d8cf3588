"""Write a commit's tree into a directory, as the app's user will own it.

Entry names come from the client: `.`, `..`, `.git` and names holding `/`
are refused, so a crafted tree cannot write outside the directory. Symlinks
are created as links (never followed here); submodules are skipped.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dulwich.object_store import BaseObjectStore
from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.repo import Repo

from runtime.users import AppUser


class CheckoutError(Exception):
    """The commit cannot be checked out; the message says why."""


def checkout(repo_path: Path, sha: str, dest: Path, user: AppUser | None) -> int:
    """Write commit `sha`'s files under `dest` (which must exist); returns the file count."""
    repo = Repo(str(repo_path))
    try:
        commit = repo.object_store[ObjectID(sha.encode())]
        if not isinstance(commit, Commit):
            raise CheckoutError(f"{sha} is not a commit")
        return _write_tree(repo.object_store, commit.tree, dest, user)
    finally:
        repo.close()


def _write_tree(store: BaseObjectStore, tree_id: bytes, dest: Path, user: AppUser | None) -> int:
    tree = store[ObjectID(tree_id)]
    if not isinstance(tree, Tree):
        raise CheckoutError(f"{tree_id.decode()} is not a tree")
    count = 0
    for entry in tree.iteritems():
        name, mode, sha = entry.path, entry.mode, entry.sha
        if name in (b".", b"..", b".git") or b"/" in name or b"\0" in name:
            raise CheckoutError(f"refusing the path {name!r} in the commit")
        path = dest / os.fsdecode(name)
        if stat.S_ISDIR(mode):
            path.mkdir(mode=0o755)
            _own(path, user)
            count += _write_tree(store, sha, path, user)
        elif stat.S_ISLNK(mode):
            os.symlink(_blob(store, sha), path)
            if user is not None:
                os.lchown(path, user.uid, user.gid)
        elif stat.S_ISREG(mode):
            _write_file(path, _blob(store, sha), 0o755 if mode & 0o111 else 0o644, user)
            count += 1
        # anything else (a submodule's gitlink) has no content here
    return count


def _blob(store: BaseObjectStore, sha: bytes) -> bytes:
    blob = store[ObjectID(sha)]
    if not isinstance(blob, Blob):
        raise CheckoutError(f"{sha.decode()} is not a blob")
    return blob.as_raw_string()


def _write_file(path: Path, data: bytes, mode: int, user: AppUser | None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
        if user is not None:
            os.fchown(fd, user.uid, user.gid)
    finally:
        os.close(fd)


def _own(path: Path, user: AppUser | None) -> None:
    if user is not None:
        os.chown(path, user.uid, user.gid)
