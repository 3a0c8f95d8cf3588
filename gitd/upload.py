"""`git-upload-pack`: dulwich's handler, plus sending a whole pack file unchanged.

A fresh clone of a repository that holds one pack wants exactly that pack's
objects: instead of walking every tree and re-encoding every object (what
made dulwich 4x slower than git on clone), the pack file is streamed as it is
on disk. Everything else (fetches with haves, shallow clones) goes through
dulwich's object walk. Partial clone (`filter`) is not offered.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from dulwich.object_store import DiskObjectStore, MissingObjectFinder
from dulwich.objects import ObjectID
from dulwich.pack import Pack, write_pack_from_container
from dulwich.protocol import CAPABILITY_FILTER, CAPABILITY_NO_DONE, CAPABILITY_OFS_DELTA
from dulwich.refs import Ref
from dulwich.server import UploadPackHandler, _ProtocolGraphWalker

from gitd.packs import sole_pack

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class OuroUploadPackHandler(UploadPackHandler):
    def capabilities(self) -> list[bytes]:
        return [c for c in super().capabilities() if c != CAPABILITY_FILTER]

    def handle(self) -> None:
        """dulwich's `UploadPackHandler.handle`, without filters, with the whole-pack path."""
        self._processing_have_lines = True
        walker = _ProtocolGraphWalker(
            self, self.repo.object_store, self.repo.get_peeled, self.repo.refs.get_symrefs
        )
        wants: list[ObjectID] = []

        def determine_wants(
            refs: Mapping[Ref, ObjectID], depth: int | None = None
        ) -> list[ObjectID]:
            wants.extend(walker.determine_wants(refs, depth))
            return wants

        missing = self.repo.find_missing_objects(
            determine_wants, walker, self.progress, get_tagged=self.get_tagged
        )
        if not wants or missing is None:
            return
        whole = self._whole_pack(walker, missing, wants)
        object_ids = None if whole is not None else list(missing)
        if not walker.handle_done(not self.has_capability(CAPABILITY_NO_DONE), self._done_received):
            return
        self._start_pack_send_phase()
        if whole is not None:
            self.progress(f"sending the whole pack: {len(whole)} objects.\n".encode())
            self._send_file(whole)
        else:
            self.progress(f"counting objects: {len(object_ids or [])}, done.\n".encode())
            write_pack_from_container(
                self.write_pack_data,
                self.repo.object_store,
                object_ids or [],
                object_format=self.repo.object_format,
            )
        self.proto.write_pkt_line(None)

    def _whole_pack(
        self, walker: _ProtocolGraphWalker, missing: MissingObjectFinder, wants: list[ObjectID]
    ) -> Pack | None:
        """The pack to send unchanged, when the client has nothing and it holds all."""
        if walker.shallow or missing.remote_has or self.filter_spec is not None:
            return None
        # git's pack files use offset deltas, which a client may not accept.
        if not self.has_capability(CAPABILITY_OFS_DELTA):
            return None
        store = self.repo.object_store
        return sole_pack(store, wants) if isinstance(store, DiskObjectStore) else None

    def _send_file(self, pack: Pack) -> None:
        with open(pack._data_path, "rb") as f:
            while chunk := f.read(CHUNK):
                self.write_pack_data(chunk)
