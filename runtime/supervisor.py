"""The supervisor: owns the state directory, the listening sockets and every child.

In the shape of gunicorn's arbiter: signal handlers only queue (asyncio's
`add_signal_handler` runs them on the loop), children are reaped as their
pidfds become readable, a crashed child is restarted at once the first time and
then with exponential back-off, and stopping is SIGTERM to every process group,
then SIGKILL after the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from runtime.control import ControlServer, Message, Reply
from runtime.logbus import LogBus
from runtime.names import SYSTEM_APP
from runtime.process import Child, ProcessSpec, State
from runtime.settings import Settings
from runtime.sockets import bind_tcp
from runtime.store import Store
from runtime.version import commit, version_string

log = logging.getLogger(__name__)

#: restart delays after consecutive crashes: at once, then doubling up to the cap
BACKOFF_CAP = 60.0
#: a process that stayed up this long has its crash count forgotten
STABLE_AFTER = 60.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Slot:
    """One wanted process and what became of it."""

    spec: ProcessSpec
    state: State = State.STARTING
    child: Child | None = None
    crashes: int = 0
    since: float = 0.0
    restart: asyncio.TimerHandle | None = None


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._slots: dict[tuple[str, str], Slot] = {}
        self._stopping = asyncio.Event()
        self._bus = LogBus(settings.logs_dir)
        self._sockets: dict[str, socket.socket] = {}
        self._control = ControlServer(settings.control_socket, {"status": self._op_status})

    async def run(self) -> int:
        """Run until SIGINT or SIGTERM; returns the exit status."""
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._stopping.set)
        self._prepare_home()
        self._bind()
        await self._control.start()
        for spec in self._system_specs():
            self._start(spec)
        self._write_status()
        self._bus.emit(SYSTEM_APP, "ouro[api]", f"Platform started: {version_string()}")
        await self._stopping.wait()
        await self._shutdown()
        return 0

    # -- the home and the sockets --------------------------------------------

    def _prepare_home(self) -> None:
        s = self.settings
        for folder in (s.home, s.repos_dir, s.run_dir, s.logs_dir, s.ssh_dir):
            folder.mkdir(parents=True, exist_ok=True)
        s.run_dir.chmod(0o700)
        s.ssh_dir.chmod(0o700)
        Store(s.db_path).close()  # creates or migrates the schema before any child opens it
        from gitd.hostkeys import ensure_host_keys  # the supervisor makes them once

        ensure_host_keys(s.ssh_dir)

    def _bind(self) -> None:
        s = self.settings
        self._sockets["ssh"] = bind_tcp(s.bind, s.ssh_port)
        self._sockets["http"] = bind_tcp(s.bind, s.http_port)
        self.settings = s.with_ports(
            self._sockets["ssh"].getsockname()[1], self._sockets["http"].getsockname()[1]
        )

    def _write_status(self) -> None:
        s = self.settings
        status = {
            "pid": os.getpid(),
            "home": str(s.home),
            "bind": s.bind,
            "ssh_port": s.ssh_port,
            "http_port": s.http_port,
            "version": version_string(),
            "commit": commit(),
            "started_at": time.time(),
        }
        tmp = s.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=2) + "\n")
        tmp.replace(s.status_file)

    # -- the platform's own processes ----------------------------------------

    def _system_specs(self) -> list[ProcessSpec]:
        env = _base_env() | self.settings.to_env()
        gitd = ProcessSpec(
            app=SYSTEM_APP,
            type="gitd",
            index=1,
            argv=(sys.executable, "-m", "gitd"),
            env=env,
            cwd=self.settings.home,
            sockets=(self._sockets["ssh"],),
        )
        return [gitd]

    # -- spawn, reap, restart ------------------------------------------------

    def _start(self, spec: ProcessSpec) -> None:
        key = (spec.app, spec.name)
        slot = self._slots.get(key) or Slot(spec)
        self._slots[key] = slot
        slot.restart = None
        source = f"ouro[{spec.name}]"
        self._bus.emit(spec.app, source, f"Starting process with command `{' '.join(spec.argv)}`")
        try:
            slot.child = Child(
                spec,
                on_line=lambda line: self._bus.emit(spec.app, f"app[{spec.name}]", line),
                on_exit=self._reaped,
            )
        except OSError as e:
            self._bus.emit(spec.app, source, f"Failed to start: {e}")
            self._crashed(slot)
            return
        slot.state, slot.since = State.UP, time.time()
        self._bus.emit(spec.app, source, "State changed from starting to up")

    def _reaped(self, child: Child) -> None:
        slot = self._slots.get((child.spec.app, child.spec.name))
        source = f"ouro[{child.spec.name}]"
        self._bus.emit(child.spec.app, source, f"Process exited with status {child.exit_status}")
        if slot is None or slot.child is not child:
            return
        slot.child = None
        if self._stopping.is_set():
            slot.state = State.DOWN
            return
        if time.time() - slot.since > STABLE_AFTER:
            slot.crashes = 0
        self._crashed(slot)

    def _crashed(self, slot: Slot) -> None:
        delay = 0.0 if slot.crashes == 0 else min(BACKOFF_CAP, 2.0 ** (slot.crashes - 1))
        slot.crashes += 1
        slot.state, slot.since = State.CRASHED, time.time()
        name = slot.spec.name
        self._bus.emit(slot.spec.app, f"ouro[{name}]", "State changed from up to crashed")
        loop = asyncio.get_running_loop()
        slot.restart = loop.call_later(delay, self._start, slot.spec)

    async def _shutdown(self) -> None:
        for slot in self._slots.values():
            if slot.restart is not None:
                slot.restart.cancel()
        children = [slot.child for slot in self._slots.values() if slot.child is not None]
        for child in children:
            child.signal(signal.SIGTERM)
        waiting = [child.exited for child in children]
        if waiting:
            _, pending = await asyncio.wait(waiting, timeout=self.settings.grace_period)
            for child in children:
                if not child.exited.done():
                    child.signal(signal.SIGKILL)
            if pending:
                await asyncio.wait(pending, timeout=5.0)
        await self._control.close()
        for sock in self._sockets.values():
            sock.close()
        self._bus.close()
        with contextlib.suppress(FileNotFoundError):
            self.settings.status_file.unlink()

    # -- control ops ---------------------------------------------------------

    async def _op_status(self, message: Message, reply: Reply) -> Message:
        processes: list[dict[str, Any]] = [
            {
                "app": slot.spec.app,
                "name": slot.spec.name,
                "state": str(slot.state),
                "pid": slot.child.pid if slot.child else None,
                "since": slot.since,
                "command": " ".join(slot.spec.argv),
            }
            for slot in self._slots.values()
        ]
        return {
            "ok": True,
            "version": version_string(),
            "ssh_port": self.settings.ssh_port,
            "http_port": self.settings.http_port,
            "processes": processes,
        }


def _base_env() -> dict[str, str]:
    """What the platform's own processes inherit: enough to find Python and its packages."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TZ")
    return {k: os.environ[k] for k in keep if k in os.environ}
