"""What every platform command is made of: its parser, its caller, its errors.

A command is a `Command`: a name, a one-line summary, a function that adds its
arguments to an argparse parser and a function that runs it. A command fails
by raising `CommandError` with the one line the user sees.
"""

from __future__ import annotations

import argparse
import datetime
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn

from gitd.console import Console
from gitd.context import Context
from runtime.names import SYSTEM_APP
from runtime.store import Key, NotFound


class CommandError(Exception):
    """A refused command: its message is the one line shown on stderr."""


class _HelpShown(Exception):
    """`-h`/`--help` printed the help: the command stops with status 0."""


@dataclass
class Invocation:
    """One run of a command: who asked, for which app, and where output goes."""

    ctx: Context
    key: Key
    console: Console
    app: str = ""

    def out(self, text: str = "") -> None:
        self.console.out(text + "\n")

    def progress(self, text: str) -> None:
        """An action line (`Creating ⬢ app... done`): stderr, as the Heroku CLI does."""
        self.console.err(text + "\n")


Runner = Callable[[Invocation, argparse.Namespace], None]


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    run: Runner
    arguments: Callable[[argparse.ArgumentParser], None] = field(default=lambda parser: None)
    #: takes `-a APP`, which must exist and be reachable by the caller
    app: bool = False
    #: only admin keys may run it
    admin: bool = False
    #: with `app`: collaborators are refused, only the owner and admins may run it
    owner: bool = False


class Parser(argparse.ArgumentParser):
    """argparse that reports to the SSH client instead of exiting the process."""

    def __init__(self, console: Console, **kwargs: object) -> None:
        super().__init__(exit_on_error=False, **kwargs)  # type: ignore[arg-type]
        self._console = console

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{message} (see `help {self.prog}`)")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._console.err(message)
        raise _HelpShown

    def _print_message(self, message: str, file: object = None) -> None:
        if message:
            self._console.out(message)


def parser_for(command: Command, console: Console) -> Parser:
    parser = Parser(console, prog=command.name, description=command.summary)
    if command.app:
        parser.add_argument("-a", "--app", help="the app to act on")
    command.arguments(parser)
    return parser


def resolve_app(inv: Invocation, command: Command, name: str | None) -> str:
    """The app a command acts on, once the caller is known to reach it."""
    if not name:
        raise CommandError("no app specified: add -a APP")
    try:
        app = inv.ctx.store.app(name)
    except NotFound:
        raise CommandError(f"Couldn't find that app: {name}") from None
    if not inv.ctx.store.can_access(inv.key, name):
        raise CommandError(f"Couldn't find that app: {name}")
    if command.owner and not inv.key.admin and app.owner != inv.key.name:
        raise CommandError(f"only the owner of {name} or an admin may run {command.name}")
    if name == SYSTEM_APP and not inv.key.admin:
        raise CommandError(f"{SYSTEM_APP} is the platform itself: admins only")
    return name


def styled_header(text: str) -> str:
    return f"=== {text}"


def styled_object(fields: Mapping[str, object]) -> str:
    """`Key: value` lines with the values aligned, as Heroku's `styledObject`."""
    width = max((len(k) for k in fields), default=0) + 2
    return "\n".join(f"{k + ':':<{width}}{v}" for k, v in fields.items())


def format_time(stamp: float) -> str:
    when = datetime.datetime.fromtimestamp(stamp, datetime.UTC)
    return when.strftime("%Y/%m/%d %H:%M:%S +0000")


def ago(stamp: float, now: float | None = None) -> str:
    """Heroku's `(~ 5m ago)`."""
    seconds = max(0, int((now or time.time()) - stamp))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"(~ {seconds // size}{unit} ago)"
    return f"(~ {seconds}s ago)"


def app_badge(app: str) -> str:
    return f"⬢ {app}"
