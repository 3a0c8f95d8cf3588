"""The git bridge: `git-receive-pack` / `git-upload-pack` over an SSH session.

dulwich serves the protocol in a worker thread (it blocks); two explicit copy
loops move bytes between the SSH channel and the worker: channel stdin -> pipe
-> worker, and worker -> `call_soon_threadsafe` -> channel stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import cast

import asyncssh
from dulwich.protocol import Protocol
from dulwich.repo import Repo
from dulwich.server import BackendRepo, DictBackend, ReceivePackHandler, UploadPackHandler

from gitd.commands.apps import create_named_app
from gitd.commands.base import CommandError, Invocation
from gitd.console import Console
from gitd.context import Context
from gitd.repos import RepoError, app_from_path, ensure_repo, repo_path
from runtime.store import Key, NotFound

SERVICES = {"git-receive-pack": ReceivePackHandler, "git-upload-pack": UploadPackHandler}


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
        _authorize(ctx, key, app, create=service == "git-receive-pack", console=console)
    except (RepoError, CommandError) as e:
        return console.fail(str(e))
    ensure_repo(path)
    return await _run_handler(service, str(path), process)


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


async def _run_handler(service: str, path: str, process: asyncssh.SSHServerProcess[bytes]) -> int:
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb", buffering=0)

    def write(data: bytes) -> None:
        loop.call_soon_threadsafe(process.stdout.write, data)

    feed = asyncio.create_task(_copy_stdin(process, write_fd))
    try:
        await asyncio.to_thread(_handle, service, path, reader.read, write)
    finally:
        feed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feed
        reader.close()
    return 0


async def _copy_stdin(process: asyncssh.SSHServerProcess[bytes], fd: int) -> None:
    loop = asyncio.get_running_loop()
    try:
        while data := await process.stdin.read(65536):
            await loop.run_in_executor(None, _write_all, fd, data)
    except (asyncssh.Error, BrokenPipeError):
        pass
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _handle(
    service: str, path: str, read: Callable[[int], bytes], write: Callable[[bytes], None]
) -> None:
    repo = Repo(path)
    try:
        backend = DictBackend({"/": cast(BackendRepo, repo)})
        handler = SERVICES[service](backend, ["/"], Protocol(read, write))
        handler.handle()
    finally:
        repo.close()
