"""`keys`, `keys:add`, `keys:remove`, `access`, `access:add`, `access:remove`."""

from __future__ import annotations

import argparse

from gitd.commands.base import Command, CommandError, Invocation, styled_header
from runtime.keys import MAX_PUBLIC_KEY, register_key
from runtime.names import InvalidName
from runtime.store import Conflict, NotFound


def list_keys(inv: Invocation, args: argparse.Namespace) -> None:
    keys = inv.ctx.store.all_keys() if inv.key.admin else [inv.key]
    inv.out(styled_header(f"{inv.key.name} Keys" if not inv.key.admin else "Keys"))
    for key in keys:
        kind, _, body = key.public_key.partition(" ")
        body = body.split(" ")[0]
        role = " (admin)" if key.admin else ""
        inv.out(f"{kind} {body[:10]}...{body[-10:]} {key.name}{role}")


def add_key(inv: Invocation, args: argparse.Namespace) -> None:
    text = inv.console.read_all(MAX_PUBLIC_KEY)
    if len(text) > MAX_PUBLIC_KEY:
        raise CommandError("that is not a public key: too long")
    try:
        register_key(inv.ctx.store, args.name, text.decode("utf-8", "replace"), args.admin)
    except (ValueError, InvalidName, Conflict) as e:
        raise CommandError(str(e)) from None
    inv.progress(f"Uploading SSH public key {args.name}... done")


def remove_key(inv: Invocation, args: argparse.Namespace) -> None:
    store = inv.ctx.store
    try:
        key = store.key(args.name)
    except NotFound as e:
        raise CommandError(str(e)) from None
    if key.admin and sum(k.admin for k in store.all_keys()) == 1:
        raise CommandError(f"{key.name} is the last admin key: add another admin first")
    store.remove_key(key.name)
    inv.progress(f"Removing {key.name} SSH key... done")


def list_access(inv: Invocation, args: argparse.Namespace) -> None:
    store = inv.ctx.store
    app = store.app(inv.app)
    rows = [(app.owner, "owner")] + [
        (name, "collaborator") for name in store.collaborators(app.name)
    ]
    inv.out(styled_header(f"{app.name} Access List"))
    width = max(len(name) for name, _ in rows) + 2
    for name, role in rows:
        inv.out(f"{name:<{width}}{role}")


def add_access(inv: Invocation, args: argparse.Namespace) -> None:
    try:
        inv.ctx.store.grant(inv.app, args.keyname)
    except (NotFound, Conflict) as e:
        raise CommandError(str(e)) from None
    inv.progress(f"Adding {args.keyname} access to the app {inv.app}... done")


def remove_access(inv: Invocation, args: argparse.Namespace) -> None:
    try:
        inv.ctx.store.revoke(inv.app, args.keyname)
    except NotFound as e:
        raise CommandError(str(e)) from None
    inv.progress(f"Removing {args.keyname} access from the app {inv.app}... done")


def _key_add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a name for the key's holder")
    parser.add_argument("--admin", action="store_true", help="the key may do anything")


def _name_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the key's name")


def _keyname_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("keyname", help="the name of a registered key")


COMMANDS = (
    Command("keys", "list SSH keys", list_keys),
    Command(
        "keys:add",
        "register an SSH key (public key on stdin)",
        add_key,
        _key_add_arguments,
        admin=True,
    ),
    Command("keys:remove", "remove an SSH key", remove_key, _name_argument, admin=True),
    Command("access", "list who can access an app", list_access, app=True),
    Command(
        "access:add",
        "give a key access to an app",
        add_access,
        _keyname_argument,
        app=True,
        owner=True,
    ),
    Command(
        "access:remove",
        "take a key's access to an app away",
        remove_access,
        _keyname_argument,
        app=True,
        owner=True,
    ),
)
