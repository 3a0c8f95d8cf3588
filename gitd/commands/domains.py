"""`domains`, `domains:add`, `domains:remove`: custom hostnames the router sends to an app.

The store is changed first, then the supervisor publishes the new routing
table; a supervisor that refuses gets the store put back.
"""

from __future__ import annotations

import argparse
import re

from gitd.commands.base import Command, CommandError, Invocation, app_badge, styled_header
from runtime.settings import Settings
from runtime.store import Conflict, NotFound

MAX_HOSTNAME = 253
LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def check_hostname(hostname: str, settings: Settings) -> str:
    """A hostname of lowercase labels that is not one of the platform's own names."""
    if not hostname or len(hostname) > MAX_HOSTNAME:
        raise CommandError(f"{hostname!r} is not a hostname: 1 to {MAX_HOSTNAME} characters")
    labels = hostname.split(".")
    if not all(LABEL.fullmatch(label) for label in labels):
        raise CommandError(
            f"{hostname!r} is not a hostname: use lowercase labels of letters, digits and"
            " dashes (not at either end of a label), separated by dots"
        )
    domain = settings.domain.lower()
    if hostname == domain or hostname.endswith("." + domain):
        raise CommandError(
            f"{hostname} is under the platform's own domain {domain}: every app has"
            f" APP.{domain} already"
        )
    return hostname


def list_domains(inv: Invocation, args: argparse.Namespace) -> None:
    inv.out(styled_header(f"{inv.app} Default Domain"))
    inv.out(f"{inv.app}.{inv.ctx.settings.domain}")
    custom = inv.ctx.store.domains(inv.app)
    if custom:
        inv.out()
        inv.out(styled_header(f"{inv.app} Custom Domains"))
        for hostname in custom:
            inv.out(hostname)


def add_domain(inv: Invocation, args: argparse.Namespace) -> None:
    hostname = check_hostname(args.hostname, inv.ctx.settings)
    store = inv.ctx.store
    try:
        store.add_domain(inv.app, hostname)
    except Conflict:
        raise CommandError(f"{hostname} is already in use by an app") from None
    try:
        inv.supervisor("reroute")
    except CommandError:
        store.remove_domain(inv.app, hostname)
        raise
    inv.progress(f"Adding {hostname} to {app_badge(inv.app)}... done")


def remove_domain(inv: Invocation, args: argparse.Namespace) -> None:
    store = inv.ctx.store
    try:
        store.remove_domain(inv.app, args.hostname)
    except NotFound as e:
        raise CommandError(str(e)) from None
    try:
        inv.supervisor("reroute")
    except CommandError:
        store.add_domain(inv.app, args.hostname)
        raise
    inv.progress(f"Removing {args.hostname} from {app_badge(inv.app)}... done")


def _hostname_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("hostname", metavar="HOST", help="a hostname such as www.example.com")


COMMANDS = (
    Command("domains", "list the app's domains", list_domains, app=True),
    Command(
        "domains:add",
        "route a custom hostname to the app",
        add_domain,
        _hostname_argument,
        app=True,
    ),
    Command(
        "domains:remove",
        "stop routing a custom hostname",
        remove_domain,
        _hostname_argument,
        app=True,
    ),
)
