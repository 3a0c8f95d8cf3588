"""`releases`, `releases:info`, `rollback`."""

from __future__ import annotations

import argparse
import re

from gitd.commands.base import (
    Command,
    CommandError,
    Invocation,
    ago,
    app_badge,
    format_time,
    styled_header,
    styled_object,
)
from runtime.sizes import human_size
from runtime.store import STATUS_FAILED, STATUS_PENDING, Conflict, NotFound
from runtime.store_types import Release

VERSION = re.compile(r"^v?([1-9][0-9]*)$")
#: seconds a deploy may take beyond the web processes' boot timeout (routers, settling)


def parse_version(text: str) -> int:
    match = VERSION.fullmatch(text)
    if match is None:
        raise CommandError(f"{text!r} is not a release version (v5 or 5)")
    return int(match.group(1))


def describe(release: Release) -> str:
    if release.status == STATUS_FAILED:
        return f"{release.description} (failed)"
    if release.status == STATUS_PENDING:
        return f"{release.description} (pending)"
    return release.description


def list_releases(inv: Invocation, args: argparse.Namespace) -> None:
    if not 1 <= args.num <= 1000:
        raise CommandError(f"-n must be between 1 and 1000, not {args.num}")
    store = inv.ctx.store
    current = store.current_release(inv.app)
    releases = store.releases(inv.app, limit=args.num)
    if not releases:
        inv.out(styled_header(f"{inv.app} Releases"))
        inv.out(f"{app_badge(inv.app)} has no releases yet")
        return
    title = f"{inv.app} Releases" + (f" - Current: v{current.version}" if current else "")
    rows = [
        (f"v{r.version}", describe(r), r.author, f"{format_time(r.created_at)} {ago(r.created_at)}")
        for r in releases
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    inv.out(styled_header(title))
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        inv.out("  ".join([*cells, row[3]]))


def release_info(inv: Invocation, args: argparse.Namespace) -> None:
    store = inv.ctx.store
    if args.version is None:
        release = store.current_release(inv.app)
        if release is None:
            raise CommandError(f"{app_badge(inv.app)} has no releases yet")
    else:
        release = _find(inv, parse_version(args.version))
    inv.out(styled_header(f"Release v{release.version}"))
    types = ", ".join(f"{t}: {c}" for t, c in release.process_types.items())
    fields = {
        "Change": describe(release),
        "By": release.author,
        "When": f"{format_time(release.created_at)} {ago(release.created_at)}",
        "Slug size": human_size(release.slug_size) if release.slug_size is not None else "none",
        "Process types": types or "none",
        "Commit": release.commit or "none",
        "Buildpacks": ", ".join(release.buildpacks) or "none",
    }
    inv.out(styled_object(fields))
    inv.out()
    inv.out(styled_header(f"v{release.version} Config vars"))
    if release.config:
        inv.out(styled_object(release.config))


def rollback(inv: Invocation, args: argparse.Namespace) -> None:
    store = inv.ctx.store
    current = store.current_release(inv.app)
    if current is None or not current.runnable:
        raise CommandError(f"{app_badge(inv.app)} has no running release to roll back")
    if args.version is None:
        target = _previous(inv, current.version)
    else:
        target = _find(inv, parse_version(args.version))
        if target.version == current.version:
            raise CommandError(f"v{target.version} is the current release already")
    if not target.runnable:
        raise CommandError(f"v{target.version} never ran: it cannot be rolled back to")
    if target.slug and not (inv.ctx.settings.slugs_dir / inv.app / target.slug).is_dir():
        raise CommandError(f"the slug of v{target.version} was pruned: it cannot run again")
    try:
        release = store.rollback(inv.app, target.version, inv.key.name)
    except (NotFound, Conflict) as e:
        raise CommandError(str(e)) from None
    inv.roll_out(release)
    inv.progress(
        f"Rolling back {app_badge(inv.app)} to v{target.version}... done, v{release.version}"
    )
    inv.api_log(f"Rollback to v{target.version} by {inv.key.name}")


def _find(inv: Invocation, version: int) -> Release:
    try:
        return inv.ctx.store.release(inv.app, version)
    except NotFound:
        raise CommandError(f"{app_badge(inv.app)} has no release v{version}") from None


def _previous(inv: Invocation, current: int) -> Release:
    release = inv.ctx.store.previous_release(inv.app, current)
    if release is not None:
        return release
    raise CommandError(f"{app_badge(inv.app)} has no earlier release that ran to roll back to")


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--num", type=int, default=15, metavar="N", help="how many (15)")


def _version_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("version", nargs="?", metavar="vN", help="a release (default: current)")


def _rollback_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "version", nargs="?", metavar="vN", help="the release to go back to (default: previous)"
    )


COMMANDS = (
    Command("releases", "list the app's releases", list_releases, _list_arguments, app=True),
    Command(
        "releases:info", "show one release in detail", release_info, _version_argument, app=True
    ),
    Command(
        "rollback",
        "run an earlier release's slug and config again",
        rollback,
        _rollback_argument,
        app=True,
    ),
)

