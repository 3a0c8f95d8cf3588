"""`releases`, `releases:info`, `rollback`, config changes that restart, `buildpacks`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitd.deployed import deploy, get, ok, platform_fixture, refused
from tests.harness import Platform, SshKey, commit

APP = "rel-app"
HOST = f"{APP}.localhost"
SERVER = """\
import http.server, os

PREFIX = "{prefix}"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        greeting = os.environ.get("GREETING", "none")
        body = f"{{PREFIX}}{{greeting}} {{os.environ['OURO_RELEASE']}}\\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, keys: dict[str, SshKey]
) -> Iterator[Platform]:
    yield from platform_fixture(tmp_path_factory, keys, "releases")


@pytest.fixture(scope="module")
def repo(
    platform: Platform, keys: dict[str, SshKey], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    files = {"Procfile": "web: python3 app.py\n", "app.py": SERVER.format(prefix="")}
    return deploy(platform, keys["bob"], tmp_path_factory.mktemp("repos"), APP, files)


def push(platform: Platform, key: SshKey, repo: Path) -> str:
    result = platform.git(key, "push", platform.url(APP), "main", cwd=repo, check=False)
    return result.stderr if result.returncode == 0 else "REJECTED " + result.stderr


def test_a_deploy_is_v1(platform: Platform, keys: dict[str, SshKey], repo: Path) -> None:
    sha = platform.git(keys["bob"], "rev-parse", "HEAD", cwd=repo).stdout.strip()
    out = ok(platform.ssh(keys["bob"], "releases", "-a", APP)).splitlines()
    assert out[0] == f"=== {APP} Releases - Current: v1"
    assert re.fullmatch(
        # the author of a deploy is the pipeline's to record (not checked here)
        rf"v1  Deploy {sha[:7]}  \S+  \d{{4}}/\d\d/\d\d \d\d:\d\d:\d\d \+0000 \(~ \d+s ago\)",
        out[1],
    ), out
    assert get(platform, HOST) == (200, "none v1\n")


def test_config_set_restarts_with_the_new_value(
    platform: Platform, keys: dict[str, SshKey], repo: Path
) -> None:
    result = platform.ssh(keys["bob"], "config:set", "-a", APP, "GREETING=hello there")
    ok(result)
    assert "Setting GREETING and restarting ⬢ rel-app... done, v2" in result.stderr
    # the push-like restart answers only once the new web process listens
    assert get(platform, HOST) == (200, "hello there v2\n")
    info = ok(platform.ssh(keys["bob"], "releases:info", "-a", APP, "v2"))
    assert info.startswith("=== Release v2\n")
    assert re.search(r"^Change: +Set GREETING config vars$", info, re.M)
    assert re.search(r"^By: +bob$", info, re.M)
    assert re.search(r"^Process types: +web: python3 app.py$", info, re.M)
    assert info.endswith("=== v2 Config vars\nGREETING: hello there\n")
    current = ok(platform.ssh(keys["bob"], "releases:info", "-a", APP))
    assert current.startswith("=== Release v2\n")


def test_rollback_runs_the_old_slug_and_config(
    platform: Platform, keys: dict[str, SshKey], repo: Path
) -> None:
    bob = keys["bob"]
    commit(repo, {"app.py": SERVER.format(prefix="new ")}, "new code")
    assert not push(platform, bob, repo).startswith("REJECTED")
    assert get(platform, HOST) == (200, "new hello there v3\n")

    result = platform.ssh(bob, "rollback", "-a", APP)
    ok(result)
    assert "Rolling back ⬢ rel-app to v2... done, v4" in result.stderr
    assert get(platform, HOST) == (200, "hello there v4\n")

    ok(platform.ssh(bob, "rollback", "-a", APP, "v1"))
    assert get(platform, HOST) == (200, "none v5\n")
    assert ok(platform.ssh(bob, "config", "-a", APP, "--json")).strip() == "{}"
    listing = ok(platform.ssh(bob, "releases", "-a", APP, "-n", "2")).splitlines()
    assert listing[0].endswith("Current: v5") and len(listing) == 3
    assert "v5  Rollback to v1  bob" in listing[1] and "v4  Rollback to v2  bob" in listing[2]


def test_a_failed_release_is_listed_and_cannot_be_rolled_back_to(
    platform: Platform, keys: dict[str, SshKey], repo: Path
) -> None:
    bob = keys["bob"]
    commit(repo, {"Procfile": "web: python3 app.py\nrelease: exit 1\n"}, "bad release phase")
    assert push(platform, bob, repo).startswith("REJECTED")
    listing = ok(platform.ssh(bob, "releases", "-a", APP)).splitlines()
    assert listing[0].endswith("Current: v5")
    assert re.match(r"v6  Deploy [0-9a-f]{7} \(failed\)  ", listing[1]), listing
    refused(platform.ssh(bob, "rollback", "-a", APP, "v6"), "v6 never ran")
    refused(platform.ssh(bob, "rollback", "-a", APP, "v99"), "no release v99")
    refused(platform.ssh(bob, "rollback", "-a", APP, "v5"), "current release already")
    refused(platform.ssh(bob, "rollback", "-a", APP, "five"), "not a release version")
    refused(platform.ssh(bob, "releases:info", "-a", APP, "v42"), "no release v42")
    assert get(platform, HOST) == (200, "none v5\n")


def test_config_unset_restarts_too(platform: Platform, keys: dict[str, SshKey], repo: Path) -> None:
    bob = keys["bob"]
    ok(platform.ssh(bob, "config:set", "-a", APP, "GREETING=again", "OTHER=1"))
    result = platform.ssh(bob, "config:unset", "-a", APP, "GREETING")
    ok(result)
    assert re.search(r"Unsetting GREETING and restarting ⬢ rel-app\.\.\. done, v\d+", result.stderr)
    assert get(platform, HOST)[1].startswith("none v")


def test_an_app_without_releases(platform: Platform, keys: dict[str, SshKey]) -> None:
    bob = keys["bob"]
    ok(platform.ssh(bob, "apps:create", "fresh-app"))
    assert "has no releases yet" in ok(platform.ssh(bob, "releases", "-a", "fresh-app"))
    refused(platform.ssh(bob, "rollback", "-a", "fresh-app"), "no running release")
    # config without a slug: a release that only carries config, nothing to restart
    result = platform.ssh(bob, "config:set", "-a", "fresh-app", "A=1")
    assert "Setting A and restarting ⬢ fresh-app... done, v1" in result.stderr
    refused(platform.ssh(bob, "rollback", "-a", "fresh-app"), "no running release")


def test_buildpacks_set_show_and_clear(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    ok(platform.ssh(bob, "apps:create", "bp-app"))
    assert "has no buildpack set" in ok(platform.ssh(bob, "buildpacks", "-a", "bp-app"))
    out = ok(platform.ssh(bob, "buildpacks:set", "-a", "bp-app", "python"))
    assert out.startswith("Buildpack set. Next release on bp-app will use python.")
    assert ok(platform.ssh(bob, "buildpacks", "-a", "bp-app")) == "=== bp-app Buildpack\npython\n"
    url = "https://github.com/heroku/heroku-buildpack-nodejs.git#v200"
    ok(platform.ssh(bob, "buildpacks:set", "-a", "bp-app", url))
    assert url in ok(platform.ssh(bob, "buildpacks", "-a", "bp-app"))
    ok(platform.ssh(bob, "buildpacks:set", "-a", "bp-app", str(tmp_path)))
    for bad, words in (
        ("rubyy", "unknown buildpack"),
        (str(tmp_path / "missing"), "does not exist"),
        ("ftp://example.com/bp.git", "unknown buildpack"),
        ("https://example.com/bp.git#--upload-pack=x", "invalid git ref"),
        ("relative/path", "unknown buildpack"),
    ):
        refused(platform.ssh(bob, "buildpacks:set", "-a", "bp-app", bad), words)
    assert str(tmp_path) in ok(platform.ssh(bob, "buildpacks", "-a", "bp-app"))
    out = ok(platform.ssh(bob, "buildpacks:clear", "-a", "bp-app"))
    assert "Buildpacks cleared. Next release on bp-app will detect buildpacks normally." in out
    assert "has no buildpack set" in ok(platform.ssh(bob, "buildpacks", "-a", "bp-app"))


def test_a_config_change_whose_processes_do_not_start_changes_nothing(
    platform: Platform, keys: dict[str, SshKey], tmp_path: Path
) -> None:
    bob = keys["bob"]
    picky = (
        'web: test -z "$BREAK" && exec python3 -m http.server $PORT --bind 127.0.0.1\n'
    )
    deploy(platform, bob, tmp_path, "picky", {"Procfile": picky, "index.html": "fine\n"})
    before = ok(platform.ssh(bob, "releases", "-a", "picky"))
    refused(
        platform.ssh(bob, "config:set", "-a", "picky", "BREAK=yes"),
        "did not start", "nothing changed",
    )
    assert ok(platform.ssh(bob, "config:get", "-a", "picky", "BREAK")) == "\n"
    assert get(platform, "picky.localhost") == (200, "fine\n")
    after = ok(platform.ssh(bob, "releases", "-a", "picky"))
    assert "Current: v1" in before and "Current: v1" in after
    assert "v2  Set BREAK config vars (failed)" in after
