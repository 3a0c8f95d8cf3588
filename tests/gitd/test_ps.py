"""`ps`, `ps:scale`, `ps:restart`, `ps:stop`, `ps:kill` against a deployed app, for real."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitd.deployed import (
    deploy,
    get,
    ok,
    platform_fixture,
    ps_states,
    refused,
    wait_for_log,
)
from tests.harness import Platform, SshKey, wait_for

APP = "ps-app"


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SshKey]
) -> Iterator[Platform]:
    yield from platform_fixture(tmp_path_factory, keys, "ps")


@pytest.fixture(scope="module")
def app(
    platform: Platform, keys: dict[str, SshKey], tmp_path_factory: pytest.TempPathFactory
) -> str:
    deploy(platform, keys["bob"], tmp_path_factory.mktemp("repos"), APP)
    return APP


def pid_of(platform: Platform, key: SshKey, app: str, name: str) -> int:
    processes = json.loads(ok(platform.ssh(key, "ps", "-a", app, "--json")))
    return int(next(p["pid"] for p in processes if p["name"] == name))


def test_deployed_app_answers_through_the_router_and_ps_shows_it(
    platform: Platform, keys: dict[str, SshKey], app: str
) -> None:
    assert get(platform, f"{app}.localhost") == (200, f"<h1>{app}</h1>\n")
    out = ok(platform.ssh(keys["bob"], "ps", "-a", app))
    lines = out.splitlines()
    assert lines[0] == "=== web (1): python3 -m http.server $PORT --bind 127.0.0.1"
    assert re.fullmatch(
        r"web\.1: up \d{4}/\d\d/\d\d \d\d:\d\d:\d\d \+0000 \(~ \d+[smhd] ago\)", lines[1]
    ), lines[1]
    # a type never scaled: web runs one, the others none (as Heroku)
    assert "worker" not in out


def test_scale_up_and_down(platform: Platform, keys: dict[str, SshKey], app: str) -> None:
    bob = keys["bob"]
    result = platform.ssh(bob, "ps:scale", "-a", app, "web=2", "worker+1")
    ok(result)
    assert "Scaling processes... done, now running web at 2, worker at 1" in result.stderr
    wait_for(
        lambda: ps_states(platform, bob, app) == {"web.1": "up", "web.2": "up", "worker.1": "up"},
        what="web=2 worker=1",
    )
    out = ok(platform.ssh(bob, "ps", "-a", app))
    assert "=== web (2): " in out and "=== worker (1): while true" in out
    assert out.index("=== web") < out.index("=== worker")
    # both web processes answer through the router
    for _ in range(4):
        assert get(platform, f"{app}.localhost")[0] == 200
    wait_for_log(platform, bob, app, "dyno=web.2")
    wait_for_log(platform, bob, app, "app[worker.1]: tick")
    assert "Scaled to web@2 worker@1 by bob" in wait_for_log(platform, bob, app, "Scaled to")

    ok(platform.ssh(bob, "ps:scale", "-a", app, "web-1", "worker=0"))
    wait_for(lambda: ps_states(platform, bob, app) == {"web.1": "up"}, what="back to web=1")
    assert ok(platform.ssh(bob, "ps:scale", "-a", app)).strip() == "web=1 worker=0"


@pytest.mark.parametrize(
    ("expressions", "words"),
    [
        (["web=6"], ["at most 5"]),
        (["web-2"], ["below 0"]),
        (["clock=1"], ["no process type 'clock'", "web, worker"]),
        (["release=1"], ["no process type 'release'"]),
        (["web=1", "nope"], ["'nope' is not TYPE=N"]),
        (["web=1:standard-1x"], ["is not TYPE=N"]),
    ],
)
def test_bad_scale_changes_nothing(
    platform: Platform, keys: dict[str, SshKey], app: str, expressions: list[str], words: list[str]
) -> None:
    refused(platform.ssh(keys["bob"], "ps:scale", "-a", app, "worker=1", *expressions), *words)
    assert ok(platform.ssh(keys["bob"], "ps:scale", "-a", app)).strip() == "web=1 worker=0"


def test_kill_a_web_process_and_it_comes_back(
    platform: Platform, keys: dict[str, SshKey], app: str
) -> None:
    bob = keys["bob"]
    before = pid_of(platform, bob, app, "web.1")
    result = platform.ssh(bob, "ps:kill", "-a", app, "KILL", "web.1")
    ok(result)
    assert "Sending SIGKILL to web.1 on ⬢ ps-app... done" in result.stderr
    wait_for_log(platform, bob, app, "ouro[web.1]: Process exited with status 137")
    wait_for(
        lambda: (
            ps_states(platform, bob, app).get("web.1") == "up"
            and pid_of(platform, bob, app, "web.1") != before
        ),
        what="web.1 restarted",
    )
    assert get(platform, f"{app}.localhost")[0] == 200
    refused(platform.ssh(bob, "ps:kill", "-a", app, "NOSUCH", "web.1"), "unknown signal")
    refused(platform.ssh(bob, "ps:kill", "-a", app, "web"), "not a process name")
    refused(platform.ssh(bob, "ps:kill", "-a", app, "web.9"), "no such process")


def test_restart_replaces_processes(platform: Platform, keys: dict[str, SshKey], app: str) -> None:
    bob = keys["bob"]
    before = pid_of(platform, bob, app, "web.1")
    result = platform.ssh(bob, "ps:restart", "-a", app, "web.1")
    assert "Restarting web.1 process on ⬢ ps-app... done" in result.stderr
    ok(result)
    assert pid_of(platform, bob, app, "web.1") != before
    assert get(platform, f"{app}.localhost")[0] == 200
    after_one = pid_of(platform, bob, app, "web.1")
    result = platform.ssh(bob, "ps:restart", "-a", app)
    assert "Restarting processes on ⬢ ps-app... done" in result.stderr
    assert pid_of(platform, bob, app, "web.1") != after_one
    refused(platform.ssh(bob, "ps:restart", "-a", app, "clock"), "no such process")


def test_stop_then_restart(platform: Platform, keys: dict[str, SshKey], app: str) -> None:
    bob = keys["bob"]
    result = platform.ssh(bob, "ps:stop", "-a", app, "web")
    assert "Stopping web processes on ⬢ ps-app... done" in result.stderr
    wait_for(lambda: ps_states(platform, bob, app) == {"web.1": "down"}, what="web.1 down")
    wait_for(lambda: get(platform, f"{app}.localhost")[0] == 503, what="the router to give up")
    ok(platform.ssh(bob, "ps:restart", "-a", app, "web"))
    wait_for(lambda: ps_states(platform, bob, app) == {"web.1": "up"}, what="web.1 up again")
    assert get(platform, f"{app}.localhost")[0] == 200


def test_process_commands_need_a_release(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    ok(platform.ssh(bob, "apps:create", "empty-app"))
    assert ok(platform.ssh(bob, "ps", "-a", "empty-app")) == "No processes on ⬢ empty-app\n"
    refused(platform.ssh(bob, "ps:scale", "-a", "empty-app", "web=1"), "no release yet")
    refused(platform.ssh(bob, "ps:restart", "-a", "empty-app"), "push it first")
    refused(platform.ssh(keys["carol"], "ps", "-a", APP), "Couldn't find that app")
