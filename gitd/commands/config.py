"""`config`, `config:get`, `config:set`, `config:unset`."""

from __future__ import annotations

import argparse
import json
import shlex

from gitd.commands.base import (
    Command,
    CommandError,
    Invocation,
    app_badge,
    styled_header,
    styled_object,
)
from runtime.names import InvalidName, check_config_key
from runtime.store import Release


def show_config(inv: Invocation, args: argparse.Namespace) -> None:
    config = inv.ctx.store.config(inv.app)
    if args.shell:
        for key, value in config.items():
            inv.out(f"{key}={shlex.quote(value)}")
    elif args.json:
        inv.out(json.dumps(config, indent=2, ensure_ascii=False))
    else:
        inv.out(styled_header(f"{inv.app} Config Vars"))
        if config:
            inv.out(styled_object(config))


def get_config(inv: Invocation, args: argparse.Namespace) -> None:
    _check_keys([args.key])
    value = inv.ctx.store.config(inv.app).get(args.key, "")
    inv.out(f"{args.key}={shlex.quote(value)}" if args.shell else value)


def set_config(inv: Invocation, args: argparse.Namespace) -> None:
    values: dict[str, str] = {}
    for pair in args.pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"{pair!r} is not KEY=value")
        values[key] = value
    _check_keys(list(values))
    release = inv.ctx.store.change_config(inv.app, values, (), inv.key.name)
    _restart(inv, release, f"Setting {', '.join(values)}")
    inv.out(styled_object(values))


def unset_config(inv: Invocation, args: argparse.Namespace) -> None:
    _check_keys(args.keys)
    release = inv.ctx.store.change_config(inv.app, {}, args.keys, inv.key.name)
    _restart(inv, release, f"Unsetting {', '.join(args.keys)}")


def _restart(inv: Invocation, release: Release, action: str) -> None:
    """Run the release that carries the new config, when the app runs at all."""
    inv.roll_out(release)
    inv.api_log(f"{release.description} by {inv.key.name}")
    inv.progress(f"{action} and restarting {app_badge(inv.app)}... done, v{release.version}")


def _check_keys(keys: list[str]) -> None:
    for key in keys:
        try:
            check_config_key(key)
        except InvalidName as e:
            raise CommandError(str(e)) from None


def _show_arguments(parser: argparse.ArgumentParser) -> None:
    style = parser.add_mutually_exclusive_group()
    style.add_argument("-s", "--shell", action="store_true", help="output as KEY=value lines")
    style.add_argument("-j", "--json", action="store_true", help="output as a JSON object")


def _get_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", help="the config var's name")
    parser.add_argument("-s", "--shell", action="store_true", help="output as KEY=value")


def _set_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pairs", nargs="+", metavar="KEY=VALUE")


def _unset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("keys", nargs="+", metavar="KEY")


COMMANDS = (
    Command("config", "display the config vars of an app", show_config, _show_arguments, app=True),
    Command("config:get", "display one config var's value", get_config, _get_arguments, app=True),
    Command("config:set", "set one or more config vars", set_config, _set_arguments, app=True),
    Command(
        "config:unset", "unset one or more config vars", unset_config, _unset_arguments, app=True
    ),
)
