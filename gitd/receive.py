"""`git-receive-pack`: dulwich's handler with Ouro's ref policy and push hook.

For each ref of a push, in order:

1. policy: `main`/`master` may move (not be deleted), tags may do anything,
   other branches and other refs are refused with the reason;
2. connectivity: the new tip and everything new it refers to must be in the
   repository (dulwich has no such check: a ref could point at nothing);
3. the pack leaves quarantine (the first time a ref passed 1 and 2);
4. the push hook (`gitd.hooks`), for `main`/`master` only, streaming its log
   to the client as `remote:` lines;
5. the ref moves, if it is still where the client saw it.

With `--atomic`, every ref goes through 1-4 before any moves. A pack no ref
points into is dropped, so a refused push leaves the repository as it was.
"""

from __future__ import annotations

import logging
import socket
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from dulwich.errors import ApplyDeltaError, ChecksumMismatch, ObjectFormatException
from dulwich.object_store import DiskObjectStore
from dulwich.objects import ObjectID
from dulwich.protocol import (
    CAPABILITY_ATOMIC,
    CAPABILITY_SIDE_BAND_64K,
    SIDE_BAND_CHANNEL_PROGRESS,
    Protocol,
)
from dulwich.refs import Ref, check_ref_format
from dulwich.server import Backend, ReceivePackHandler

from gitd.hooks import PushHook
from gitd.packs import IncomingPack, receive_pack

log = logging.getLogger(__name__)

ZERO_SHA = b"0" * 40
DEPLOYABLE = (b"refs/heads/main", b"refs/heads/master")
UNPACK_ERRORS = (
    OSError,
    ChecksumMismatch,
    ApplyDeltaError,
    ObjectFormatException,
    socket.error,
    zlib.error,
    KeyError,  # a thin pack's delta base that the repository does not have
    AssertionError,  # dulwich's pack reader validates with assert
)


@dataclass(frozen=True)
class Command:
    """One line of the push: move `ref` from `old` to `new` (zeros: none)."""

    old: bytes
    new: bytes
    ref: bytes

    @property
    def deletes(self) -> bool:
        return self.new == ZERO_SHA

    @property
    def short(self) -> str:
        return self.ref.decode("utf-8", "replace").removeprefix("refs/heads/")


def ref_policy(command: Command) -> str | None:
    """Why this ref may not be pushed, or None when it may."""
    ref = command.ref
    if not ref.startswith(b"refs/") or not check_ref_format(Ref(ref)):
        return "funny refname"
    if ref.startswith(b"refs/tags/"):
        return None
    if ref in DEPLOYABLE:
        if command.deletes:
            return f"{command.short} cannot be deleted: it is the deployed branch"
        return None
    if ref.startswith(b"refs/heads/"):
        return (
            "only main or master can be pushed: deploy this branch with "
            f"`git push REMOTE {command.short}:main`"
        )
    return "only the branches main and master and tags can be pushed"


class OuroReceivePackHandler(ReceivePackHandler):
    def __init__(
        self,
        backend: Backend,
        args: list[str],
        proto: Protocol,
        app: str,
        hook: PushHook,
        pusher: str = "",
    ) -> None:
        super().__init__(backend, args, proto)
        self._app = app
        self._hook = hook
        self._pusher = pusher
        self._incoming: IncomingPack | None = None

    def _apply_pack(
        self, refs: list[tuple[ObjectID, ObjectID, Ref]]
    ) -> Iterator[tuple[bytes, bytes]]:
        commands = [Command(old, new, ref) for old, new, ref in refs]
        if any(not c.deletes for c in commands):
            store = self.repo.object_store
            if not isinstance(store, DiskObjectStore):
                raise TypeError("git repositories here are on disk")
            try:
                self._incoming = receive_pack(
                    store, self.proto.read, getattr(self.proto, "recv", None)
                )
            except UNPACK_ERRORS as e:
                log.warning("%s: unpack failed: %s", self._app, e)
                yield (b"unpack", _one_line(f"unpack failed: {e}"))
                return
        yield (b"unpack", b"ok")
        try:
            if self.has_capability(CAPABILITY_ATOMIC):
                yield from self._update_atomically(commands)
            else:
                yield from self._update_each(commands)
        finally:
            if self._incoming is not None:
                self._incoming.discard()

    def _update_each(self, commands: list[Command]) -> Iterator[tuple[bytes, bytes]]:
        checked = [(c, self._check(c)) for c in commands]
        self._store_pack_if_needed(checked)
        for command, reason in checked:
            reason = reason or self._run_hook(command) or self._move(command)
            yield (command.ref, b"ok" if reason is None else _one_line(reason))

    def _update_atomically(self, commands: list[Command]) -> Iterator[tuple[bytes, bytes]]:
        checked = [(c, self._check(c)) for c in commands]
        if all(reason is None for _, reason in checked):
            self._store_pack_if_needed(checked)
            checked = [(c, self._run_hook(c)) for c, _ in checked]
        if any(reason is not None for _, reason in checked):
            for command, reason in checked:
                yield (command.ref, _one_line(reason or "atomic push failed"))
            return
        for command, _ in checked:
            reason = self._move(command)
            yield (command.ref, b"ok" if reason is None else _one_line(reason))

    def _check(self, command: Command) -> str | None:
        """Policy, then connectivity: None when the ref may go on to the hook."""
        reason = ref_policy(command)
        if reason is not None or command.deletes:
            return reason
        incoming = self._incoming
        if incoming is None or not incoming.has(command.new):
            return f"missing object {command.new.decode()}: the push did not send it"
        missing = incoming.first_missing()
        if missing is not None:
            return f"missing object {missing.decode()}: the pack is incomplete"
        if command.ref.startswith(b"refs/heads/") and not incoming.is_commit(command.new):
            return f"{command.new.decode()} is not a commit"
        return None

    def _store_pack_if_needed(self, checked: list[tuple[Command, str | None]]) -> None:
        if self._incoming is not None and any(
            reason is None and not c.deletes for c, reason in checked
        ):
            self._incoming.store_in()

    def _run_hook(self, command: Command) -> str | None:
        if command.ref not in DEPLOYABLE or command.deletes:
            return None
        try:
            return self._hook.on_push(
                self._app,
                command.old.decode(),
                command.new.decode(),
                command.ref.decode(),
                self._log,
                self._pusher,
            )
        except Exception:  # a broken hook must refuse the push, not kill the session
            log.exception("%s: the push hook failed on %s", self._app, command.short)
            return "the deploy failed: internal error (see the platform log)"

    def _move(self, command: Command) -> str | None:
        refs = self.repo.refs
        old = ObjectID(command.old)
        if command.deletes:
            moved = refs.remove_if_equals(Ref(command.ref), old)
        else:
            moved = refs.set_if_equals(Ref(command.ref), old, ObjectID(command.new))
        return None if moved else "the ref changed during the push: fetch and try again"

    def _log(self, line: str) -> None:
        """One `remote:` line on the client's terminal, sent now."""
        if self.has_capability(CAPABILITY_SIDE_BAND_64K):
            data = line.rstrip("\n").encode("utf-8", "replace") + b"\n"
            self.proto.write_sideband(SIDE_BAND_CHANNEL_PROGRESS, data)


def _one_line(reason: str) -> bytes:
    return " ".join(reason.split()).encode("utf-8", "replace")
