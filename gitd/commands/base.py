"""What every platform command is made of: its parser, its caller, its errors.

A command is a `Command`: a name, a one-line summary, a function that adds its
arguments to an argparse parser and a function that runs it. A command fails
by raising `CommandError` with the one line the user sees.

A runner is a plain function, run in a worker thread, or a coroutine function,
run on the event loop: those (`run`, `logs`) relay streams between the SSH
channel and the supervisor and set `Invocation.status` themselves.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from gitd.console import Console
from gitd.context import Context
from runtime.control import ControlError, Message, request
from runtime.names import SYSTEM_APP
from runtime.rollout import RolloutError, roll_out
from runtime.store import Key, NotFound, Release


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
    #: the command line exactly as the client sent it
    line: str = ""
    #: the exit status the client gets (a one-off's own status, for `run`)
    status: int = 0

    def out(self, text: str = "") -> None:
        self.console.out(text + "\n")

    def progress(self, text: str) -> None:
        """An action line (`Creating ⬢ app... done`): stderr, as the Heroku CLI does."""
        self.console.err(text + "\n")

    def supervisor(self, op: str, timeout: float = 10.0, **fields: Any) -> Message:
        """One control-socket request (blocking: from a worker thread); a refusal or an
        unreachable supervisor becomes the command's one-line error."""
        try:
            return request(self.ctx.settings.control_socket, op, timeout=timeout, **fields)
        except ControlError as e:
            raise CommandError(str(e)) from None

    def roll_out(self, release: Release) -> None:
        """Run a release cut by a config change, a rollback or an add-on. A pending one is
        deployed and then marked succeeded; when its processes do not come up it is
        marked failed, the config goes back to what runs, and the command fails."""
        try:
            roll_out(self.ctx.settings, self.ctx.store, release)
        except RolloutError as e:
            raise CommandError(str(e)) from None

    def api_log(self, text: str) -> None:
        """An `ouro[api]` line in the app's log. Best effort: the change is made already,
        and a log line that cannot be written must not turn it into a failure."""
        with contextlib.suppress(ControlError):
            request(self.ctx.settings.control_socket, "emit", app=self.app, text=text)


Runner = Callable[[Invocation, argparse.Namespace], Awaitable[None] | None]
#: parses a command's own raw line (`run`: its command is the rest, verbatim)
LineParser = Callable[[str, argparse.ArgumentParser], argparse.Namespace]


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
    #: takes its arguments from the raw command line instead of argparse
    line_parser: LineParser | None = None


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
