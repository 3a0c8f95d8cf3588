"""Registering SSH public keys: the identities that may use the platform."""

from __future__ import annotations

import asyncssh

from runtime.names import check_key_name
from runtime.store import Store

MAX_PUBLIC_KEY = 16 * 1024


def parse_public_key(text: str) -> tuple[str, str]:
    """`(fingerprint, normalised OpenSSH line)` of one public key; ValueError if not one."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) != 1:
        raise ValueError("expected exactly one public key line")
    try:
        key = asyncssh.import_public_key(lines[0])
    except (asyncssh.KeyImportError, ValueError) as e:
        raise ValueError(f"not an SSH public key ({e})") from None
    return key.get_fingerprint("sha256"), key.export_public_key().decode().strip()


def register_key(store: Store, name: str, text: str, admin: bool = False) -> str:
    """Validate and store a key; returns its fingerprint. Raises ValueError or Conflict."""
    check_key_name(name)
    fingerprint, public_key = parse_public_key(text)
    store.add_key(name, fingerprint, public_key, admin)
    return fingerprint
