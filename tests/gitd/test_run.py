"""`run`: one-off processes attached over real ssh (pipes and a real terminal)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.gitd.deployed import deploy, ok, platform_fixture, ps_states, refused, wait_for_log
from tests.harness import Platform, SshKey, wait_for

APP = "run-app"


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SshKey]
) -> Iterator[Platform]:
    yield from platform_fixture(tmp_path_factory, keys, "run")


@pytest.fixture(scope="module")
def app(
    platform: Platform, keys: dict[str, SshKey], tmp_path_factory: pytest.TempPathFactory
) -> str:
    deploy(platform, keys["bob"], tmp_path_factory.mktemp("repos"), APP)
    ok(platform.ssh(keys["bob"], "config:set", "-a", APP, "GREETING=hello from config"))
    return APP


def run(
    platform: Platform, key: SshKey, line: str, input: str = ""
) -> subprocess.CompletedProcess[str]:
    """`ssh platform run -a APP LINE` with LINE sent as it is, as a user types it."""
    return platform.ssh_raw(key, f"run -a {APP} {line}", input=input)


def test_exit_status_becomes_the_ssh_exit_status(
    platform: Platform, keys: dict[str, SshKey], app: str
) -> None:
    # `ssh platform run -a app 'exit 3'`: ssh sends the line `run -a app exit 3`
    assert run(platform, keys["bob"], "exit 3").returncode == 3
    result = run(platform, keys["bob"], "true")
    assert result.returncode == 0
    assert "Running true on ⬢ run-app... up, run." in result.stderr


def test_the_command_is_shell_text_in_the_apps_environment(
    platform: Platform, keys: dict[str, SshKey], app: str
) -> None:
    bob = keys["bob"]
    assert ok(run(platform, bob, "echo $GREETING")) == "hello from config\n"
    # the rest of the line verbatim: quotes and operators are the one-off shell's
    lines = ok(run(platform, bob, 'echo it\\\'s; echo "$DYNO" | tr a-z A-Z')).splitlines()
    assert lines[0] == "it's" and lines[1].startswith("RUN."), lines
    assert ok(run(platform, bob, "-e EXTRA=1 -- echo $EXTRA-$GREETING")) == "1-hello from config\n"
    result = run(platform, bob, "echo out; echo err >&2; exit 4")
    assert (result.returncode, result.stdout, result.stderr.splitlines()[-1]) == (4, "out\n", "err")
    home, cwd = ok(run(platform, bob, "echo $HOME; pwd")).splitlines()
    assert home == cwd and "/slugs/run-app/" in cwd


def test_unbalanced_quotes_reach_the_shell(
    platform: Platform, keys: dict[str, SshKey], app: str
) -> None:
    # `ssh platform run -a app "echo it's"` sends `run -a app echo it's`: sh says so
    result = run(platform, keys["bob"], "echo it's")
    assert result.returncode == 2 and "unterminated" in result.stderr.lower(), result


def test_app_processes_are_not_root(platform: Platform, keys: dict[str, SshKey], app: str) -> None:
    assert ok(run(platform, keys["bob"], "id -u")).strip() != "0"


def test_stdin_is_piped_through(platform: Platform, keys: dict[str, SshKey], app: str) -> None:
    data = "".join(f"line {i}\n" for i in range(2000))
    assert ok(run(platform, keys["bob"], "cat", input=data)) == data
    assert ok(run(platform, keys["bob"], "wc -l", input="a\nb\n")).strip() == "2"


def test_a_missing_command_exits_127(platform: Platform, keys: dict[str, SshKey], app: str) -> None:
    result = run(platform, keys["bob"], "no-such-command-here")
    assert result.returncode == 127
    assert "not found" in result.stderr


def test_a_real_terminal_with_ssh_tt(platform: Platform, keys: dict[str, SshKey], app: str) -> None:
    command = [*platform.ssh_command(keys["bob"], tty=True), "git@127.0.0.1"]
    tty = subprocess.run(
        [*command, f"run -a {APP} tty; test -t 0 && echo terminal; stty size"],
        input=b"",
        capture_output=True,
        timeout=60,
    )
    assert tty.returncode == 0, tty.stderr
    lines = tty.stdout.decode().splitlines()
    assert lines[0].startswith("/dev/pts/"), lines
    assert "terminal" in lines
    status = subprocess.run(
        [*command, f"run -a {APP} exit 5"], input=b"", capture_output=True, timeout=60
    )
    assert status.returncode == 5


def test_detached_runs_in_the_background_and_logs(
    platform: Platform, keys: dict[str, SshKey], app: str
) -> None:
    bob = keys["bob"]
    result = run(platform, bob, "--detached echo detached says $GREETING; sleep 30")
    ok(result)
    assert "Running echo detached says $GREETING; sleep 30 on ⬢ run-app... up, run." in (
        result.stderr
    )
    name = result.stderr.rsplit("up, ", 1)[1].strip()
    line = wait_for_log(platform, bob, app, "detached says hello from config")
    assert f"app[{name}]:" in line
    assert ps_states(platform, bob, app).get(name) == "up"
    assert "=== run: one-off processes (1)" in ok(platform.ssh(bob, "ps", "-a", app))
    ok(platform.ssh(bob, "ps:stop", "-a", app, name))
    wait_for(lambda: name not in ps_states(platform, bob, app), what=f"{name} to stop")


def test_a_client_that_goes_away_takes_its_one_off_along(
    platform: Platform, keys: dict[str, SshKey], app: str
) -> None:
    bob = keys["bob"]
    with subprocess.Popen(
        [*platform.ssh_command(bob), "git@127.0.0.1", f"run -a {APP} echo started; sleep 300"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as client:
        try:
            assert client.stdout is not None
            assert client.stdout.readline() == b"started\n"
            assert any(n.startswith("run.") for n in ps_states(platform, bob, app))
        finally:
            client.kill()
    wait_for(
        lambda: not any(n.startswith("run.") for n in ps_states(platform, bob, app)),
        what="the one-off to stop",
    )


def test_run_refusals(platform: Platform, keys: dict[str, SshKey], app: str) -> None:
    bob = keys["bob"]
    refused(platform.ssh_raw(bob, f"run -a {APP}"), "give the command")
    refused(platform.ssh_raw(bob, f"run -a {APP} --bogus ls"), "unrecognized option --bogus")
    refused(platform.ssh_raw(bob, f"run -a {APP} -e 9X=1 ls"), "9X")
    refused(platform.ssh_raw(bob, "run ls"), "-a APP")
    ok(platform.ssh(bob, "apps:create", "no-release-app"))
    refused(platform.ssh_raw(bob, "run -a no-release-app ls"), "push it first")
    assert "usage: run" in ok(platform.ssh_raw(bob, "run --help"))
