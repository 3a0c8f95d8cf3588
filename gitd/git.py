"""The git bridge: `git-receive-pack` / `git-upload-pack` over an SSH session.

gitd decides who may do what (the path names an app the key may use; a push
to an unknown app creates it), then hands the protocol to a git worker
process (`gitd.workers`), which creates the repository on first use and
serves it with dulwich: `gitd.receive` for
pushes (ref policy, connectivity check, push hook), `gitd.upload` for fetches.
The push hook is named by `OURO_GIT_HOOK` in gitd's environment (`gitd.hooks`).
"""

from __future__ import annotations

import asyncio
import logging

import asyncssh

from gitd.commands.apps import create_named_app
from gitd.commands.base import CommandError, Invocation
from gitd.console import Console
from gitd.context import Context
from gitd.repos import RepoError, app_from_path, repo_path
from gitd.worker import RECEIVE, UPLOAD, Job
from runtime.store import Key, NotFound

log = logging.getLogger(__name__)

SERVICES = (RECEIVE, UPLOAD)


async def serve(
    ctx: Context, process: asyncssh.SSHServerProcess[bytes], key: Key, argv: list[str]
) -> int:
    console = Console(process, asyncio.get_running_loop())
    if len(argv) != 2:
        return console.fail(f"usage: {argv[0]} '/APP.git'")
    service = argv[0]
    try:
        app = app_from_path(argv[1])
        path = repo_path(ctx.settings, app)
        _authorize(ctx, key, app, create=service == RECEIVE, console=console)
    except (RepoError, CommandError) as e:
        return console.fail(str(e))
    if ctx.git_workers is None:
        return console.fail("git is not available on this server right now")
    job = Job(service, str(path), app, ctx.git_hook, key.name)
    result = await ctx.git_workers.run(job, process.stdin, process.stdout)
    if result.error:
        log.warning("%s %s for %s: %s", service, app, key.name, result.error)
        console.fail(result.error)
    return result.status


def _authorize(ctx: Context, key: Key, app: str, create: bool, console: Console) -> None:
    try:
        ctx.store.app(app)
    except NotFound:
        if not create:
            raise CommandError(f"Couldn't find that app: {app}") from None
        create_named_app(Invocation(ctx, key, console), app)
        return
    if not ctx.store.can_access(key, app):
        raise CommandError(f"Couldn't find that app: {app}")
