"""Let app users through the directories above their slugs, and no one else.

App processes run as unprivileged users, but their slugs live under
`OURO_HOME`, which may sit in a directory they cannot enter (root's home is
0700). Rather than opening that directory to everyone, each directory on the
way gets a POSIX ACL entry granting search (`--x`) to the apps' group only.
The ACL is written as the `system.posix_acl_access` extended attribute.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import struct
from pathlib import Path

log = logging.getLogger(__name__)

_XATTR = "system.posix_acl_access"
_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_UNDEFINED_ID = 0xFFFFFFFF
_ENTRY = struct.Struct("<HHI")
_HEADER = struct.Struct("<I")
_EXECUTE = 1


class AclError(OSError):
    """The file system refused the ACL."""


def grant_search(path: Path, gid: int) -> None:
    """Give group `gid` search permission on `path` and each directory above it."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if mode & stat.S_IXOTH:
            continue  # everyone may pass already
        _add_group_entry(folder, gid, mode)


def _add_group_entry(folder: Path, gid: int, mode: int) -> None:
    entries = _read(folder, mode)
    perms = dict(entries)
    key = (_GROUP, gid)
    if perms.get(key, 0) & _EXECUTE and perms.get((_MASK, _UNDEFINED_ID), 7) & _EXECUTE:
        return
    perms[key] = perms.get(key, 0) | _EXECUTE
    group_class = 0
    for (tag, _), perm in perms.items():
        if tag in (_GROUP_OBJ, _GROUP, _USER):
            group_class |= perm
    perms[(_MASK, _UNDEFINED_ID)] = group_class
    data = _HEADER.pack(_VERSION) + b"".join(
        _ENTRY.pack(tag, perm, ident) for (tag, ident), perm in sorted(perms.items())
    )
    try:
        os.setxattr(folder, _XATTR, data)
    except OSError as e:
        raise AclError(e.errno, f"cannot set an ACL on {folder}: {e.strerror}") from None
    log.info("granted search on %s to group %d", folder, gid)


def _read(folder: Path, mode: int) -> list[tuple[tuple[int, int], int]]:
    try:
        data = os.getxattr(folder, _XATTR)
    except OSError as e:
        if e.errno != errno.ENODATA:
            raise AclError(e.errno, f"cannot read the ACL of {folder}: {e.strerror}") from None
        # No ACL yet: the mode bits are the minimal ACL.
        return [
            ((_USER_OBJ, _UNDEFINED_ID), (mode >> 6) & 7),
            ((_GROUP_OBJ, _UNDEFINED_ID), (mode >> 3) & 7),
            ((_OTHER, _UNDEFINED_ID), mode & 7),
        ]
    entries = []
    for offset in range(_HEADER.size, len(data), _ENTRY.size):
        tag, perm, ident = _ENTRY.unpack_from(data, offset)
        entries.append(((tag, ident), perm))
    return entries
