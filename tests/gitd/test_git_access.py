"""Who may reach which repository: keys, access rights and paths."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.harness import Platform, SshKey, make_repo


@pytest.fixture(scope="module")
def platform(git_platform: Platform) -> Platform:
    """These tests are about git alone: gitd with the hook that accepts every push."""
    return git_platform


def test_paths_outside_the_repositories_are_refused(
    platform: Platform, keys: dict[str, SshKey]
) -> None:
    for path in ("/../../etc", "/etc/passwd", "../gitaccess", "/gitaccess/../../x"):
        for service in ("git-upload-pack", "git-receive-pack"):
            result = platform.ssh(keys["admin"], service, path)
            assert result.returncode == 1, (path, result)
            assert "is not an app" in result.stderr, result.stderr
    cloned = platform.git(keys["admin"], "ls-remote", platform.url("../../etc"), check=False)
    assert cloned.returncode != 0 and "is not an app" in cloned.stderr


def test_a_symlink_out_of_the_repositories_is_refused(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    outside = tmp_path / "outside.git"
    subprocess.run(["git", "init", "-q", "--bare", str(outside)], check=True)
    (platform.home / "repos" / "gitlinked.git").symlink_to(outside)
    repo = make_repo(tmp_path / "src")
    pushed = platform.git(keys["admin"], "push", platform.url("gitlinked"), "main", cwd=repo,
                          check=False)
    assert pushed.returncode != 0
    assert "is not a plain directory" in pushed.stderr
    assert not list((outside / "objects" / "pack").glob("*"))


def test_an_unregistered_key_is_refused(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    listed = platform.git(keys["eve"], "ls-remote", platform.url("gitanyone"), check=False)
    assert listed.returncode != 0 and "Permission denied (publickey)" in listed.stderr
    repo = make_repo(tmp_path / "src")
    pushed = platform.git(keys["eve"], "push", platform.url("gitanyone"), "main", cwd=repo,
                          check=False)
    assert pushed.returncode != 0
    assert not (platform.home / "repos" / "gitanyone.git").exists()


def test_a_key_without_access_can_neither_push_nor_clone(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "src")
    platform.git(keys["bob"], "push", platform.url("gitbobs"), "main", cwd=repo)
    before = platform.git(keys["bob"], "ls-remote", platform.url("gitbobs")).stdout
    cloned = platform.git(keys["carol"], "clone", platform.url("gitbobs"), str(tmp_path / "c"),
                          check=False)
    assert cloned.returncode != 0 and "Couldn't find that app: gitbobs" in cloned.stderr
    pushed = platform.git(keys["carol"], "push", "--force", platform.url("gitbobs"), "main",
                          cwd=repo, check=False)
    assert pushed.returncode != 0 and "Couldn't find that app: gitbobs" in pushed.stderr
    assert platform.git(keys["bob"], "ls-remote", platform.url("gitbobs")).stdout == before
    # ... until bob gives carol access.
    assert platform.ssh(keys["bob"], "access:add", "carol", "-a", "gitbobs").returncode == 0
    platform.git(keys["carol"], "clone", platform.url("gitbobs"), str(tmp_path / "c2"))


def test_only_an_admin_may_push_the_platform(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "src")
    pushed = platform.git(keys["bob"], "push", platform.url("ouro"), "main", cwd=repo,
                          check=False)
    assert pushed.returncode != 0
    # Refused whether or not the platform has recorded its own app yet.
    reasons = ("ouro is reserved for the platform itself", "Couldn't find that app: ouro")
    assert any(reason in pushed.stderr for reason in reasons), pushed.stderr
    listed = platform.git(keys["admin"], "ls-remote", platform.url("ouro"), check=False)
    assert "refs/heads/main" not in listed.stdout


def test_clone_of_an_unknown_app_is_refused(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    cloned = platform.git(keys["bob"], "clone", platform.url("gitnowhere"), str(tmp_path / "c"),
                          check=False)
    assert cloned.returncode != 0 and "Couldn't find that app: gitnowhere" in cloned.stderr
    assert not (platform.home / "repos" / "gitnowhere.git").exists()
