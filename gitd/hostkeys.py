"""Host keys: generated once under `OURO_HOME/ssh`, then reused for ever.

Clients pin the host key on first contact; regenerating it would make every
`git push` fail with a changed-host-key warning.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh

HOST_KEY_ALGORITHMS = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa")


def host_key_path(ssh_dir: Path, algorithm: str) -> Path:
    return ssh_dir / f"ssh_host_{algorithm.split('-')[-1]}_key"


def ensure_host_keys(ssh_dir: Path) -> list[Path]:
    """Create the missing host keys (mode 0600) and return every key's path."""
    ssh_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for algorithm in HOST_KEY_ALGORITHMS:
        path = host_key_path(ssh_dir, algorithm)
        if not path.exists():
            if algorithm == "ssh-rsa":
                key = asyncssh.generate_private_key(algorithm, key_size=3072)
            else:
                key = asyncssh.generate_private_key(algorithm)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(key.export_private_key())
            tmp.replace(path)
            path.with_suffix(".pub").write_bytes(key.export_public_key())
        paths.append(path)
    return paths
