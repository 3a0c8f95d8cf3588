"""The command surface: `ssh platform COMMAND [ARGS]`.

`COMMANDS` is the explicit table; `dispatch` parses one command line, checks
who may run it, runs it (a plain runner in a worker thread, a coroutine on the
event loop) and returns its exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import inspect
import logging
import shlex

from gitd.commands import (
    addons,
    apps,
    buildpacks,
    config,
    cron,
    domains,
    keys,
    logs,
    pg,
    platform,
    ps,
    releases,
    run,
)
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


def _help(inv: Invocation, args: argparse.Namespace) -> None:
    if args.topic:
        command = _find(args.topic)
        parser_for(command, inv.console).print_help()
        return
    inv.out("Usage: ssh platform COMMAND [ARGS]   (app commands take -a APP)")
    inv.out()
    width = max(len(name) for name in COMMANDS) + 2
    for name, command in COMMANDS.items():
        inv.out(f"  {name:<{width}}{command.summary}")
    inv.out()
    inv.out("`help COMMAND` explains one command. Deploy with: git push platform main")


_ALL = (
    Command("help", "list commands, or explain one", _help, platform.HELP_ARGUMENTS),
    *platform.PLATFORM_COMMANDS,
    *apps.COMMANDS,
    *keys.COMMANDS,
    *config.COMMANDS,
    *releases.COMMANDS,
    *buildpacks.COMMANDS,
    *ps.COMMANDS,
    *run.COMMANDS,
    *logs.COMMANDS,
    *domains.COMMANDS,
    *addons.COMMANDS,
    *pg.COMMANDS,
    *cron.COMMANDS,
)
COMMANDS: dict[str, Command] = {command.name: command for command in _ALL}


def _find(name: str) -> Command:
    command = COMMANDS.get(name)
    if command is None:
        near = difflib.get_close_matches(name, COMMANDS, n=1)
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
