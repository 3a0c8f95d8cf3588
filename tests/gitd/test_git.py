"""git push / clone / fetch through gitd, with the real git and OpenSSH clients."""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
from pathlib import Path

import pytest

from tests.harness import Platform, SshKey, commit, make_repo


@pytest.fixture(scope="module")
def platform(git_platform: Platform) -> Platform:
    """These tests are about git alone: gitd with the hook that accepts every push."""
    return git_platform


def refs(platform: Platform, key: SshKey, app: str) -> dict[str, str]:
    out = platform.git(key, "ls-remote", platform.url(app)).stdout
    return {line.split("\t")[1]: line.split("\t")[0] for line in out.splitlines()}


def repo_of(platform: Platform, app: str) -> Path:
    return platform.home / "repos" / f"{app}.git"


def fsck(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(path), "fsck", "--strict", "--no-dangling"],
        capture_output=True, text=True, timeout=60,
    )


def test_push_creates_the_app_and_stores_the_objects(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "src", {"app.py": "print('hi')\n"})
    head = commit(repo, {"Procfile": "web: python app.py\n"}, "procfile")
    pushed = platform.git(keys["bob"], "push", platform.url("gitfirst"), "main", cwd=repo)
    assert "* [new branch]      main -> main" in pushed.stderr
    assert "gitfirst" in platform.ssh(keys["bob"], "apps").stdout
    stored = subprocess.run(
        ["git", "-C", str(repo_of(platform, "gitfirst")), "log", "--format=%H", "main"],
        capture_output=True, text=True, check=True,
    )
    assert stored.stdout.split()[0] == head
    assert fsck(repo_of(platform, "gitfirst")).returncode == 0
    assert not list((repo_of(platform, "gitfirst") / "objects").glob("tmp_pack_*"))


def test_clone_and_fetch(platform: Platform, keys: dict[str, SshKey], tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "src", {"a.txt": "one\n"})
    platform.git(keys["bob"], "push", platform.url("gitclone"), "main", cwd=repo)
    clone = tmp_path / "clone"
    cloned = platform.git(keys["bob"], "clone", platform.url("gitclone"), str(clone))
    assert "warning" not in cloned.stderr
    assert (clone / "a.txt").read_text() == "one\n"
    head = commit(repo, {"b/c.txt": "two\n"}, "second")
    platform.git(keys["bob"], "push", platform.url("gitclone"), "main", cwd=repo)
    platform.git(keys["bob"], "pull", "-q", "--ff-only", cwd=clone)
    assert (clone / "b" / "c.txt").read_text() == "two\n"
    rev = platform.git(keys["bob"], "rev-parse", "HEAD", cwd=clone).stdout.strip()
    assert rev == head
    assert platform.git(keys["bob"], "fsck", cwd=clone).returncode == 0


@pytest.mark.parametrize("path", ["gitpath-a", "/gitpath-b", "gitpath-c.git", "/gitpath-d.git"])
def test_every_ssh_url_form(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path, path: str
) -> None:
    repo = make_repo(tmp_path / "src")
    url = f"ssh://git@127.0.0.1:{platform.ssh_port}/{path.lstrip('/')}"
    if path.startswith("/"):
        url = f"ssh://git@127.0.0.1:{platform.ssh_port}{path}"
    platform.git(keys["bob"], "push", url, "main", cwd=repo)
    app = path.strip("/").removesuffix(".git")
    assert refs(platform, keys["bob"], app)["refs/heads/main"]


def test_scp_syntax_with_a_host_block(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host platform\n"
        "  HostName 127.0.0.1\n"
        f"  Port {platform.ssh_port}\n"
        "  User git\n"
        f"  IdentityFile {keys['bob'].path}\n"
        "  IdentitiesOnly yes\n"
        "  BatchMode yes\n"
        f"  UserKnownHostsFile {platform.known_hosts}\n"
        "  StrictHostKeyChecking accept-new\n"
    )
    repo = make_repo(tmp_path / "src")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_SSH_COMMAND"] = shlex.join(["ssh", "-F", str(config)])
    for target in ("platform:gitscp", "platform:gitscp.git"):
        pushed = subprocess.run(
            ["git", "push", target, "main"], cwd=repo, env=env, capture_output=True, text=True,
            timeout=60,
        )
        assert pushed.returncode == 0, pushed.stderr
    listed = subprocess.run(
        ["git", "ls-remote", "platform:gitscp"], env=env, capture_output=True, text=True,
        timeout=60,
    )
    assert "refs/heads/main" in listed.stdout


def test_force_push_moves_main_back(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "src")
    first = platform.git(keys["bob"], "rev-parse", "HEAD", cwd=repo).stdout.strip()
    commit(repo, {"x": "1\n"}, "to be undone")
    platform.git(keys["bob"], "push", platform.url("gitforce"), "main", cwd=repo)
    platform.git(keys["bob"], "reset", "-q", "--hard", first, cwd=repo)
    rewritten = commit(repo, {"y": "2\n"}, "rewritten")
    url = platform.url("gitforce")
    plain = platform.git(keys["bob"], "push", url, "main", cwd=repo, check=False)
    assert plain.returncode == 1 and "non-fast-forward" in plain.stderr
    forced = platform.git(keys["bob"], "push", "--force", url, "main", cwd=repo)
    assert "(forced update)" in forced.stderr
    assert refs(platform, keys["bob"], "gitforce")["refs/heads/main"] == rewritten


def test_tags_and_several_refs_in_one_push(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "src")
    platform.git(keys["bob"], "tag", "v1", cwd=repo)
    platform.git(keys["bob"], "tag", "-a", "-m", "release 2", "v2", cwd=repo)
    platform.git(keys["bob"], "branch", "feature", cwd=repo)
    platform.git(keys["bob"], "branch", "master", cwd=repo)
    pushed = platform.git(
        keys["bob"], "push", platform.url("gitrefs"), "main", "master", "feature", "v1", "v2",
        cwd=repo, check=False,
    )
    assert pushed.returncode == 1
    assert "* [new branch]      main -> main" in pushed.stderr
    assert "* [new branch]      master -> master" in pushed.stderr
    assert "* [new tag]         v1 -> v1" in pushed.stderr
    assert "* [new tag]         v2 -> v2" in pushed.stderr
    assert "! [remote rejected] feature -> feature (only main or master can be pushed:" in (
        pushed.stderr
    )
    seen = refs(platform, keys["bob"], "gitrefs")
    assert {"refs/heads/main", "refs/heads/master", "refs/tags/v1", "refs/tags/v2"} <= set(seen)
    assert "refs/heads/feature" not in seen
    deleted = platform.git(keys["bob"], "push", platform.url("gitrefs"), ":v1", cwd=repo)
    assert "[deleted]" in deleted.stderr
    assert "refs/tags/v1" not in refs(platform, keys["bob"], "gitrefs")


def test_atomic_push_is_all_or_nothing(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "src")
    platform.git(keys["bob"], "branch", "feature", cwd=repo)
    pushed = platform.git(
        keys["bob"], "push", "--atomic", platform.url("gitatomic"), "main", "feature",
        cwd=repo, check=False,
    )
    assert pushed.returncode == 1
    assert "main -> main (atomic push failed)" in pushed.stderr
    assert refs(platform, keys["bob"], "gitatomic") == {}


def test_branch_other_than_main_is_rejected(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "src", branch="develop")
    pushed = platform.git(
        keys["bob"], "push", platform.url("gitbranch"), "develop", cwd=repo, check=False
    )
    assert pushed.returncode == 1
    assert (
        "! [remote rejected] develop -> develop (only main or master can be pushed: "
        "deploy this branch with `git push REMOTE develop:main`)"
    ) in pushed.stderr
    assert refs(platform, keys["bob"], "gitbranch") == {}
    # Nothing points into the refused pack: it was not kept.
    assert not list((repo_of(platform, "gitbranch") / "objects" / "pack").glob("*.pack"))


def test_deleting_main_is_refused(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "src")
    platform.git(keys["bob"], "push", platform.url("gitdelete"), "main", cwd=repo)
    before = refs(platform, keys["bob"], "gitdelete")
    deleted = platform.git(keys["bob"], "push", platform.url("gitdelete"), ":main", cwd=repo,
                           check=False)
    assert deleted.returncode == 1
    assert "! [remote rejected] main (main cannot be deleted: it is the deployed branch)" in (
        deleted.stderr
    )
    assert refs(platform, keys["bob"], "gitdelete") == before


def test_concurrent_pushes_to_different_apps(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    repos = {
        f"gitconc-{i}": make_repo(tmp_path / f"src{i}", {f"f{i}.txt": os.urandom(200_000).hex()})
        for i in range(5)
    }
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def push(app: str, repo: Path) -> None:
        results[app] = platform.git(keys["bob"], "push", platform.url(app), "main", cwd=repo,
                                    check=False)

    threads = [threading.Thread(target=push, args=item) for item in repos.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for app, repo in repos.items():
        assert results[app].returncode == 0, results[app].stderr
        head = platform.git(keys["bob"], "rev-parse", "HEAD", cwd=repo).stdout.strip()
        assert refs(platform, keys["bob"], app)["refs/heads/main"] == head
