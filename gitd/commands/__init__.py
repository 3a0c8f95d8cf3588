"""The command surface: `ssh platform COMMAND [ARGS]`.

`TOPICS` is the explicit table: each topic (a command's name up to its first
`:`) and the module whose `COMMANDS` define it. `dispatch` parses one command
line, checks who may run it, runs it (a plain runner in a worker thread, a
coroutine on the event loop) and returns its exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import functools
import importlib
import inspect
import logging
import shlex

from gitd.commands.base import (
    Command,
    CommandError,
    Invocation,
    _HelpShown,
    parser_for,
    resolve_app,
)
from gitd.console import Console
from gitd.context import Context
from runtime.store import Key, StoreError

log = logging.getLogger(__name__)

#: topic -> module, in `help`'s order. A module is imported when one of its
#: commands is first asked for: `pg` alone brings psycopg, some 10 MB of gitd's
#: memory that a `git push` never needs.
TOPICS = {
    "version": "platform",
    "status": "platform",
    "apps": "apps",
    "keys": "keys",
    "access": "keys",
    "config": "config",
    "releases": "releases",
    "rollback": "releases",
    "buildpacks": "buildpacks",
    "ps": "ps",
    "run": "run",
    "logs": "logs",
    "domains": "domains",
    "addons": "addons",
    "pg": "pg",
    "cron": "cron",
}


def _help_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topic", nargs="?", metavar="COMMAND", help="a command to explain")


def _help(inv: Invocation, args: argparse.Namespace) -> None:
    if args.topic:
        command = _find(args.topic)
        parser_for(command, inv.console).print_help()
        return
    commands = _all()
    inv.out("Usage: ssh platform COMMAND [ARGS]   (app commands take -a APP)")
    inv.out()
    width = max(len(name) for name in commands) + 2
    for name, command in commands.items():
        inv.out(f"  {name:<{width}}{command.summary}")
    inv.out()
    inv.out("`help COMMAND` explains one command. Deploy with: git push platform main")


HELP = Command("help", "list commands, or explain one", _help, _help_arguments)


@functools.cache
def _module_commands(module: str) -> dict[str, Command]:
    commands: tuple[Command, ...] = importlib.import_module(f"gitd.commands.{module}").COMMANDS
    return {command.name: command for command in commands}


def _all() -> dict[str, Command]:
    """Every command, in `help`'s order (this imports every command module)."""
    table = {HELP.name: HELP}
    for module in dict.fromkeys(TOPICS.values()):
        table.update(_module_commands(module))
    return table


def _find(name: str) -> Command:
    if name == HELP.name:
        return HELP
    module = TOPICS.get(name.partition(":")[0])
    command = _module_commands(module).get(name) if module is not None else None
    if command is None:
        near = difflib.get_close_matches(name, _all(), n=1)
        hint = f" Perhaps you meant '{near[0]}'?" if near else ""
        raise CommandError(f"'{name}' is not an ouro command.{hint} See 'help'.")
    return command


async def dispatch(ctx: Context, key: Key, line: str, console: Console) -> int:
    """Run one command line for `key`; returns the exit status (0, or 1 on a refusal)."""
    inv = Invocation(ctx, key, console, line=line)
    try:
        command, args = _parse(line, console)
        if command.admin and not key.admin:
            raise CommandError(f"{command.name} is for admins only")
        if command.app:
            inv.app = resolve_app(inv, command, args.app or getattr(args, "positional_app", None))
        if inspect.iscoroutinefunction(command.run):
            await command.run(inv, args)
        else:
            await asyncio.to_thread(command.run, inv, args)
    except _HelpShown:
        return 0
    except CommandError as e:
        return console.fail(str(e))
    except (StoreError, argparse.ArgumentError) as e:
        return console.fail(str(e))
    return inv.status


def _parse(line: str, console: Console) -> tuple[Command, argparse.Namespace]:
    """The command a line names and its arguments.

    A line that `shlex` cannot split may still be a `run` line: its command is
    shell text (`run -a app echo it's`), which only the one-off's shell parses.
    """
    try:
        argv: list[str] | None = shlex.split(line)
        error = ""
    except ValueError as e:
        argv, error = None, str(e)
    if argv is None:
        name = line.split(None, 1)[0]  # shlex failed on something: the line has a word
    elif argv:
        name = argv[0]
    else:
        name = "help"
    command = _find(name)
    parser = parser_for(command, console)
    if command.line_parser is not None:
        return command, command.line_parser(line, parser)
    if argv is None:
        raise CommandError(f"cannot parse the command line: {error}")
    return command, parser.parse_args(argv[1:])
