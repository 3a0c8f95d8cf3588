"""`domains` routing a custom Host, and `apps:destroy` of a running app."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.gitd.deployed import deploy, get, ok, platform_fixture, refused
from tests.harness import Platform, SshKey, wait_for

APP = "dom-app"


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SshKey]
) -> Iterator[Platform]:
    yield from platform_fixture(tmp_path_factory, keys, "domains")


@pytest.fixture(scope="module")
def app(
    platform: Platform, keys: dict[str, SshKey], tmp_path_factory: pytest.TempPathFactory
) -> str:
    deploy(platform, keys["bob"], tmp_path_factory.mktemp("repos"), APP)
    return APP


def test_a_custom_domain_routes_to_the_app(
    platform: Platform, keys: dict[str, SshKey], app: str
) -> None:
    bob = keys["bob"]
    assert get(platform, "www.example.com")[0] != 200
    result = platform.ssh(bob, "domains:add", "-a", app, "www.example.com")
    ok(result)
    assert "Adding www.example.com to ⬢ dom-app... done" in result.stderr
    assert get(platform, "www.example.com") == (200, "<h1>dom-app</h1>\n")
    listing = ok(platform.ssh(bob, "domains", "-a", app))
    assert listing == (
        "=== dom-app Default Domain\ndom-app.localhost\n\n"
        "=== dom-app Custom Domains\nwww.example.com\n"
    )
    assert "www.example.com" in ok(platform.ssh(bob, "apps:info", "-a", app))

    ok(platform.ssh(keys["carol"], "apps:create", "carols-app"))
    refused(
        platform.ssh(keys["carol"], "domains:add", "-a", "carols-app", "www.example.com"),
        "already in use",
    )
    result = platform.ssh(bob, "domains:remove", "-a", app, "www.example.com")
    ok(result)
    assert "Removing www.example.com from ⬢ dom-app... done" in result.stderr
    wait_for(lambda: get(platform, "www.example.com")[0] != 200, what="the route to go")
    refused(platform.ssh(bob, "domains:remove", "-a", app, "www.example.com"), "not a domain")


@pytest.mark.parametrize(
    ("hostname", "words"),
    [
        ("other.localhost", "platform's own domain"),
        ("localhost", "platform's own domain"),
        ("*.example.com", "not a hostname"),
        ("bad-.example.com", "not a hostname"),
        ("a..b", "not a hostname"),
        ("under_score.com", "not a hostname"),
        ("x" * 64 + ".com", "not a hostname"),
        (".".join(["abcdefghi"] * 26), "1 to 253 characters"),
    ],
)
def test_bad_hostnames_are_refused(
    platform: Platform, keys: dict[str, SshKey], app: str, hostname: str, words: str
) -> None:
    refused(platform.ssh(keys["bob"], "domains:add", "-a", app, hostname), words)
    assert "Custom Domains" not in ok(platform.ssh(keys["bob"], "domains", "-a", app))


def test_destroy_stops_the_processes_and_removes_everything(
    platform: Platform, keys: dict[str, SshKey], app: str
) -> None:
    bob = keys["bob"]
    info = ok(platform.ssh(bob, "apps:info", "-a", app))
    assert "Release:" in info and "Processes:" in info and "web: 1" in info
    pid = next(p["pid"] for p in json.loads(ok(platform.ssh(bob, "ps", "-a", app, "--json"))))
    result = platform.ssh(bob, "apps:destroy", "-a", app, "--confirm", app)
    ok(result)
    assert "Destroying ⬢ dom-app" in result.stderr
    # the supervisor answers once the processes are gone (and reaped)
    assert not os.path.exists(f"/proc/{pid}")
    for folder in ("repos/dom-app.git", "slugs/dom-app", "cache/dom-app", "logs/dom-app"):
        assert not (platform.home / folder).exists(), folder
    assert get(platform, f"{app}.localhost")[0] != 200
    refused(platform.ssh(bob, "ps", "-a", app), "Couldn't find that app")
