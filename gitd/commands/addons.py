"""`addons`, `addons:create`, `addons:info`, `addons:destroy`."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from addons import records, service
from addons.errors import AddonError
from addons.interface import Environment
from addons.providers import parse_spec, provider_for
from gitd.commands.base import (
    Command,
    CommandError,
    Invocation,
    app_badge,
    format_time,
    styled_header,
    styled_object,
)


@contextlib.contextmanager
def addon_errors() -> Iterator[None]:
    """An add-on's refusal is the command's one-line error."""
    try:
        yield
    except AddonError as e:
        raise CommandError(str(e)) from None


def environment(inv: Invocation) -> Environment:
    return Environment.read(inv.ctx.settings)


def require_confirm(inv: Invocation, confirm: str | None, what: str) -> None:
    if confirm != inv.app:
        raise CommandError(
            f"This will {what} on {app_badge(inv.app)}: re-run with --confirm {inv.app}"
        )


def list_addons(inv: Invocation, args: argparse.Namespace) -> None:
    addons = records.of_app(inv.ctx.store, inv.app)
    if not addons:
        inv.out(f"No add-ons for app {inv.app}.")
        return
    rows = [("Add-on", "Plan", "State", "As")]
    rows += [(f"{a.name} ({a.provider})", a.plan, a.state, a.config_var) for a in addons]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        inv.out(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[3]
        )


def create_addon(inv: Invocation, args: argparse.Namespace) -> None:
    env = environment(inv)
    with addon_errors():  # a bad name is refused before anything is said or done
        parse_spec(args.service, env)
        if args.as_name:
            records.check_attachment(args.as_name)
    inv.progress(f"Creating {args.service} on {app_badge(inv.app)}...")
    with addon_errors():
        addon, release = service.create_addon(
            env,
            inv.ctx.store,
            inv.app,
            args.service,
            args.as_name or "",
            inv.key.name,
            inv.progress,
        )
    inv.api_log(f"Attach {addon.name} as {addon.config_var} (v{release.version}) by {inv.key.name}")
    inv.progress("Database has been created and is available")
    inv.out(f"Created {addon.name} as {addon.config_var}")


def addon_info(inv: Invocation, args: argparse.Namespace) -> None:
    with addon_errors():
        addon = records.find(inv.ctx.store, inv.app, args.name)
        facts = provider_for(addon.provider, environment(inv)).describe(addon)
    inv.out(styled_header(addon.name))
    inv.out(
        styled_object(
            {
                "Attachments": f"{addon.app}::{addon.attachment}",
                "Config vars": addon.config_var,
                "Created at": format_time(addon.created_at),
                "Installed on": app_badge(addon.app),
                "Plan": f"{addon.provider}:{addon.plan}",
                "State": addon.state,
                **facts,
            }
        )
    )


def destroy_addon(inv: Invocation, args: argparse.Namespace) -> None:
    with addon_errors():
        addon = records.find(inv.ctx.store, inv.app, args.name)
    require_confirm(inv, args.confirm, f"destroy {addon.name} and all its data")
    inv.progress(f"Destroying {addon.name} on {app_badge(inv.app)}...")
    with addon_errors():
        service.destroy_addon(environment(inv), inv.ctx.store, addon, inv.key.name, inv.progress)
    inv.api_log(f"Detach {addon.name} ({addon.config_var}) by {inv.key.name}")
    inv.progress(f"Destroying {addon.name} on {app_badge(inv.app)}... done")


def _create_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", metavar="SERVICE[:PLAN]", help="postgres (or heroku-postgresql)")
    parser.add_argument("--as", dest="as_name", metavar="NAME", help="attach as NAME_URL")


def _named_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="ADDON", help="the add-on's name or attachment")


def _destroy_arguments(parser: argparse.ArgumentParser) -> None:
    _named_arguments(parser)
    parser.add_argument("--confirm", metavar="APP", help="the app's name, to confirm")


COMMANDS = (
    Command("addons", "list an app's add-ons", list_addons, app=True),
    Command(
        "addons:create", "create an add-on and attach it", create_addon, _create_arguments, app=True
    ),
    Command("addons:info", "show an add-on's details", addon_info, _named_arguments, app=True),
    Command(
        "addons:destroy",
        "destroy an add-on and its data",
        destroy_addon,
        _destroy_arguments,
        app=True,
        owner=True,
    ),
)
