"""`apps`, `apps:create`, `apps:info`, `apps:destroy`."""

from __future__ import annotations

import argparse
import shutil

from addons import destroy_app_addons
from addons.errors import AddonError
from gitd.commands.base import (
    Command,
    CommandError,
    Invocation,
    app_badge,
    format_time,
    styled_header,
    styled_object,
)
from gitd.commands.ps import current_quantities
from gitd.repos import ensure_repo, repo_path
from runtime.names import SYSTEM_APP, InvalidName, check_app_name, random_app_name
from runtime.sizes import human_size, tree_size
from runtime.store import Conflict, Release

RANDOM_NAME_TRIES = 20


def list_apps(inv: Invocation, args: argparse.Namespace) -> None:
    apps = inv.ctx.store.apps()
    own = [a for a in apps if a.owner == inv.key.name]
    others = [
        a for a in apps if a.owner != inv.key.name and inv.ctx.store.can_access(inv.key, a.name)
    ]
    inv.out(styled_header(f"{inv.key.name} Apps"))
    if not own:
        inv.out("You have no apps.")
    for app in own:
        inv.out(app.name)
    if others:
        inv.out()
        inv.out(styled_header("Collaborated Apps"))
        width = max(len(a.name) for a in others) + 2
        for app in others:
            inv.out(f"{app.name:<{width}}{app.owner}")


def create_app(inv: Invocation, args: argparse.Namespace) -> None:
    name = args.name
    if name is not None:
        create_named_app(inv, name)
    else:
        for _ in range(RANDOM_NAME_TRIES):
            try:
                name = random_app_name()
                inv.ctx.store.create_app(name, inv.key.name)
                break
            except Conflict:
                continue
        else:
            raise CommandError("could not find a free app name: give one")
    ensure_repo(repo_path(inv.ctx.settings, name))
    inv.progress(f"Creating {app_badge(name)}... done")
    settings = inv.ctx.settings
    inv.out(f"{settings.web_url(name)} | {settings.git_url(name)}")


def create_named_app(inv: Invocation, name: str) -> None:
    """Validate and record a new app owned by the caller (also used by `git push`)."""
    try:
        check_app_name(name)
    except InvalidName as e:
        raise CommandError(str(e)) from None
    if name == SYSTEM_APP and not inv.key.admin:
        raise CommandError(f"{SYSTEM_APP} is reserved for the platform itself")
    try:
        inv.ctx.store.create_app(name, inv.key.name)
    except Conflict:
        raise CommandError(f"Name {name} is already taken") from None


def app_info(inv: Invocation, args: argparse.Namespace) -> None:
    store, settings = inv.ctx.store, inv.ctx.settings
    app = store.app(inv.app)
    release = store.current_release(app.name)
    system = app.name == SYSTEM_APP  # v1 is the installed code (no slug); never a web URL
    running = release is not None and (release.slug is not None or system)
    inv.out(styled_header(app.name))
    fields = {
        "Collaborators": ", ".join(store.collaborators(app.name)) or "none",
        "Created": format_time(app.created_at),
        "Domains": ", ".join(store.domains(app.name)) or "none",
        "Git URL": settings.git_url(app.name),
        "Owner": app.owner,
        "Processes": _formation(release, store.formation(app.name)) if running else "none",
        "Release": f"v{release.version}" if release else "none",
        "Repo Size": human_size(tree_size(repo_path(settings, app.name))),
        "Slug Size": human_size(release.slug_size or 0) if running and release else "none",
        "Web URL": "none" if system else settings.web_url(app.name),
    }
    inv.out(styled_object(fields))


def destroy_app(inv: Invocation, args: argparse.Namespace) -> None:
    name = inv.app
    if name == SYSTEM_APP:
        raise CommandError(f"{SYSTEM_APP} is the platform itself and cannot be destroyed")
    if args.confirm != name:
        raise CommandError(
            f"This will delete {app_badge(name)} and all its data: re-run with --confirm {name}"
        )
    settings = inv.ctx.settings
    # Its processes go first: a refusal here leaves the app whole, and nothing of it
    # runs while its files go away.
    inv.supervisor("destroy", timeout=settings.grace_period + 15, app=name)
    try:
        destroy_app_addons(settings, inv.ctx.store, name, inv.progress)
    except AddonError as e:
        raise CommandError(
            f"{e}: {name} is stopped but not destroyed; run apps:destroy again"
        ) from None
    inv.ctx.store.delete_app(name)
    # The record goes before the files: a half-removed directory is then only garbage,
    # never an app.
    for folder in (
        repo_path(settings, name),
        settings.slugs_dir / name,
        settings.cache_dir / name,
        settings.logs_dir / name,
    ):
        shutil.rmtree(folder, ignore_errors=True)
    inv.progress(f"Destroying {app_badge(name)} (including all add-ons)... done")


def _formation(release: Release | None, stored: dict[str, int]) -> str:
    if release is None:
        return "none"
    quantities = current_quantities(release, stored)
    return ", ".join(f"{t}: {n}" for t, n in quantities.items()) or "none"


def _create_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="the app's name (random when omitted)")


def _destroy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("positional_app", nargs="?", metavar="APP", help="the app to destroy")
    parser.add_argument("--confirm", metavar="APP", help="the app's name, to confirm")


COMMANDS = (
    Command("apps", "list your apps", list_apps),
    Command("apps:create", "create a new app", create_app, _create_arguments),
    Command("apps:info", "show detailed app information", app_info, app=True),
    Command(
        "apps:destroy",
        "permanently destroy an app and everything of it",
        destroy_app,
        _destroy_arguments,
        app=True,
        owner=True,
    ),
)
