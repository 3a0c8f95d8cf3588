"""The command surface over the real OpenSSH client."""

from __future__ import annotations

import json
import shlex

import pytest

from tests.harness import Platform, SshKey, ok, refused


def test_version_names_the_commit(platform: Platform, keys: dict[str, SshKey]) -> None:
    out = ok(platform.ssh(keys["admin"], "version"))
    assert out.startswith("ouro 0.1.0 (") and out.strip().endswith(")")


def test_help_lists_commands_and_explains_one(platform: Platform, keys: dict[str, SshKey]) -> None:
    out = ok(platform.ssh(keys["bob"], "help"))
    for name in ("apps:create", "config:set", "access:add", "keys:remove"):
        assert name in out
    assert "--confirm" in ok(platform.ssh(keys["bob"], "help", "apps:destroy"))
    assert "usage: config:set" in ok(platform.ssh(keys["bob"], "config:set", "--help"))


def test_unknown_command_suggests_the_nearest(platform: Platform, keys: dict[str, SshKey]) -> None:
    refused(platform.ssh(keys["bob"], "confg"), "'confg' is not an ouro command", "'config'")


def test_apps_create_info_and_destroy(platform: Platform, keys: dict[str, SshKey]) -> None:
    bob = keys["bob"]
    result = platform.ssh(bob, "apps:create", "bobs-app")
    assert "Creating ⬢ bobs-app... done" in result.stderr
    assert f"http://bobs-app.localhost:{platform.http_port}/" in ok(result)
    assert (platform.home / "repos" / "bobs-app.git" / "HEAD").exists()
    assert "bobs-app" in ok(platform.ssh(bob, "apps")).splitlines()
    info = ok(platform.ssh(bob, "apps:info", "-a", "bobs-app"))
    assert info.startswith("=== bobs-app\n")
    assert "Owner:" in info and "bob" in info
    assert f"ssh://git@127.0.0.1:{platform.ssh_port}/bobs-app" in info

    refused(platform.ssh(bob, "apps:destroy", "-a", "bobs-app"), "--confirm bobs-app")
    refused(platform.ssh(bob, "apps:destroy", "-a", "bobs-app", "--confirm", "other"), "--confirm")
    assert (platform.home / "repos" / "bobs-app.git").exists()
    result = platform.ssh(bob, "apps:destroy", "bobs-app", "--confirm", "bobs-app")
    assert result.returncode == 0 and "Destroying ⬢ bobs-app" in result.stderr
    assert not (platform.home / "repos" / "bobs-app.git").exists()
    refused(platform.ssh(bob, "apps:info", "-a", "bobs-app"), "Couldn't find that app")


def test_apps_create_without_a_name_picks_a_heroku_style_one(
    platform: Platform, keys: dict[str, SshKey]
) -> None:
    result = platform.ssh(keys["bob"], "apps:create")
    name = result.stderr.split("⬢ ")[1].split("...")[0]
    assert ok(result)
    words = name.split("-")
    assert len(words) == 3 and words[2].isdigit()
    assert name in ok(platform.ssh(keys["bob"], "apps"))


@pytest.mark.parametrize(
    "name", ["ab", "Upper", "9lives", "a" * 31, "has_underscore", "-dash", "a/b", "../etc"]
)
def test_bad_app_names_are_refused(platform: Platform, keys: dict[str, SshKey], name: str) -> None:
    refused(platform.ssh(keys["bob"], "apps:create", name), name)


def test_duplicate_and_reserved_names(platform: Platform, keys: dict[str, SshKey]) -> None:
    ok(platform.ssh(keys["bob"], "apps:create", "taken-name"))
    refused(platform.ssh(keys["carol"], "apps:create", "taken-name"), "already taken")
    refused(platform.ssh(keys["bob"], "apps:create", "ouro"), "reserved")


def test_missing_or_unknown_app(platform: Platform, keys: dict[str, SshKey]) -> None:
    refused(platform.ssh(keys["bob"], "config"), "-a APP")
    refused(platform.ssh(keys["bob"], "config", "-a", "no-such-app"), "Couldn't find that app")


def test_config_round_trip_keeps_spaces_equals_quotes_and_unicode(
    platform: Platform, keys: dict[str, SshKey]
) -> None:
    bob = keys["bob"]
    ok(platform.ssh(bob, "apps:create", "conf-app"))
    values = {
        "GREETING": "hello world",
        "EQUATION": "a=b=c",
        "QUOTES": """it's "quoted" \\ and $(not run) `nor this`; | &&""",
        "UNICODE": "ünïcødé ⬢ 雪",
        "EMPTY": "",
    }
    result = platform.ssh(
        bob, "config:set", "-a", "conf-app", *(f"{k}={v}" for k, v in values.items())
    )
    assert "Setting GREETING, EQUATION, QUOTES, UNICODE, EMPTY and restarting" in result.stderr
    ok(result)
    as_json = json.loads(ok(platform.ssh(bob, "config", "-a", "conf-app", "--json")))
    assert as_json == values
    for key, value in values.items():
        assert ok(platform.ssh(bob, "config:get", "-a", "conf-app", key)) == value + "\n"
    shell = ok(platform.ssh(bob, "config", "--shell", "-a", "conf-app"))
    parsed = dict(line.split("=", 1) for line in shlex.split(shell.replace("\n", " ")))
    assert parsed == values
    styled = ok(platform.ssh(bob, "config", "-a", "conf-app"))
    assert styled.startswith("=== conf-app Config Vars\n")
    assert "GREETING: hello world" in styled

    result = platform.ssh(bob, "config:unset", "-a", "conf-app", "GREETING", "EMPTY")
    assert "Unsetting GREETING, EMPTY and restarting" in result.stderr
    ok(result)
    remaining = json.loads(ok(platform.ssh(bob, "config", "-a", "conf-app", "--json")))
    assert set(remaining) == {"EQUATION", "QUOTES", "UNICODE"}


def test_shell_metacharacters_are_data(platform: Platform, keys: dict[str, SshKey]) -> None:
    marker = platform.work / "pwned"
    for line in (
        f"apps; touch {marker}",
        f"apps | touch {marker}",
        f"apps && touch {marker}",
        f"apps $(touch {marker})",
        f"apps `touch {marker}`",
    ):
        result = platform.ssh_raw(keys["bob"], line)
        assert result.returncode == 1, result
    assert not marker.exists()


def test_bad_config_input_changes_nothing(platform: Platform, keys: dict[str, SshKey]) -> None:
    bob = keys["bob"]
    ok(platform.ssh(bob, "apps:create", "strict-app"))
    ok(platform.ssh(bob, "config:set", "-a", "strict-app", "KEEP=1"))
    refused(platform.ssh(bob, "config:set", "-a", "strict-app", "GOOD=2", "9BAD=3"), "9BAD")
    refused(platform.ssh(bob, "config:set", "-a", "strict-app", "NOEQUALS"), "KEY=value")
    refused(platform.ssh(bob, "config:unset", "-a", "strict-app", "BAD-NAME"), "BAD-NAME")
    assert json.loads(ok(platform.ssh(bob, "config", "-j", "-a", "strict-app"))) == {"KEEP": "1"}


def test_a_64k_command_line_is_refused(platform: Platform, keys: dict[str, SshKey]) -> None:
    refused(platform.ssh(keys["bob"], "config:set", "-a", "x-app", "A=" + "x" * 65536), "too long")


def test_keys_are_managed_by_admins(
    platform: Platform, keys: dict[str, SshKey], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.harness import make_key

    admin, bob = keys["admin"], keys["bob"]
    listed = ok(platform.ssh(admin, "keys"))
    assert "admin (admin)" in listed and " bob" in listed
    assert "admin" not in ok(platform.ssh(bob, "keys")).replace("bob Keys", "")

    dave = make_key(tmp_path_factory.mktemp("dave"), "dave")
    refused(platform.ssh(bob, "keys:add", "dave", input=dave.public.read_text()), "admins only")
    assert platform.ssh(dave, "version").returncode == 255  # not registered: no way in
    result = platform.ssh(admin, "keys:add", "dave", input=dave.public.read_text())
    assert "Uploading SSH public key dave... done" in result.stderr
    ok(platform.ssh(dave, "version"))  # keys apply without a restart

    refused(
        platform.ssh(admin, "keys:add", "dave2", input=dave.public.read_text()),
        "registered already",
    )
    refused(
        platform.ssh(admin, "keys:add", "dave", input=keys["eve"].public.read_text()),
        "exists already",
    )
    refused(
        platform.ssh(admin, "keys:add", "junk", input="ssh-ed25519 notbase64!!"),
        "not an SSH public key",
    )
    refused(platform.ssh(admin, "keys:remove", "admin"), "last admin")
    ok(platform.ssh(admin, "keys:remove", "dave"))
    assert platform.ssh(dave, "version").returncode == 255


def test_access_sharing(platform: Platform, keys: dict[str, SshKey]) -> None:
    bob, carol = keys["bob"], keys["carol"]
    ok(platform.ssh(bob, "apps:create", "shared-app"))
    refused(platform.ssh(carol, "config", "-a", "shared-app"), "Couldn't find that app")
    assert "shared-app" not in ok(platform.ssh(carol, "apps"))

    refused(platform.ssh(bob, "access:add", "nobody-key", "-a", "shared-app"), "no key named")
    ok(platform.ssh(bob, "access:add", "carol", "-a", "shared-app"))
    listing = ok(platform.ssh(carol, "access", "-a", "shared-app"))
    assert listing.startswith("=== shared-app Access List\n")
    assert "bob" in listing and "owner" in listing and "carol" in listing
    ok(platform.ssh(carol, "config:set", "-a", "shared-app", "BY=carol"))
    assert "shared-app" in ok(platform.ssh(carol, "apps"))
    # a collaborator is not an owner
    refused(
        platform.ssh(carol, "apps:destroy", "-a", "shared-app", "--confirm", "shared-app"), "owner"
    )
    refused(platform.ssh(carol, "access:add", "admin", "-a", "shared-app"), "owner")

    ok(platform.ssh(bob, "access:remove", "carol", "-a", "shared-app"))
    refused(platform.ssh(carol, "config", "-a", "shared-app"), "Couldn't find that app")
    # admins reach everything
    assert "BY:" in ok(platform.ssh(keys["admin"], "config", "-a", "shared-app"))


def test_status_is_for_admins(platform: Platform, keys: dict[str, SshKey]) -> None:
    out = ok(platform.ssh(keys["admin"], "status"))
    assert f"SSH:   127.0.0.1:{platform.ssh_port}" in out and "ouro.gitd.1: up" in out
    refused(platform.ssh(keys["bob"], "status"), "admins only")


def test_no_shell_and_no_forwarding(platform: Platform, keys: dict[str, SshKey]) -> None:
    import subprocess

    shell = subprocess.run(
        [*platform.ssh_command(keys["bob"]), "git@127.0.0.1"],
        input=b"",
        capture_output=True,
        timeout=30,
    )
    assert shell.returncode == 1 and b"no interactive shell" in shell.stderr
    forward = subprocess.run(
        [
            *platform.ssh_command(keys["bob"]),
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            "0:127.0.0.1:22",
            "git@127.0.0.1",
            "version",
        ],
        input=b"",
        capture_output=True,
        timeout=30,
    )
    assert forward.returncode != 0
