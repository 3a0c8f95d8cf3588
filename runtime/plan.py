"""What an app runs: a `Plan` made from its current release, and the specs of its processes.

A process gets the release's config vars, `PORT`, `DYNO=TYPE.N`, `HOME` = the
slug directory as working directory, and the slug's `.profile.d/*.sh` sourced
before its command, which is shell text run by `/bin/sh -c` (DESIGN §1).
"""

from __future__ import annotations

import shlex
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runtime.names import SYSTEM_APP
from runtime.process import ProcessSpec
from runtime.users import AppUser

#: sources the slug's profile scripts, then runs the command given as `$0`;
#: the command travels as an argument, never formatted into this text
LAUNCHER = 'for f in "$HOME"/.profile.d/*.sh; do [ -r "$f" ] && . "$f"; done; exec /bin/sh -c "$0"'
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
WEB = "web"
RELEASE_PHASE = "release"


@dataclass(frozen=True)
class Plan:
    """An app's release as the runtime needs it."""

    app: str
    version: int
    slug_dir: Path
    process_types: dict[str, str]
    config: dict[str, str]
    user: AppUser | None = None
    #: platform processes run a plain argv with the platform's environment
    system: bool = False
    base_env: dict[str, str] = field(default_factory=dict)
    sockets: Mapping[str, socket.socket] = field(default_factory=dict)
    #: platform processes that do not run as the platform's user (postgres)
    type_users: Mapping[str, AppUser] = field(default_factory=dict)
    #: types of which two must never run at once (a second scheduler would run every
    #: job twice; a second postgres finds its data directory locked)
    exclusive_types: frozenset[str] = frozenset()
    #: types that count as up only once they say so (`Formation.ready`), each with the
    #: line that says it, or "" when the signal comes another way (a router's route ack)
    ready_lines: Mapping[str, str] = field(default_factory=dict)
    #: types not built from the release (an add-on's server, such as postgres): a
    #: deploy leaves them running unless their command changed
    kept_types: frozenset[str] = frozenset()

    @property
    def runnable_types(self) -> list[str]:
        """Process types a formation may scale (the release phase is not one)."""
        return [t for t in self.process_types if t != RELEASE_PHASE]

    def spec(
        self, type_: str, index: int, port: int | None, command: str | None = None
    ) -> ProcessSpec:
        """The spec of `TYPE.N`; `command` overrides the Procfile's (one-offs)."""
        line = command if command is not None else self.process_types[type_]
        name = f"{type_}.{index}"
        sock = self.sockets.get(type_)
        if self.system:
            argv = tuple(shlex.split(line))
            env = dict(self.base_env)
        else:
            argv = ("/bin/sh", "-c", LAUNCHER, line)
            env = {
                "PATH": DEFAULT_PATH,
                "LANG": "C.UTF-8",
                "USER": self.app,
                "LOGNAME": self.app,
                **self.config,
                "HOME": str(self.slug_dir),
            }
        env.update(DYNO=name, OURO_RELEASE=f"v{self.version}")
        if port is not None:
            env["PORT"] = str(port)
        return ProcessSpec(
            app=self.app,
            type=type_,
            index=index,
            argv=argv,
            env=env,
            cwd=self.slug_dir,
            sockets=(sock,) if sock is not None else (),
            user=self.type_users.get(type_, self.user),
        )


def formation_of(
    app: str, process_types: Mapping[str, str], stored: Mapping[str, int]
) -> dict[str, int]:
    """What an app runs: its stored formation, and for a type never scaled web=1 and
    the rest 0 (as Heroku), except the platform itself, which runs one of each."""
    default = {WEB: 1}
    return {
        type_: stored.get(type_, 1 if app == SYSTEM_APP else default.get(type_, 0))
        for type_ in process_types
        if type_ != RELEASE_PHASE
    }


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
