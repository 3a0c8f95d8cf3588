"""Packs in and out of a repository, as `git index-pack` and `pack-objects` would.

Receiving: the pack is copied and indexed into a temporary file (quarantine)
and only moved into `objects/pack` once a ref is going to point into it. While
indexing, every object is inflated exactly once (its id needs it); the commits,
trees and tags among them have their references recorded then, so that the
connectivity check (`IncomingPack.first_missing`) needs no second inflation:
a new object's references must be in the pack or already in the repository
(present objects are trusted by presence, as `git receive-pack` does). dulwich's
own `add_thin_pack` re-inflates every object after storing the pack and has no
connectivity check; both are why this module exists.

Sending: a clone that wants objects all held by the repository's only pack,
and has nothing, gets that pack file byte for byte (`sole_pack`).
"""

from __future__ import annotations

import binascii
import contextlib
import logging
import mmap
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dulwich.file import GitFile
from dulwich.object_store import PACK_MODE, DiskObjectStore
from dulwich.objects import Commit, ObjectID, ShaFile, Tag, parse_tree
from dulwich.pack import (
    Pack,
    PackData,
    PackIndexEntry,
    PackIndexer,
    PackStreamCopier,
    extend_pack,
    iter_sha1,
    write_pack_index,
)

from gitd.worker import TMP_PREFIX

log = logging.getLogger(__name__)

COMMIT, TREE, TAG = Commit.type_num, 2, Tag.type_num
#: a tree entry of this mode is a submodule commit, not an object of this repository
GITLINK_MODE = 0o160000
#: objects indexed between two releases of the pack's mapped pages (`_EdgeIndexer`)
RELEASE_EVERY = 256


class _EdgeIndexer(PackIndexer):
    """Index entries, and on the way the references of each commit, tree and tag."""

    def __init__(self, *args: Any, sha_len: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sha_len = sha_len
        self._indexed = 0
        self.edges: set[bytes] = set()
        self.commits: set[bytes] = set()

    def _result(self, unpacked: Any) -> PackIndexEntry:
        entry = super()._result(unpacked)
        self._indexed += 1
        if self._indexed % RELEASE_EVERY == 0 and isinstance(self._contents, mmap.mmap):
            # The pack is read through a mapping (reads cost 6% more CPU), whose pages
            # count in this process's memory once touched: the whole pack by the end
            # (50 MB for 50 MB). Let them go now and then; they stay in the page cache,
            # and a delta base needed again is a minor fault away.
            self._contents.madvise(mmap.MADV_DONTNEED)
        kind = unpacked.obj_type_num
        if kind == TREE:
            raw = b"".join(unpacked.obj_chunks)
            entries = parse_tree(raw, self._sha_len)
            self.edges.update(sha for _, mode, sha in entries if mode != GITLINK_MODE)
        elif kind in (COMMIT, TAG):
            obj = ShaFile.from_raw_chunks(kind, unpacked.obj_chunks)
            if isinstance(obj, Commit):
                self.commits.add(binascii.hexlify(entry[0]))
                self.edges.add(obj.tree)
                self.edges.update(obj.parents)
            elif isinstance(obj, Tag):
                self.edges.add(obj.object[1])
        return entry


@dataclass
class IncomingPack:
    """A received, indexed pack waiting in quarantine; `store()` makes it visible."""

    store: DiskObjectStore
    path: str
    pack_sha: bytes
    entries: list[PackIndexEntry]
    edges: set[bytes]
    commits: set[bytes]
    objects: set[bytes] = field(default_factory=set)
    stored: bool = False
    _missing: bytes | None = None

    def __post_init__(self) -> None:
        self.objects = {binascii.hexlify(entry[0]) for entry in self.entries}

    def has(self, sha: bytes) -> bool:
        """Whether the object is in this pack or already in the repository."""
        return sha in self.objects or ObjectID(sha) in self.store

    def is_commit(self, sha: bytes) -> bool:
        if sha in self.objects:
            return sha in self.commits
        return self.store.get_raw(ObjectID(sha))[0] == COMMIT

    def first_missing(self) -> bytes | None:
        """An object some new object refers to that is nowhere, or None when complete."""
        if self._missing is None:
            self._missing = next(
                (sha for sha in self.edges - self.objects if ObjectID(sha) not in self.store),
                b"",
            )
        return self._missing or None

    def store_in(self) -> None:
        """Move the pack into `objects/pack`: its objects become part of the repository."""
        if self.stored:
            return
        self.entries.sort()
        name = "pack-" + iter_sha1(e[0] for e in self.entries).decode()
        base = os.path.join(self.store.pack_dir, name)
        if os.path.exists(base + ".idx"):  # the very same pack is already there
            self.discard()
        else:
            os.rename(self.path, base + ".pack")
            # The index last: a pack without one is invisible to git and dulwich.
            with GitFile(base + ".idx", "wb", mask=PACK_MODE) as index:
                write_pack_index(
                    index, self.entries, self.pack_sha, version=self.store.pack_index_version
                )
        self.stored = True

    def discard(self) -> None:
        """Drop the quarantined pack (nothing points into it)."""
        if not self.stored:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def receive_pack(
    store: DiskObjectStore,
    read_all: Callable[[int], bytes],
    read_some: Callable[[int], bytes] | None,
) -> IncomingPack:
    """Read a (thin) pack from the client into quarantine; nothing is left on failure."""
    fd, path = tempfile.mkstemp(dir=store.path, prefix=f"{TMP_PREFIX}{os.getpid()}_")
    try:
        with os.fdopen(fd, "w+b") as f:
            os.chmod(path, PACK_MODE)
            hash_func = store.object_format.hash_func
            indexer = _EdgeIndexer(
                f, hash_func, resolve_ext_ref=store.get_raw,
                sha_len=store.object_format.oid_length,
            )
            copier = PackStreamCopier(
                hash_func, read_all, read_some, f, delta_iter=indexer  # type: ignore[arg-type]
            )
            copier.verify()
            f.flush()
            f.seek(0)
            with PackData(path, file=f, object_format=store.object_format) as data:
                indexer.set_pack_data(data)
                entries = list(indexer)
            # Deltas against objects the client did not send (a thin pack) get
            # their bases appended, so the stored pack stands on its own.
            pack_sha, extra = extend_pack(
                f,
                set(indexer.ext_refs()),
                get_raw=store.get_raw,
                object_format=store.object_format,
                compression_level=store.pack_compression_level,
            )
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise
    return IncomingPack(
        store, path, pack_sha, [*entries, *extra], indexer.edges, indexer.commits
    )


def sole_pack(store: DiskObjectStore, wants: Iterable[bytes]) -> Pack | None:
    """The repository's only pack when it holds everything and `wants` are all in it.

    Every ref tip of a repository this server wrote is connected (checked on
    receive), so with one pack, no loose objects and every want inside it, the
    pack holds the whole history the client asks for.
    """
    packs = store.packs
    if len(packs) != 1 or _has_loose_objects(os.fspath(store.path)):
        return None
    pack = packs[0]
    if all(ObjectID(sha) in pack for sha in wants):
        return pack
    return None


def _has_loose_objects(objects_dir: str) -> bool:
    for name in os.listdir(objects_dir):
        if len(name) == 2 and os.listdir(os.path.join(objects_dir, name)):
            return True
    return False
