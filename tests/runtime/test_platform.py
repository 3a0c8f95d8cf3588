"""`ouro up`, `ouro status`, `ouro keys:add`, stopping and restarting, for real."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import start_platform
from tests.harness import OURO, Platform, SshKey, alive, wait_for


def _gitd_pid(platform: Platform) -> int:
    out = platform.ouro("status").stdout
    line = next(line for line in out.splitlines() if line.startswith("ouro.gitd.1:"))
    return int(line.split("pid ")[1])


def test_status_exits_1_when_nothing_runs(tmp_path: Path) -> None:
    platform = Platform(tmp_path / "home", tmp_path)
    result = platform.ouro("status")
    assert result.returncode == 1
    assert "not running" in result.stderr


def test_up_status_stop_restart(tmp_path: Path, keys: dict[str, SshKey]) -> None:
    platform = start_platform(tmp_path, keys)
    try:
        status = platform.ouro("status")
        assert status.returncode == 0
        assert f"SSH:   127.0.0.1:{platform.ssh_port}" in status.stdout
        assert f"HTTP:  127.0.0.1:{platform.http_port}" in status.stdout
        assert status.stdout.startswith("ouro 0.1.0 (")
        gitd = _gitd_pid(platform)

        admin = keys["admin"]
        assert platform.ssh(admin, "apps:create", "keep-me").returncode == 0
        assert platform.ssh(admin, "config:set", "-a", "keep-me", "KEPT=yes").returncode == 0

        second = subprocess.run(
            [*OURO, "up", "--ssh-port", "0", "--http-port", "0"],
            env=platform.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1 and "already running" in second.stderr

        assert platform.stop(signal.SIGINT) == 0
        assert not alive(gitd)
        assert platform.ouro("status").returncode == 1
        assert not (platform.home / "run" / "ouro.json").exists()

        platform.start()
        assert platform.ssh(admin, "config:get", "-a", "keep-me", "KEPT").stdout == "yes\n"
        assert platform.stop(signal.SIGTERM) == 0
    finally:
        platform.stop()


def test_host_key_is_stable_across_restarts(tmp_path: Path, keys: dict[str, SshKey]) -> None:
    platform = start_platform(tmp_path, keys)
    try:
        first = sorted(p.read_bytes() for p in (platform.home / "ssh").glob("*.pub"))
        platform.stop()
        platform.start()
        second = sorted(p.read_bytes() for p in (platform.home / "ssh").glob("*.pub"))
        assert first == second
        scan = subprocess.run(
            ["ssh-keyscan", "-t", "ed25519", "-p", str(platform.ssh_port), "127.0.0.1"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        served = scan.stdout.split()[-1]
        assert served in (platform.home / "ssh" / "ssh_host_ed25519_key.pub").read_text()
    finally:
        platform.stop()


def test_a_killed_gitd_is_restarted(tmp_path: Path, keys: dict[str, SshKey]) -> None:
    platform = start_platform(tmp_path, keys)
    try:
        old = _gitd_pid(platform)
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: _gitd_pid(platform) != old, what="a new gitd")
        wait_for(lambda: platform.ssh(keys["bob"], "version").returncode == 0, what="ssh again")
        log = (platform.home / "logs" / "ouro" / "ouro.log").read_text()
        assert "ouro[gitd.1]: Process exited with status 137" in log
    finally:
        platform.stop()


def test_keys_add_refuses_bad_input(tmp_path: Path, keys: dict[str, SshKey]) -> None:
    platform = Platform(tmp_path / "home", tmp_path)
    first = platform.ouro("keys:add", str(keys["admin"].public))
    assert first.returncode == 0 and "Added key admin (admin)" in first.stdout
    second = platform.ouro("keys:add", "--name", "bob", str(keys["bob"].public))
    assert second.returncode == 0 and "(user)" in second.stdout
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key\n")
    for args, word in (
        (["keys:add", str(junk)], "not an SSH public key"),
        (["keys:add", "--name", "bob", str(keys["carol"].public)], "exists already"),
        (["keys:add", "--name", "again", str(keys["bob"].public)], "registered already"),
        (["keys:add", str(tmp_path / "missing.pub")], "cannot read"),
        (["keys:add", "--name", "bad name!", str(keys["carol"].public)], "invalid key name"),
    ):
        result = platform.ouro(*args)
        assert result.returncode == 1, result
        assert word in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_ouro_up_refuses_a_busy_port(tmp_path: Path, keys: dict[str, SshKey]) -> None:
    platform = start_platform(tmp_path / "a", keys)
    try:
        other = Platform(tmp_path / "b" / "home", tmp_path)
        result = subprocess.run(
            [*OURO, "up", "--ssh-port", str(platform.ssh_port), "--http-port", "0"],
            env=other.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert f"cannot listen on 127.0.0.1:{platform.ssh_port}" in result.stderr
    finally:
        platform.stop()


@pytest.mark.parametrize("flag", ["--ssh-port", "--http-port"])
def test_ouro_up_refuses_bad_ports(tmp_path: Path, flag: str) -> None:
    platform = Platform(tmp_path / "home", tmp_path)
    result = subprocess.run(
        [*OURO, "up", flag, "99999"],
        env=platform.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "invalid value" in result.stderr
    assert result.stdout == ""


def test_the_platform_is_app_ouro(tmp_path: Path, keys: dict[str, SshKey]) -> None:
    from tests.harness import make_repo

    platform = start_platform(tmp_path, keys)
    try:
        admin, bob = keys["admin"], keys["bob"]
        assert "ouro" in platform.ssh(admin, "apps").stdout.split()
        assert "ouro" not in platform.ssh(bob, "apps").stdout.split()
        releases = platform.ssh(admin, "releases", "-a", "ouro").stdout
        assert "v1  Bootstrap from the installed code (ouro 0.1.0 (" in releases
        ps = platform.ssh(admin, "ps", "-a", "ouro").stdout
        for name in ("gitd.1: up", "router.1: up", "scheduler.1: up"):
            assert name in ps
        assert "ouro[api]: Platform started" in platform.ssh(admin, "logs", "-a", "ouro").stdout
        refusal = platform.ssh(bob, "ps", "-a", "ouro")
        assert refusal.returncode == 1 and "Couldn't find that app" in refusal.stderr
        destroy = platform.ssh(admin, "apps:destroy", "-a", "ouro", "--confirm", "ouro")
        assert destroy.returncode == 1 and "cannot be destroyed" in destroy.stderr

        scaled = platform.ssh(admin, "ps:scale", "-a", "ouro", "router=2")
        assert scaled.returncode == 0, scaled.stderr
        wait_for(
            lambda: "router.2: up" in platform.ssh(admin, "ps", "-a", "ouro").stdout,
            what="a second router",
        )
        for bad, word in (("gitd=0", "at least one gitd"), ("scheduler=2", "exactly one")):
            refused = platform.ssh(admin, "ps:scale", "-a", "ouro", bad)
            assert refused.returncode == 1 and word in refused.stderr

        before = json.loads(platform.ssh(admin, "ps", "--json", "-a", "ouro").stdout)
        restarted = platform.ssh(admin, "ps:restart", "-a", "ouro")
        assert restarted.returncode == 0, restarted.stderr
        after = json.loads(platform.ssh(admin, "ps", "--json", "-a", "ouro").stdout)
        pids = {p["name"]: p["pid"] for p in before}
        assert {p["name"] for p in after} == set(pids)
        assert all(p["pid"] != pids[p["name"]] for p in after)  # every one replaced
        assert [p["name"] for p in after].count("scheduler.1") == 1

        repo = make_repo(tmp_path / "self", {"Procfile": "gitd: true\n"})
        pushed = platform.git(admin, "push", platform.url("ouro"), "main", cwd=repo, check=False)
        assert pushed.returncode != 0
        assert "(not the platform: its Procfile has no router, scheduler)" in pushed.stderr
        assert platform.ssh(admin, "version").returncode == 0  # still the same platform
        platform.stop()
        platform.start()
        again = platform.ssh(admin, "releases", "-a", "ouro").stdout
        assert again.count("Bootstrap") == 1
        assert "router.2: up" in platform.ssh(admin, "ps", "-a", "ouro").stdout
    finally:
        platform.stop()
