"""`run`: a one-off process in the app's release, attached to the SSH session.

The command is the rest of the raw SSH line after `run`'s options (and an
optional `--`), verbatim: the one-off's `/bin/sh -c` is the only thing that
parses it, as `ssh host 'echo $HOME'` would be. So the options are read word
by word from the raw line and the command is cut out of it by position.

Attached, the SSH channel and the supervisor's stream are relayed in frames
(`runtime.frames`): stdin, its EOF and terminal resizes go in; stdout, stderr
and the exit status come out, and the exit status becomes the ssh exit status.
When the client goes away the stream is closed, and the supervisor stops the
one-off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

import asyncssh

from gitd.commands.base import Command, CommandError, Invocation, app_badge
from runtime.control import ControlError, open_stream
from runtime.frames import (
    EXIT,
    RESIZE,
    STDERR,
    STDIN,
    STDIN_EOF,
    STDOUT,
    read_frame,
    write_frame,
)
from runtime.names import InvalidName, check_config_key

#: the ssh exit status when the client went away before the one-off ended
CLIENT_GONE = 255
_BLANKS = " \t\n"


@dataclass(frozen=True)
class Word:
    """One shell word of a line: its raw text and where it lies in the line."""

    raw: str
    start: int
    end: int

    @property
    def text(self) -> str:
        """The word as the shell would see it (quotes removed); ValueError if malformed."""
        return "".join(shlex.split(self.raw)) if self.raw else ""


def words(line: str) -> Iterator[Word]:
    """The line's words one at a time, left to right, with their positions.

    Lazy on purpose: the words after `run`'s options are shell text that may not
    split at all (`echo it's`), and they are never looked at.
    """
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _BLANKS:
            i += 1
        if i >= n:
            return
        start, quote = i, ""
        while i < n:
            c = line[i]
            if quote == "'":
                quote = "" if c == "'" else quote
            elif c == "\\":
                i += 1  # the next character is literal, even a blank
            elif quote == '"':
                quote = "" if c == '"' else quote
            elif c in "'\"":
                quote = c
            elif c in _BLANKS:
                break
            i += 1
        end = min(i, n)
        yield Word(line[start:end], start, end)


def parse_run_line(line: str, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """`run [-a APP] [-d|--detached] [-e K=V]... [--no-tty] [--] COMMAND...` from the raw line."""
    args = argparse.Namespace(app=None, detached=False, no_tty=False, env={}, command="")
    stream = words(line)
    next(stream, None)  # `run` itself
    for word in stream:
        if not word.raw.startswith("-"):
            args.command = line[word.start :].strip()
            break
        option = _text(word, parser)
        if option == "--":
            args.command = line[word.end :].strip()
            break
        name, has_value, value = option.partition("=")
        if not option.startswith("--") and len(option) > 2:
            name, has_value, value = option[:2], "=", option[2:]  # `-aAPP`, `-eK=V`
        if name in ("-h", "--help"):
            parser.print_help()
            parser.exit()
        elif name in ("-d", "--detached") and not has_value:
            args.detached = True
        elif name == "--no-tty" and not has_value:
            args.no_tty = True
        elif name in ("-a", "--app", "-e", "--env"):
            if not has_value:
                following = next(stream, None)
                if following is None:
                    parser.error(f"{name} needs a value")
                value = _text(following, parser)
            if name in ("-a", "--app"):
                args.app = value
            else:
                key, value = _env_pair(value, parser)
                args.env[key] = value
        else:
            parser.error(f"unrecognized option {option}")
    if not args.command:
        parser.error("give the command to run")
    return args


def _text(word: Word, parser: argparse.ArgumentParser) -> str:
    try:
        return word.text
    except ValueError as e:
        parser.error(f"cannot parse {word.raw!r}: {e}")


def _env_pair(pair: str, parser: argparse.ArgumentParser) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep:
        parser.error(f"{pair!r} is not KEY=value")
    try:
        check_config_key(key)
    except InvalidName as e:
        parser.error(str(e))
    return key, value


async def run_command(inv: Invocation, args: argparse.Namespace) -> None:
    fields = {"app": inv.app, "command": args.command, "env": args.env}
    if args.detached:
        answer = await asyncio.to_thread(inv.supervisor, "run", detached=True, **fields)
        inv.progress(f"Running {args.command} on {app_badge(inv.app)}... up, {answer['name']}")
        inv.out(f"Run `logs -a {inv.app} --ps {answer['name']}` to view its output.")
        return
    process = inv.console.process
    tty = process.get_terminal_type() is not None and not args.no_tty
    cols, rows, _, _ = process.get_terminal_size()
    try:
        reader, writer = await open_stream(
            inv.ctx.settings.control_socket, "run", tty=tty, rows=rows, cols=cols, **fields
        )
    except ControlError as e:
        raise CommandError(str(e)) from None
    try:
        try:
            answer = json.loads(await reader.readline() or b"{}")
        except (ValueError, ConnectionError) as e:
            raise CommandError(f"the supervisor sent no answer: {e}") from None
        if not answer.get("ok"):
            raise CommandError(answer.get("error", "the supervisor closed the connection"))
        inv.progress(f"Running {args.command} on {app_badge(inv.app)}... up, {answer['name']}")
        inv.status = await relay(process, reader, writer)
    finally:
        writer.close()


async def relay(
    process: asyncssh.SSHServerProcess[bytes],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> int:
    """Relay until the one-off exits (its status) or the client goes (CLIENT_GONE)."""
    output = asyncio.ensure_future(_output(process, reader))
    feeder = asyncio.ensure_future(_input(process, writer))
    gone = asyncio.ensure_future(process.wait_closed())
    try:
        await asyncio.wait({output, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not output.done():
            return CLIENT_GONE
        return output.result()
    finally:
        for task in (output, feeder, gone):
            task.cancel()


async def _output(process: asyncssh.SSHServerProcess[bytes], reader: asyncio.StreamReader) -> int:
    streams = {STDOUT: process.stdout, STDERR: process.stderr}
    while (frame := await read_frame(reader)) is not None:
        kind, payload = frame
        if kind == EXIT:
            return int(payload or b"1")
        stream = streams.get(kind)
        if stream is None:
            continue
        try:
            stream.write(payload)
            await stream.drain()
        except (asyncssh.Error, BrokenPipeError, ConnectionError):
            return CLIENT_GONE
    raise CommandError("lost the connection to the process before it exited")


async def _input(process: asyncssh.SSHServerProcess[bytes], writer: asyncio.StreamWriter) -> None:
    """SSH stdin to STDIN frames, its end to STDIN_EOF, window changes to RESIZE."""
    with contextlib.suppress(asyncssh.Error, ConnectionError):
        while True:
            try:
                data = await process.stdin.read(65536)
            except asyncssh.TerminalSizeChanged as e:
                write_frame(writer, RESIZE, f"{e.height} {e.width}".encode())
                await writer.drain()
                continue
            except (asyncssh.BreakReceived, asyncssh.SignalReceived):
                continue  # the terminal sends ^C as a byte; a channel signal has no target
            if not data:
                write_frame(writer, STDIN_EOF)
                await writer.drain()
                return
            write_frame(writer, STDIN, data)
            await writer.drain()


def _arguments(parser: argparse.ArgumentParser) -> None:
    # For `help run` only: the line itself is read by `parse_run_line`.
    parser.add_argument(
        "-d", "--detached", action="store_true", help="run in the background, output to the log"
    )
    parser.add_argument(
        "-e", "--env", action="append", metavar="KEY=VALUE", help="an extra environment variable"
    )
    parser.add_argument("--no-tty", action="store_true", help="no terminal, even with ssh -t")
    parser.add_argument(
        "command", nargs=argparse.REMAINDER, help="the rest of the line, run by /bin/sh -c"
    )


COMMANDS = (
    Command(
        "run",
        "run a one-off process in the app's environment",
        run_command,
        _arguments,
        app=True,
        line_parser=parse_run_line,
    ),
)
