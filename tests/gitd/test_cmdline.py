"""The pure parsing of the runtime commands: no platform needed."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from gitd.commands import TOPICS, _all, _find
from gitd.commands.base import CommandError, _HelpShown
from gitd.commands.buildpacks import check_reference
from gitd.commands.domains import check_hostname
from gitd.commands.ps import parse_scale, parse_signal
from gitd.commands.releases import parse_version
from gitd.commands.run import parse_run_line, words
from runtime.settings import Settings


class _Parser(argparse.ArgumentParser):
    """Reports as the command surface does: CommandError, _HelpShown."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CommandError(message)

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise _HelpShown


def run_line(line: str) -> argparse.Namespace:
    return parse_run_line(line, _Parser(prog="run"))


@pytest.mark.parametrize(
    ("line", "app", "command"),
    [
        ("run -a myapp echo $GREETING", "myapp", "echo $GREETING"),
        ("run -a myapp   echo   two  spaces ", "myapp", "echo   two  spaces"),
        ("run --app=myapp -- -x --looks-like-an-option", "myapp", "-x --looks-like-an-option"),
        ("run -amyapp echo it's unbalanced", "myapp", "echo it's unbalanced"),
        ("run -a 'my''app' 'quoted word' and $(more)", "myapp", "'quoted word' and $(more)"),
        ("run -a myapp exit 3", "myapp", "exit 3"),
        ("run echo no app", None, "echo no app"),
    ],
)
def test_the_command_is_the_rest_of_the_line_verbatim(
    line: str, app: str | None, command: str
) -> None:
    args = run_line(line)
    assert (args.app, args.command, args.detached, args.env) == (app, command, False, {})


def test_run_options() -> None:
    args = run_line("run --detached -e A=1 --env B=x=y -eC= -a app --no-tty sleep 1")
    assert args.detached and args.no_tty
    assert args.env == {"A": "1", "B": "x=y", "C": ""}
    assert (args.app, args.command) == ("app", "sleep 1")
    assert run_line("run -d -a app ls").detached


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("run -a app", "give the command"),
        ("run -a app --", "give the command"),
        ("run -a", "-a needs a value"),
        ("run -a app --bogus ls", "unrecognized option --bogus"),
        ("run -a app -e NOEQUALS ls", "is not KEY=value"),
        ("run -a app -e 1X=2 ls", "invalid config var name"),
        ("run -a 'unbalanced ls", "cannot parse"),
    ],
)
def test_bad_run_lines(line: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run_line(line)


def test_run_help() -> None:
    with pytest.raises(_HelpShown):
        run_line("run --help")


def test_words_keep_their_positions() -> None:
    line = """run  -a "x y" 'it''s' a\\ b"""
    found = [(w.raw, line[w.start : w.end]) for w in words(line)]
    assert [raw for raw, _ in found] == ["run", "-a", '"x y"', "'it''s'", "a\\ b"]
    assert all(raw == cut for raw, cut in found)
    assert [w.text for w in words(line)] == ["run", "-a", "x y", "its", "a b"]


CURRENT = {"web": 1, "worker": 0}


@pytest.mark.parametrize(
    ("expressions", "wanted"),
    [
        (["web=3"], {"web": 3, "worker": 0}),
        (["web+2", "worker+1"], {"web": 3, "worker": 1}),
        (["web-1"], {"web": 0, "worker": 0}),
        (["web=0", "web+2"], {"web": 2, "worker": 0}),
        (["worker=10"], {"web": 1, "worker": 10}),
    ],
)
def test_scale_expressions(expressions: list[str], wanted: dict[str, int]) -> None:
    assert parse_scale(expressions, CURRENT, max_scale=10) == wanted


@pytest.mark.parametrize(
    ("expressions", "message"),
    [
        (["web=11"], "at most 10"),
        (["web-2"], "below 0"),
        (["clock=1"], "no process type 'clock'"),
        (["web"], "is not TYPE=N"),
        (["web=-1"], "is not TYPE=N"),
        (["web=1x"], "is not TYPE=N"),
        (["web=1", "worker=99"], "at most 10"),
    ],
)
def test_bad_scale_expressions(expressions: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse_scale(expressions, CURRENT, max_scale=10)


@pytest.mark.parametrize(
    ("text", "name"), [("KILL", "KILL"), ("sigterm", "TERM"), ("SIGUSR1", "USR1"), ("9", "KILL")]
)
def test_signals(text: str, name: str) -> None:
    assert parse_signal(text) == name


@pytest.mark.parametrize("text", ["NOPE", "SIG", "999", ""])
def test_bad_signals(text: str) -> None:
    with pytest.raises(CommandError, match="unknown signal"):
        parse_signal(text)


def test_versions() -> None:
    assert parse_version("v12") == parse_version("12") == 12
    for bad in ("v0", "v", "12a", "-1", "v 1"):
        with pytest.raises(CommandError):
            parse_version(bad)


def test_hostnames() -> None:
    settings = Settings(domain="apps.test")
    assert check_hostname("www.example.com", settings) == "www.example.com"
    assert check_hostname("a-b.c0", settings) == "a-b.c0"
    for bad in ("WWW.example.com", "x.apps.test", "apps.test", "a_b.com", "a.", "", "é.com"):
        with pytest.raises(CommandError):
            check_hostname(bad, settings)


def test_buildpack_references(tmp_path: Path) -> None:
    for good in (
        "python",
        "procfile",
        str(tmp_path),
        "https://github.com/heroku/heroku-buildpack-python",
        "git://example.com/bp.git#main",
        "ssh://git@example.com/bp.git",
        "file:///srv/bp.git#v1.2",
    ):
        assert check_reference(good) == good
    for bad in (
        "pythonn",
        "https://",
        "ftp://example.com/bp",
        str(tmp_path / "nope"),
        "https://example.com/bp#bad ref",
        "https://example.com/bp#-x",
        "relative/dir",
    ):
        with pytest.raises(CommandError):
            check_reference(bad)


def test_every_command_is_found_through_its_topic() -> None:
    commands = _all()
    assert len(commands) > 40
    for name, command in commands.items():
        assert _find(name) is command
        if name != "help":
            module = TOPICS[name.partition(":")[0]]
            assert command.run.__module__ == f"gitd.commands.{module}", name


def test_gitd_starts_without_the_add_on_libraries() -> None:
    """psycopg and APScheduler load with the first command that needs them."""
    code = "import sys, gitd.__main__; print(sorted({'psycopg', 'apscheduler'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
