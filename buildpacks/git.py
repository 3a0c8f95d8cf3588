"""Fetching a buildpack from a git URL into a reusable clone.

The real ``git`` binary does the work, always with argument lists. A clone is
kept per URL under the caller's clone directory and refreshed with
``git fetch`` on later builds; a lock file keeps two concurrent builds from
moving one clone's checkout under each other.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from buildpacks.errors import BuildError
from buildpacks.process import Sandbox, run

GIT_SCHEMES = ("https://", "http://", "git://", "file://", "ssh://")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:")
_SAFE_REF = re.compile(r"^[A-Za-z0-9._/+-]+$")


def is_git_url(reference: str) -> bool:
    return reference.startswith(GIT_SCHEMES) or bool(_SCP_LIKE.match(reference))


def split_ref(reference: str) -> tuple[str, str | None]:
    """``URL#ref`` into the URL and the ref (a branch, tag or commit)."""
    url, _, ref = reference.partition("#")
    if not ref:
        return url, None
    if ref.startswith("-") or not _SAFE_REF.match(ref):
        raise BuildError(f"buildpack {redact(url)}: invalid git ref {ref!r}")
    return url, ref


def redact(url: str) -> str:
    """The URL without a password or token, for messages."""
    parts = urlsplit(url)
    if parts.password is None and not (parts.username and parts.scheme.startswith("http")):
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


@contextmanager
def checkout(
    url: str, ref: str | None, clone_dir: Path, deadline: float, log: Callable[[str], None]
) -> Iterator[Path]:
    """Yield a working tree of ``url`` at ``ref``; it is locked until the block ends."""
    clone_dir.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", url.rstrip("/").rsplit("/", 1)[-1])[:40]
    clone = clone_dir / f"{name}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"
    with open(f"{clone}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        log(f"-----> Fetching buildpack {redact(url)}{'#' + ref if ref else ''}")
        if (clone / ".git").is_dir():
            _git(
                ["fetch", "--quiet", "--force", "--tags", "--prune", "origin"], url, clone, deadline
            )
        else:
            _fresh_clone(url, clone, deadline)
        commit = _resolve(url, ref, clone, deadline)
        _git(["checkout", "--quiet", "--force", "--detach", commit], url, clone, deadline)
        yield clone


def _fresh_clone(url: str, clone: Path, deadline: float) -> None:
    partial = clone.with_name(clone.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(clone, ignore_errors=True)
    _git(
        ["clone", "--quiet", "--no-checkout", "--", url, str(partial)], url, clone.parent, deadline
    )
    partial.rename(clone)


def _resolve(url: str, ref: str | None, clone: Path, deadline: float) -> str:
    candidates = [f"origin/{ref}", ref] if ref else ["origin/HEAD"]
    for candidate in candidates:
        found = _git(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{candidate}^{{commit}}"],
            url,
            clone,
            deadline,
            check=False,
        )
        if found:
            return found
    raise BuildError(f"buildpack {redact(url)}: no branch, tag or commit named {ref!r}")


def _git(args: list[str], url: str, cwd: Path, deadline: float, check: bool = True) -> str:
    """Run git; its stdout, or '' when ``check`` is off and it failed."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "LANG": "C.UTF-8",
        "GIT_TERMINAL_PROMPT": "0",
    }
    if "SSH_AUTH_SOCK" in os.environ:
        env["SSH_AUTH_SOCK"] = os.environ["SSH_AUTH_SOCK"]
    errors: list[str] = []
    sandbox = Sandbox(env, None, deadline, errors.append)
    done = run(["git", *args], sandbox, cwd=cwd, capture=True)
    if done.timed_out:
        raise BuildError(f"timed out fetching buildpack {redact(url)}")
    if done.status != 0:
        if not check:
            return ""
        reason = next((line for line in reversed(errors) if line.strip()), "git failed")
        raise BuildError(f"could not fetch buildpack {redact(url)}: {reason.strip()}")
    return done.stdout.strip()
