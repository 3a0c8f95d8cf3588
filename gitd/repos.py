"""From the path a git client asks for to the app's bare repository.

Accepted: `myapp`, `myapp.git`, `/myapp`, `/myapp.git` (and a trailing `/`);
anything else, `..` and absolute paths included, is not an app name and is
refused before the file system is touched.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from runtime.names import InvalidName, check_app_name
from runtime.settings import Settings


class RepoError(Exception):
    """The path names no repository this client may use; the message says why."""


def app_from_path(raw: str) -> str:
    name = raw.strip("/")
    name = name.removesuffix(".git")
    try:
        return check_app_name(name)
    except InvalidName:
        raise RepoError(
            f"{raw!r} is not an app: the URL is ssh://git@HOST:PORT/APP, and an app's name"
            " is 3 to 30 lowercase letters, digits and dashes, starting with a letter"
        ) from None


def repo_path(settings: Settings, app: str) -> Path:
    """The app's repository, refusing one that a symlink leads out of `repos/`."""
    path = settings.repo_path(app)
    root = settings.repos_dir.resolve()
    if path.is_symlink() or (path.exists() and path.resolve().parent != root):
        raise RepoError(f"the repository of {app} is not a plain directory under {root}")
    return path


def ensure_repo(path: Path) -> None:
    """Create an empty bare repository whose HEAD is `main` (clones expect it)."""
    if path.exists():
        return
    # Imported here: gitd's main process needs dulwich only for `apps:create`;
    # a git request creates its repository in the git worker.
    from dulwich.refs import Ref
    from dulwich.repo import Repo

    # Built aside and renamed into place, so a half-made repository is never seen.
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    repo = Repo.init_bare(tmp)
    try:
        repo.refs.set_symbolic_ref(Ref(b"HEAD"), Ref(b"refs/heads/main"))
    finally:
        repo.close()
    try:
        tmp.rename(path)
    except OSError:  # another push created it first
        shutil.rmtree(tmp)
