"""`ps`, `ps:scale`, `ps:restart`, `ps:stop`, `ps:kill`.

The formation (how many of each process type) is stored first, then the
supervisor is asked to match it; everything is validated before anything is
stored, and a supervisor that refuses puts the stored formation back.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from gitd.commands.base import (
    Command,
    CommandError,
    Invocation,
    ago,
    app_badge,
    format_time,
    styled_header,
)
from runtime.names import SYSTEM_APP
from runtime.plan import formation_of
from runtime.store import Release

SCALE = re.compile(r"^([A-Za-z0-9_-]+)([=+-])([0-9]+)$")
TARGET = re.compile(r"^[A-Za-z0-9_-]+(\.[1-9][0-9]*)?$")
PROCESS_NAME = re.compile(r"^[A-Za-z0-9_-]+\.[1-9][0-9]*$")
DEFAULT_SIGNAL = "KILL"


def current_quantities(release: Release, stored: Mapping[str, int]) -> dict[str, int]:
    """What runs now (`runtime.plan.formation_of`)."""
    return formation_of(release.app, release.process_types, stored)


def parse_scale(
    expressions: Sequence[str], current: Mapping[str, int], max_scale: int
) -> dict[str, int]:
    """The formation after `web=2 worker+1 ...`, applied in order; CommandError on any
    unknown type, malformed expression or out-of-range result."""
    wanted = dict(current)
    for expression in expressions:
        match = SCALE.fullmatch(expression)
        if match is None:
            raise CommandError(f"{expression!r} is not TYPE=N, TYPE+N or TYPE-N")
        type_, op, number = match.group(1), match.group(2), int(match.group(3))
        if type_ not in wanted:
            known = ", ".join(wanted) or "none"
            raise CommandError(f"no process type {type_!r} in the current release ({known})")
        value = {"=": number, "+": wanted[type_] + number, "-": wanted[type_] - number}[op]
        if value < 0:
            raise CommandError(f"cannot scale {type_} below 0 ({expression})")
        if value > max_scale:
            raise CommandError(f"cannot scale {type_} to {value}: at most {max_scale}")
        wanted[type_] = value
    return wanted


#: the platform's process types that `ps:scale -a ouro` may change
SCALABLE_PLATFORM_TYPES = ("gitd", "router")


def _release(inv: Invocation) -> Release:
    release = inv.ctx.store.current_release(inv.app)
    if release is not None and inv.app == SYSTEM_APP:
        return release  # the platform runs from its installed code: no slug
    if release is None or release.slug is None:
        raise CommandError(f"{app_badge(inv.app)} has no release yet: push it first")
    return release


# -- ps -----------------------------------------------------------------------


def list_processes(inv: Invocation, args: argparse.Namespace) -> None:
    processes: list[dict[str, Any]] = inv.supervisor("ps", app=inv.app)["processes"]
    if args.json:
        inv.out(json.dumps(processes, indent=2))
        return
    if not processes:
        inv.out(f"No processes on {app_badge(inv.app)}")
        return
    release = inv.ctx.store.current_release(inv.app)
    order = list(release.process_types) if release else []
    groups: dict[str, list[dict[str, Any]]] = {}
    for process in sorted(processes, key=lambda p: _sort_key(p, order)):
        kind = "run" if process["oneoff"] else process["type"]
        groups.setdefault(kind, []).append(process)
    blocks = []
    for kind, members in groups.items():
        if kind == "run":
            lines = [styled_header(f"run: one-off processes ({len(members)})")]
            lines += [f"{_state(p)}: {p['command']}" for p in members]
        else:
            lines = [styled_header(f"{kind} ({len(members)}): {members[0]['command']}")]
            lines += [_state(p) for p in members]
        blocks.append("\n".join(lines))
    inv.out("\n\n".join(blocks))


def _sort_key(process: Mapping[str, Any], order: list[str]) -> tuple[int, int, str, int]:
    type_, _, index = str(process["name"]).partition(".")
    oneoff = bool(process["oneoff"])
    rank = order.index(type_) if type_ in order and not oneoff else len(order)
    return (int(oneoff), rank, type_, int(index) if index.isdigit() else 0)


def _state(process: Mapping[str, Any]) -> str:
    since = process.get("since")
    when = f" {format_time(since)} {ago(since)}" if since else ""
    return f"{process['name']}: {process['state']}{when}"


# -- ps:scale -----------------------------------------------------------------


def scale(inv: Invocation, args: argparse.Namespace) -> None:
    store = inv.ctx.store
    release = _release(inv)
    before = current_quantities(release, store.formation(inv.app))
    if not args.expressions:
        inv.out(" ".join(f"{t}={n}" for t, n in before.items()))
        return
    after = parse_scale(args.expressions, before, inv.ctx.settings.max_scale)
    if inv.app == SYSTEM_APP:
        _check_platform_scale(before, after)
    store.set_formation(inv.app, after)
    try:
        inv.supervisor("scale", app=inv.app)
    except CommandError as e:
        store.set_formation(inv.app, before)
        raise CommandError(f"could not scale {app_badge(inv.app)}: {e}") from None
    summary = ", ".join(f"{t} at {n}" for t, n in after.items())
    inv.progress(f"Scaling processes... done, now running {summary}")
    changed = " ".join(f"{t}@{n}" for t, n in after.items() if before.get(t) != n)
    if changed:
        inv.api_log(f"Scaled to {changed} by {inv.key.name}")


def _check_platform_scale(before: Mapping[str, int], after: Mapping[str, int]) -> None:
    """gitd and the router scale, never to 0 (no way back in); the rest stays at one."""
    for type_, count in after.items():
        if count == before.get(type_):
            continue
        if type_ not in SCALABLE_PLATFORM_TYPES:
            raise CommandError(f"the platform runs exactly one {type_}")
        if count < 1:
            raise CommandError(f"the platform needs at least one {type_}")


# -- ps:restart, ps:stop, ps:kill -----------------------------------------------


def _target(text: str | None, process_only: bool = False) -> str | None:
    pattern = PROCESS_NAME if process_only else TARGET
    if text is not None and not pattern.fullmatch(text):
        shape = "a process name (web.1)" if process_only else "a process type or name (web, web.1)"
        raise CommandError(f"{text!r} is not {shape}")
    return text


def _describe(target: str | None) -> str:
    if target is None:
        return "processes"
    return f"{target} process" if "." in target else f"{target} processes"


def restart(inv: Invocation, args: argparse.Namespace) -> None:
    target = _target(args.target)
    running = inv.supervisor("ps", app=inv.app)["processes"]
    count = sum(1 for p in running if target in (None, p["name"], p["type"]))
    # Each web process is replaced only once its successor listens: allow every boot.
    timeout = (inv.ctx.settings.boot_timeout + 10) * max(1, count)
    inv.supervisor("restart", timeout=timeout, app=inv.app, target=target)
    inv.progress(f"Restarting {_describe(target)} on {app_badge(inv.app)}... done")


def stop(inv: Invocation, args: argparse.Namespace) -> None:
    target = _target(args.target)
    inv.supervisor("stop", app=inv.app, target=target)
    inv.progress(f"Stopping {_describe(target)} on {app_badge(inv.app)}... done")


def parse_signal(text: str) -> str:
    """`KILL`, `SIGKILL`, `kill` or `9` -> `KILL`; CommandError for anything else."""
    try:
        if text.isdigit():
            return signal.Signals(int(text)).name.removeprefix("SIG")
        return signal.Signals[f"SIG{text.upper().removeprefix('SIG')}"].name.removeprefix("SIG")
    except (KeyError, ValueError):
        raise CommandError(f"unknown signal {text!r}") from None


def kill(inv: Invocation, args: argparse.Namespace) -> None:
    if len(args.words) > 2:
        raise CommandError("give at most a signal and one process name (ps:kill KILL web.1)")
    signame = parse_signal(args.words[0] if len(args.words) == 2 else DEFAULT_SIGNAL)
    target = _target(args.words[-1], process_only=True)
    inv.supervisor("kill", app=inv.app, target=target, signal=signame)
    inv.progress(f"Sending SIG{signame} to {target} on {app_badge(inv.app)}... done")


# -- arguments ----------------------------------------------------------------


def _ps_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="output as JSON")


def _scale_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("expressions", nargs="*", metavar="TYPE=N|TYPE+N|TYPE-N")


def _optional_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", metavar="TYPE|TYPE.N")


def _target_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TYPE|TYPE.N")


def _kill_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("words", nargs="+", metavar="[SIGNAL] TYPE.N")


COMMANDS = (
    Command("ps", "list the app's processes", list_processes, _ps_arguments, app=True),
    Command("ps:scale", "scale process types up or down", scale, _scale_arguments, app=True),
    Command("ps:restart", "restart processes (zero downtime)", restart, _optional_target, app=True),
    Command("ps:stop", "stop a process type or one process", stop, _target_argument, app=True),
    Command("ps:kill", "send a signal to one process", kill, _kill_arguments, app=True),
)
