from __future__ import annotations

from pathlib import Path

import pytest

from runtime.settings import Settings, SettingsError


def test_defaults() -> None:
    s = Settings.load(env={"HOME": "/home/x"})
    assert (s.bind, s.ssh_port, s.http_port, s.domain) == ("127.0.0.1", 2222, 8080, "localhost")
    assert s.home == Path("~/.ouro").expanduser()
    assert s.web_url("myapp") == "http://myapp.localhost:8080/"
    assert s.git_url("myapp") == "ssh://git@127.0.0.1:2222/myapp"


def test_flags_win_over_environment() -> None:
    env = {"OURO_SSH_PORT": "3333", "OURO_DOMAIN": "example.com", "OURO_HOME": "/srv/ouro"}
    s = Settings.load(env=env, ssh_port="4444")
    assert (s.ssh_port, s.domain, s.home) == (4444, "example.com", Path("/srv/ouro"))
    assert Settings.load(env=s.to_env()) == s


@pytest.mark.parametrize(
    "name,value", [("ssh_port", "70000"), ("http_port", "x"), ("git_workers", "0")]
)
def test_bad_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.load(env={}, **{name: value})
