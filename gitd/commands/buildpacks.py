"""`buildpacks`, `buildpacks:set`, `buildpacks:clear`.

What is stored here is read by the next build (`buildpacks.sources.select`):
the app's buildpacks win over `.buildpacks` and `BUILDPACK_URL`.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from urllib.parse import urlsplit

from buildpacks.sources import BUILTINS
from gitd.commands.base import Command, CommandError, Invocation, app_badge, styled_header

GIT_SCHEMES = ("https", "http", "git", "ssh", "file")
#: a branch, tag or commit after `#`
GIT_REF = re.compile(r"^[A-Za-z0-9._/+-]+$")
MAX_REFERENCE = 2048


def check_reference(reference: str) -> str:
    """A built-in name, an absolute path to an existing directory or a git URL (with an
    optional `#ref`); CommandError naming what is wrong otherwise."""
    if reference in BUILTINS:
        return reference
    if len(reference) > MAX_REFERENCE or any(c.isspace() or not c.isprintable() for c in reference):
        raise CommandError("a buildpack reference is one line without blanks")
    location, _, ref = reference.partition("#")
    if "#" in reference and (not GIT_REF.fullmatch(ref) or ref.startswith("-")):
        raise CommandError(f"invalid git ref {ref!r} in {reference!r}")
    if location.startswith("/"):
        if not Path(location).is_dir():
            raise CommandError(f"buildpack directory {location} does not exist on the platform")
        return reference
    parts = urlsplit(location)
    if parts.scheme in GIT_SCHEMES and (parts.netloc or parts.scheme == "file") and parts.path:
        return reference
    builtins = ", ".join(BUILTINS)
    raise CommandError(
        f"unknown buildpack {reference!r}: use a built-in ({builtins}), an absolute path"
        " or a git URL (https://, http://, git://, ssh://, file://, optionally #ref)"
    )


def list_buildpacks(inv: Invocation, args: argparse.Namespace) -> None:
    references = inv.ctx.store.buildpacks(inv.app)
    if not references:
        inv.out(f"{app_badge(inv.app)} has no buildpack set: builds detect one of {_builtins()}")
        return
    inv.out(styled_header(f"{inv.app} Buildpack{'s' if len(references) > 1 else ''}"))
    if len(references) == 1:
        inv.out(references[0])
    else:
        for index, reference in enumerate(references, 1):
            inv.out(f"{index}. {reference}")


def set_buildpack(inv: Invocation, args: argparse.Namespace) -> None:
    reference = check_reference(args.reference)
    inv.ctx.store.set_buildpacks(inv.app, [reference])
    inv.out(f"Buildpack set. Next release on {inv.app} will use {reference}.")
    inv.out("Run `git push platform main` to create a new release using this buildpack.")


def clear_buildpacks(inv: Invocation, args: argparse.Namespace) -> None:
    inv.ctx.store.set_buildpacks(inv.app, [])
    inv.out(f"Buildpacks cleared. Next release on {inv.app} will detect buildpacks normally.")


def _builtins() -> str:
    return ", ".join(BUILTINS)


def _set_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "reference", metavar="NAME|PATH|URL", help=f"a built-in ({_builtins()}), path or git URL"
    )


COMMANDS = (
    Command("buildpacks", "show the app's buildpacks", list_buildpacks, app=True),
    Command("buildpacks:set", "set the app's buildpack", set_buildpack, _set_arguments, app=True),
    Command("buildpacks:clear", "detect buildpacks again", clear_buildpacks, app=True),
)
