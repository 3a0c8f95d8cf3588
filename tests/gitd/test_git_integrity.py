"""A push that would corrupt the repository is refused; an aborted one leaves no trace."""

from __future__ import annotations

import io
import os
import signal
import subprocess
from pathlib import Path

import pytest
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.objects import Blob, Commit, Tree
from dulwich.pack import write_pack_objects
from dulwich.protocol import pkt_line

from tests.harness import DEADLINE, Platform, SshKey, commit, make_repo, wait_for


@pytest.fixture(scope="module")
def platform(git_platform: Platform) -> Platform:
    """These tests are about git alone: gitd with the hook that accepts every push."""
    return git_platform

ZERO = "0" * 40


def raw_push(platform: Platform, key: SshKey, app: str, ref_line: str, objects: list) -> str:
    """Speak receive-pack by hand: one ref update and a pack of exactly `objects`."""
    pack = io.BytesIO()
    write_pack_objects(pack.write, [(o, None) for o in objects], DEFAULT_OBJECT_FORMAT)
    request = (
        pkt_line(ref_line.encode() + b"\0report-status") + pkt_line(None) + pack.getvalue()
    )
    result = platform.ssh_raw(key, f"git-receive-pack '/{app}'", input=request)
    return result.stdout


def incomplete_commit() -> tuple[Blob, Tree, Commit]:
    blob = Blob.from_string(b"never sent\n")
    tree = Tree()
    tree.add(b"missing.txt", 0o100644, blob.id)
    c = Commit()
    c.tree = tree.id
    c.author = c.committer = b"t <t@t>"
    c.author_time = c.commit_time = 0
    c.author_timezone = c.commit_timezone = 0
    c.message = b"refers to a blob it does not send\n"
    return blob, tree, c


def test_a_push_missing_an_object_is_refused(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "src")
    platform.git(keys["bob"], "push", platform.url("githoles"), "main", cwd=repo)
    old = platform.git(keys["bob"], "rev-parse", "HEAD", cwd=repo).stdout.strip()
    blob, tree, c = incomplete_commit()
    out = raw_push(platform, keys["bob"], "githoles",
                   f"{old} {c.id.decode()} refs/heads/main", [tree, c])
    assert f"ng refs/heads/main missing object {blob.id.decode()}" in out
    # A tip that was never sent at all.
    out = raw_push(platform, keys["bob"], "githoles",
                   f"{ZERO} {c.id.decode()} refs/tags/ghost", [tree])
    assert f"ng refs/tags/ghost missing object {c.id.decode()}" in out
    listed = platform.git(keys["bob"], "ls-remote", platform.url("githoles")).stdout
    assert listed.split("\t")[0] == old and "ghost" not in listed
    bare = platform.home / "repos" / "githoles.git"
    assert subprocess.run(["git", "-C", str(bare), "fsck", "--strict"],
                          capture_output=True).returncode == 0
    assert len(list((bare / "objects" / "pack").glob("*.pack"))) == 1


def test_a_push_killed_midway_leaves_the_repository_as_it_was(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "src")
    platform.git(keys["bob"], "push", platform.url("gitkilled"), "main", cwd=repo)
    bare = platform.home / "repos" / "gitkilled.git"
    before = sorted(p.name for p in (bare / "objects" / "pack").iterdir())
    # Incompressible, so the pack takes a while on the wire.
    commit(repo, {f"big{i}.bin": os.urandom(8 << 20).hex() for i in range(3)}, "big")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_SSH_COMMAND"] = " ".join(platform.ssh_command(keys["bob"]))
    push = subprocess.Popen(["git", "push", platform.url("gitkilled"), "main"], cwd=repo,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_for(lambda: list((bare / "objects").glob("tmp_pack_*")), what="the pack to arrive")
    finally:
        os.killpg(push.pid, signal.SIGKILL)
        push.wait(timeout=DEADLINE)
    wait_for(lambda: not list((bare / "objects").glob("tmp_pack_*")), what="the cleanup")
    assert sorted(p.name for p in (bare / "objects" / "pack").iterdir()) == before
    head = platform.git(keys["bob"], "rev-parse", "HEAD~1", cwd=repo).stdout.strip()
    listed = platform.git(keys["bob"], "ls-remote", platform.url("gitkilled")).stdout
    assert f"{head}\trefs/heads/main" in listed
    assert subprocess.run(["git", "-C", str(bare), "fsck", "--strict"],
                          capture_output=True).returncode == 0
