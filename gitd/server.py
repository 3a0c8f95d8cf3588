"""The SSH server: key authentication, then one exec request per session.

Exec requests only: no shell, no forwarding, no subsystems; a pty for `run`. The
command line is split with `shlex` and is either a git service (served by
`gitd.git`) or a platform command (`gitd.commands`); nothing reaches a shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import socket
from collections.abc import Iterator

import asyncssh

from gitd import git
from gitd.commands import dispatch
from gitd.console import Console
from gitd.context import Context
from gitd.hostkeys import ensure_host_keys
from runtime.store import Key

log = logging.getLogger(__name__)

#: a command line longer than this is refused (DESIGN: one-line error, exit 1)
MAX_COMMAND = 16 * 1024
#: aes128-gcm was measured fastest in asyncssh; OpenSSH clients always offer it
CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


class GitdServer(asyncssh.SSHServer):
    """One instance per connection: remembers which registered key got in."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # Looked up on every attempt, so keys added or removed apply at once.
        found = self._ctx.store.key_by_fingerprint(key.get_fingerprint("sha256"))
        if found is None or self._conn is None:
            return False
        self._conn.set_extra_info(ouro_key=found)
        return True


class Sessions:
    """The sessions being served: a gitd that stops lets them finish first (a push,
    or the `ps:restart -a ouro` that is replacing this very gitd)."""

    def __init__(self) -> None:
        self._open = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        self._open += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._open -= 1
            if not self._open:
                self._idle.set()

    async def drained(self, timeout: float) -> None:
        """Return when no session is open, or after `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)


#: each channel's receive window. asyncssh's default, 2 MiB, costs gitd some
#: 8 MB during a large push (a window buffered, one in hand, and their copies);
#: 512 KiB costs 3 MB, with the same push time here, and still fills a
#: 80 Mbit/s link at 50 ms of round trip.
WINDOW = 512 * 1024


async def serve(ctx: Context, sock: socket.socket, sessions: Sessions) -> asyncssh.SSHAcceptor:
    """Start accepting SSH connections on an already-listening socket."""
    # Loaded once: asyncssh rebuilds its options at each login, and from paths it would
    # parse the keys again each time (the RSA key's checks cost ~100 ms a login).
    host_keys = [asyncssh.read_private_key(p) for p in ensure_host_keys(ctx.settings.ssh_dir)]

    async def handle(process: asyncssh.SSHServerProcess[bytes]) -> None:
        with sessions.serving():
            await _serve_session(process)

    async def _serve_session(process: asyncssh.SSHServerProcess[bytes]) -> None:
        status = 1
        try:
            status = await _session(ctx, process)
        except (asyncssh.Error, BrokenPipeError, ConnectionError):
            status = 255
        except Exception:  # a bug must reach the log and the client, not vanish
            log.exception("command %r failed", process.command)
            with contextlib.suppress(asyncssh.Error, OSError):
                process.stderr.write(b" !    internal error: see `logs -a ouro`\n")
        finally:
            process.exit(status)

    return await asyncssh.listen(
        sock=sock,
        server_factory=lambda: GitdServer(ctx),
        server_host_keys=host_keys,
        process_factory=handle,
        encoding=None,
        encryption_algs=list(CIPHERS),
        compression_algs=["none"],
        # `ssh -t platform run ...` gets a terminal; its bytes pass through untouched
        allow_pty=True,
        line_editor=False,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_scp=False,
        # GSSAPI would look the host name up in DNS on every login (~140 ms here)
        gss_host=None,
        keepalive_interval=30,
        window=WINDOW,
    )


async def _session(ctx: Context, process: asyncssh.SSHServerProcess[bytes]) -> int:
    console = Console(process, asyncio.get_running_loop())
    key: Key | None = process.get_extra_info("ouro_key")
    command = process.command
    if key is None:
        return console.fail("not authenticated")
    if command is None or process.subsystem:
        return console.fail("no interactive shell here: try `ssh ... help`")
    if len(command) > MAX_COMMAND:
        return console.fail(f"command line too long ({len(command)} bytes, at most {MAX_COMMAND})")
    try:
        argv = shlex.split(command)
    except ValueError:
        # Not a git request; a platform command may still take it (`run`'s shell text).
        argv = []
    if argv and argv[0] in git.SERVICES:
        return await git.serve(ctx, process, key, argv)
    return await dispatch(ctx, key, command, console)
