"""The push hook: its log reaches git's terminal live, and its verdict decides the ref."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.harness import DEADLINE, Platform, SshKey, make_repo, wait_for


def push_through_gate(
    platform: Platform, key: SshKey, gates: Path, app: str, repo: Path,
    while_held: Callable[[], None] = lambda: None,
) -> tuple[int, str]:
    """Push; open the hook's gate only once its first line is on git's terminal (and
    `while_held` has run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_SSH_COMMAND"] = shlex.join(platform.ssh_command(key))
    (gates / "go").unlink(missing_ok=True)
    seen = []
    with subprocess.Popen(
        ["git", "push", "--progress", platform.url(app), "main"], cwd=repo, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    ) as proc:
        assert proc.stderr is not None
        end = time.monotonic() + DEADLINE
        for line in proc.stderr:
            seen.append(line)
            if f"remote: -----> building {app}" in line:
                assert not (gates / "go").exists()
                while_held()
                (gates / "go").touch()
                break
            assert time.monotonic() < end, "the hook's first line never arrived"
        seen.extend(proc.stderr)
        status = proc.wait(timeout=DEADLINE)
    return status, "".join(seen)


def test_the_hook_streams_live_and_accepts(
    hooked_gitd: tuple[Platform, Path], keys: dict[str, SshKey], tmp_path: Path
) -> None:
    platform, gates = hooked_gitd
    repo = make_repo(tmp_path / "src")
    status, output = push_through_gate(platform, keys["admin"], gates, "hookok", repo)
    assert status == 0, output
    assert "remote: -----> gate open" in output and "remote: -----> done" in output
    assert "* [new branch]      main -> main" in output
    listed = platform.git(keys["admin"], "ls-remote", platform.url("hookok")).stdout
    assert "refs/heads/main" in listed


def test_a_hook_rejection_leaves_the_branch(
    hooked_gitd: tuple[Platform, Path], keys: dict[str, SshKey], tmp_path: Path
) -> None:
    platform, gates = hooked_gitd
    repo = make_repo(tmp_path / "src")
    status, output = push_through_gate(platform, keys["admin"], gates, "rejectme", repo)
    assert status == 1
    assert "! [remote rejected] main -> main (build failed: the test hook says no)" in output
    listed = platform.git(keys["admin"], "ls-remote", platform.url("rejectme")).stdout
    assert "refs/heads/main" not in listed


def test_tags_do_not_run_the_hook(
    hooked_gitd: tuple[Platform, Path], keys: dict[str, SshKey], tmp_path: Path
) -> None:
    platform, gates = hooked_gitd
    (gates / "go").unlink(missing_ok=True)  # the hook would wait: it must not be asked
    repo = make_repo(tmp_path / "src")
    platform.git(keys["admin"], "tag", "v1", cwd=repo)
    pushed = platform.git(keys["admin"], "push", platform.url("hooktags"), "v1", cwd=repo)
    assert "* [new tag]         v1 -> v1" in pushed.stderr
    assert "building" not in pushed.stderr


def git_workers(platform: Platform) -> list[int]:
    """The pids of the git worker processes of this platform's gitd."""
    home = f"OURO_HOME={platform.home}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gitd.worker" in cmdline and home in environ:
            pids.append(int(proc.name))
    return pids


def test_a_worker_is_added_while_a_push_waits_and_stops_after(
    hooked_gitd: tuple[Platform, Path], keys: dict[str, SshKey], tmp_path: Path
) -> None:
    platform, gates = hooked_gitd
    wait_for(lambda: len(git_workers(platform)) == 1, what="one worker, idle")
    seen: list[object] = []

    def meanwhile() -> None:  # the push's worker is busy in the hook
        seen.append(platform.git(keys["admin"], "ls-remote", platform.url("hookpool")).returncode)
        seen.append(len(git_workers(platform)))

    repo = make_repo(tmp_path / "src")
    status, output = push_through_gate(platform, keys["admin"], gates, "hookpool", repo, meanwhile)
    assert status == 0, output
    assert seen == [0, 2]
    wait_for(lambda: len(git_workers(platform)) == 1, what="the second worker to stop")
