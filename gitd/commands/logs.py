"""`logs [-n N] [-t|--tail] [-p|--ps TYPE|TYPE.N] [-s|--source app|ouro]`.

The supervisor answers with the recent lines, then (with `--tail`) one message
per new line until this side closes the stream, which it does as soon as the
SSH channel closes, or gitd stops (a tail is not work to let finish).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re

import asyncssh

from gitd.commands.base import Command, CommandError, Invocation
from runtime.control import ControlError, Message, open_stream
from runtime.logbus import RING_LINES

DEFAULT_LINES = 100
STOPPED = "the log stream ended: the platform's SSH server is stopping"
PROCESS = re.compile(r"^[A-Za-z0-9_-]+(\.[1-9][0-9]*)?$")


def check_lines(n: int) -> int:
    if not 0 <= n <= RING_LINES:
        raise CommandError(f"-n must be between 0 and {RING_LINES}, not {n}")
    return n


def check_process(name: str | None) -> str | None:
    if name is not None and not PROCESS.fullmatch(name):
        raise CommandError(f"{name!r} is not a process type or name (web, web.1)")
    return name


async def show_logs(inv: Invocation, args: argparse.Namespace) -> None:
    fields = {
        "app": inv.app,
        "lines": check_lines(args.num),
        "ps": check_process(args.ps),
        "source": args.source,
        "tail": args.tail,
    }
    try:
        reader, writer = await open_stream(inv.ctx.settings.control_socket, "logs", **fields)
    except ControlError as e:
        raise CommandError(str(e)) from None
    try:
        answer = await _message(reader)
        if answer is None or not answer.get("ok"):
            reason = answer.get("error") if answer else None
            raise CommandError(reason or "the supervisor closed the connection")
        for line in answer.get("lines", []):
            inv.out(str(line))
        if args.tail:
            await _follow(inv, reader)
    finally:
        writer.close()


async def _message(reader: asyncio.StreamReader) -> Message | None:
    try:
        line = await reader.readline()
        message: Message | None = json.loads(line) if line else None
    except (ValueError, ConnectionError):
        return None
    return message


async def _follow(inv: Invocation, reader: asyncio.StreamReader) -> None:
    """New lines until the client goes away (or the supervisor, or this gitd, stops)."""
    process = inv.console.process
    gone = asyncio.ensure_future(process.wait_closed())
    stopping = asyncio.ensure_future(inv.ctx.stopping.wait())
    try:
        while not gone.done():
            nxt = asyncio.ensure_future(_message(reader))
            await asyncio.wait({nxt, gone, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not nxt.done():
                nxt.cancel()
                if stopping.done() and not gone.done():
                    raise CommandError(STOPPED)
                return
            message = nxt.result()
            if message is None:
                raise CommandError("the supervisor stopped sending logs")
            inv.out(str(message.get("line", "")))
            await process.stdout.drain()  # a slow client slows this stream, not the loop
    except (asyncssh.Error, BrokenPipeError, ConnectionError):
        return
    finally:
        gone.cancel()
        stopping.cancel()


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n",
        "--num",
        type=int,
        default=DEFAULT_LINES,
        metavar="N",
        help=f"how many recent lines (default {DEFAULT_LINES}, at most {RING_LINES})",
    )
    parser.add_argument("-t", "--tail", action="store_true", help="keep following new lines")
    parser.add_argument("-p", "--ps", "--dyno", metavar="TYPE|TYPE.N", help="one process or type")
    parser.add_argument("-s", "--source", choices=("app", "ouro"), help="only app or only ouro")


COMMANDS = (Command("logs", "display recent log output", show_logs, _arguments, app=True),)
