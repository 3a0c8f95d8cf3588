"""Procfile and bin/release parsing."""

from __future__ import annotations

import pytest

from buildpacks import BuildError, parse_procfile
from buildpacks.release import parse_release


def test_procfile_keeps_order_comments_and_the_release_phase() -> None:
    text = (
        "# processes\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\n"
        "\nworker:  python w.py  \r\nrelease: ./migrate\n"
    )
    assert parse_procfile(text) == {
        "web": "gunicorn app:app --bind 0.0.0.0:$PORT",
        "worker": "python w.py",
        "release": "./migrate",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web: ok\nthis is not a process\n", "Procfile line 2: expected 'type: command'"),
        ("web: a\n\nweb: b\n", "Procfile line 3: process type 'web' is declared twice"),
        ("web:    \n", "Procfile line 1: process type 'web' has no command"),
        ("web: a\n  worker: indented\n", "Procfile line 2: expected 'type: command'"),
        ("we b: spaced\n", "Procfile line 1: expected 'type: command'"),
    ],
)
def test_malformed_procfile_lines_are_named(text: str, message: str) -> None:
    with pytest.raises(BuildError, match=message) as raised:
        parse_procfile(text)
    assert "\n" not in str(raised.value)


def test_release_output_subset() -> None:
    text = """---
config_vars:
  PYTHONUNBUFFERED: "true"
  QUOTED: 'it''s'
  LIBRARY_PATH: /app/lib:/usr/lib # a comment
default_process_types:
  web: gunicorn app:app
  worker: python -c "import app; app.work()"
addons:
  - heroku-postgresql
  - 'redis'
unrelated:
  key: value
"""
    release = parse_release(text)
    assert release.config_vars == {
        "PYTHONUNBUFFERED": "true",
        "QUOTED": "it's",
        "LIBRARY_PATH": "/app/lib:/usr/lib",
    }
    assert release.default_process_types == {
        "web": "gunicorn app:app",
        "worker": 'python -c "import app; app.work()"',
    }
    assert release.addons == ("heroku-postgresql", "redis")


def test_release_output_empty_forms() -> None:
    assert parse_release("") == parse_release("--- {}\n") == parse_release("---\n")
    release = parse_release("addons: [a, 'b']\ndefault_process_types: {}\nconfig_vars:\n")
    assert release.addons == ("a", "b")
    assert release.default_process_types == {}


def test_release_output_bad_line_is_named() -> None:
    with pytest.raises(BuildError, match="bin/release line 3: expected 'key: value'"):
        parse_release("---\nconfig_vars:\nnot a mapping line\n")
