"""`version`, `status`."""

from __future__ import annotations

import argparse

from gitd.commands.base import Command, CommandError, Invocation
from runtime.control import ControlError, request
from runtime.status import describe
from runtime.version import version_string


def show_version(inv: Invocation, args: argparse.Namespace) -> None:
    inv.out(version_string())


def show_status(inv: Invocation, args: argparse.Namespace) -> None:
    try:
        answer = request(inv.ctx.settings.control_socket, "status")
    except ControlError as e:
        raise CommandError(str(e)) from None
    inv.out(describe(answer, inv.ctx.settings))


# `help` itself needs the whole table: it is in gitd.commands.
COMMANDS = (
    Command("version", "show the platform's version and commit", show_version),
    Command("status", "show the platform's ports and processes (admin)", show_status, admin=True),
)
