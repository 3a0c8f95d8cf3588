"""Listening sockets owned by the supervisor and handed to children by fd.

The handoff is systemd's: the child finds its sockets at fd 3, 4, ... and
`LISTEN_FDS` says how many, `LISTEN_PID` whom they are for.
"""

from __future__ import annotations

import os
import socket

LISTEN_FDS_START = 3


class SocketError(OSError):
    """A listening socket could not be bound or was not handed over."""


def bind_tcp(host: str, port: int, backlog: int = 1024) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise SocketError(e.errno, f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(backlog)
    sock.set_inheritable(False)
    return sock


def inherited_sockets() -> list[socket.socket]:
    """The listening sockets passed to this process, in order (empty if none)."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    count = int(os.environ.get("LISTEN_FDS", "0"))
    sockets = [socket.socket(fileno=LISTEN_FDS_START + i) for i in range(count)]
    for name in ("LISTEN_PID", "LISTEN_FDS"):
        os.environ.pop(name, None)
    return sockets
