"""One app's running processes, kept equal to its formation.

A deploy starts a whole new generation beside the old one; web processes must
listen on their `PORT` before the router is switched to them, and only then
does the old generation get SIGTERM. A crashed process is restarted at once
the first time, then with exponential back-off; a new release resets that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import signal
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from runtime.logbus import LogBus
from runtime.plan import WEB, Plan, free_port
from runtime.process import Child, ProcessSpec, State

log = logging.getLogger(__name__)

BACKOFF_CAP = 60.0
#: a process that stayed up this long has its crash count forgotten
STABLE_AFTER = 60.0
PROBE_INTERVAL = 0.05


class DeployError(Exception):
    """A new generation did not come up; the message says which process and why."""


@dataclass
class Slot:
    """One wanted process `TYPE.N` and what became of it."""

    spec: ProcessSpec
    port: int | None
    state: State = State.STARTING
    child: Child | None = None
    crashes: int = 0
    since: float = 0.0
    restart: asyncio.TimerHandle | None = None
    wanted: bool = True
    #: resolves to None once the process listens (or says it is ready), or to why not
    boot: asyncio.Future[str | None] | None = None
    #: the process counts as up only once `Formation.ready` hears from it
    gated: bool = False
    #: the output line by which it says so, if it says so in its output
    ready_line: str = ""

    @property
    def name(self) -> str:
        return self.spec.name


class Formation:
    """The processes of one app (or of the platform itself)."""

    def __init__(
        self,
        plan: Plan,
        bus: LogBus,
        on_change: Callable[[], None],
        settle: Callable[[], Awaitable[None]],
        spawned: Callable[[], None],
        boot_timeout: float,
        grace_period: float,
    ) -> None:
        self.plan = plan
        self.slots: dict[str, Slot] = {}
        self._bus = bus
        self._on_change = on_change
        self._settle = settle
        self._spawned = spawned
        self._boot_timeout = boot_timeout
        self._grace = grace_period
        self._retiring: set[Child] = set()
        #: every child alive now: current, still booting and retiring generations
        self.live: set[Child] = set()
        self._tasks: set[asyncio.Future[None]] = set()
        #: pid -> resolved when that gated process says it is ready
        self._gates: dict[int, asyncio.Future[None]] = {}

    # -- reading ------------------------------------------------------------

    def backends(self) -> list[tuple[str, int]]:
        """`(dyno, port)` of the web processes that answer now."""
        return [
            (s.name, s.port)
            for s in self.slots.values()
            if s.spec.type == WEB and s.state is State.UP and s.port is not None
        ]

    # -- deploy ------------------------------------------------------------

    async def deploy(self, plan: Plan, quantities: dict[str, int]) -> None:
        """Start `plan`'s generation, switch to it once its web processes listen
        (and its gated ones say they are ready), then stop the old one. Raises
        DeployError (old generation untouched). An exclusive type starts only once
        its predecessor exited; a kept type with an unchanged command goes on."""
        kept = {name: slot for name, slot in self.slots.items() if _carries_over(plan, slot)}
        later = [t for t in plan.runnable_types if t in plan.exclusive_types]
        fresh = {
            slot.name: slot
            for type_ in plan.runnable_types
            if type_ not in later
            for slot in self._new_slots(plan, type_, range(1, quantities.get(type_, 0) + 1))
        }
        for slot in fresh.values():
            self._spawn(slot)
        try:
            await self._await_boot(fresh.values())
        except DeployError:
            for slot in fresh.values():
                slot.wanted = False
                self._retire(slot)
            raise
        old, self.slots, self.plan = self.slots, {**fresh, **kept}, plan
        self._on_change()
        await self._settle()
        for name, slot in old.items():
            if name not in kept:
                slot.wanted = False
                self._retire(slot)
        for type_ in later:
            for slot in self._new_slots(plan, type_, range(1, quantities.get(type_, 0) + 1)):
                if slot.name in kept:
                    continue
                previous = old.get(slot.name)
                if previous is not None and previous.child is not None:
                    await previous.child.exited
                self.slots[slot.name] = slot
                self._spawn(slot)

    async def _await_boot(self, slots: Iterable[Slot]) -> None:
        webs = [slot for slot in slots if slot.boot is not None]
        if not webs:
            return
        results = await asyncio.gather(
            *(slot.boot for slot in webs if slot.boot), return_exceptions=True
        )
        for slot, result in zip(webs, results, strict=True):
            if isinstance(result, BaseException):
                raise DeployError(f"{slot.name} failed to boot: {result}")
            if result is not None:
                raise DeployError(f"{slot.name} {result}")

    # -- scale, restart, stop, kill -------------------------------------------

    def scale(self, quantities: dict[str, int]) -> None:
        for type_, wanted in quantities.items():
            have = sorted(
                (s for s in self.slots.values() if s.spec.type == type_),
                key=lambda s: s.spec.index,
            )
            surplus = have[wanted:]
            for slot in surplus:
                slot.wanted = False
                del self.slots[slot.name]
            if surplus:
                task = asyncio.ensure_future(self._retire_settled(surplus))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            missing = range(len(have) + 1, wanted + 1)
            for slot in self._new_slots(self.plan, type_, missing):
                self.slots[slot.name] = slot
                self._spawn(slot)
        self._on_change()

    async def restart(self, names: list[str]) -> None:
        """Replace each named process by a new one, web ones without a gap; an
        exclusive one (the scheduler, the database server) only once the old is gone."""
        for name in names:
            old = self.slots[name]
            (new,) = self._new_slots(self.plan, old.spec.type, [old.spec.index])
            child = old.child
            if old.spec.type in self.plan.exclusive_types and child is not None:
                old.wanted = False
                self._retire(old)
                await child.exited
            self._spawn(new)
            with contextlib.suppress(DeployError):
                await self._await_boot([new])
            old.wanted = False
            self.slots[name] = new
            self._on_change()
            await self._settle()
            self._retire(old)

    async def _retire_settled(self, slots: list[Slot]) -> None:
        """Stop processes the router no longer sends requests to."""
        await self._settle()
        for slot in slots:
            self._retire(slot)

    def stop(self, names: list[str]) -> None:
        for name in names:
            slot = self.slots[name]
            slot.wanted = False
            self._retire(slot)
            slot.state, slot.since = State.DOWN, time.time()
        self._on_change()

    def ready(self, pid: int) -> None:
        """Process `pid` says it serves: a gated process counts as up from now."""
        gate = self._gates.pop(pid, None)
        if gate is not None and not gate.done():
            gate.set_result(None)

    def kill(self, name: str, signum: int) -> None:
        child = self.slots[name].child
        if child is not None:
            child.signal(signum)

    # -- re-exec ----------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A generation is booting or retiring: not a moment to hand over."""
        booting = any(s.boot is not None and not s.boot.done() for s in self.slots.values())
        return booting or bool(self._retiring)

    def export(self) -> list[dict[str, Any]]:
        """The slots as data for the next supervisor of this process; stops watching them."""
        records = []
        for slot in self.slots.values():
            child = slot.child
            if child is not None:
                child.unwatch()
            if slot.restart is not None:
                slot.restart.cancel()
            records.append(
                {
                    "type": slot.spec.type,
                    "index": slot.spec.index,
                    "port": slot.port,
                    "state": str(slot.state),
                    "since": slot.since,
                    "crashes": slot.crashes,
                    "wanted": slot.wanted,
                    "pid": child.pid if child else None,
                    "start": child.start_time if child else None,
                    "out": child.out_fd if child else None,
                }
            )
        return records

    def adopt(self, records: list[dict[str, Any]]) -> None:
        """Watch again what `export` handed over: the same processes, not restarted."""
        for record in records:
            port = record["port"]
            spec = self.plan.spec(record["type"], record["index"], port)
            slot = Slot(spec, port, State(record["state"]), crashes=record["crashes"])
            slot.since, slot.wanted = record["since"], record["wanted"]
            self.slots[slot.name] = slot
            if record["pid"]:
                on_line, on_exit = self._callbacks(slot)
                slot.child = Child.adopt(
                    spec, record["pid"], record["start"], record["out"], on_line, on_exit
                )
                self.live.add(slot.child)
            elif slot.wanted:
                slot.restart = asyncio.get_running_loop().call_later(0, self._respawn, slot)

    async def shutdown(self) -> None:
        """Stop everything: SIGTERM, then SIGKILL after the grace period."""
        for slot in self.slots.values():
            slot.wanted = False
            self._retire(slot)
        await self.wait_retired()

    async def wait_retired(self) -> None:
        while self._retiring:
            await asyncio.wait({c.exited for c in self._retiring})

    # -- spawn, reap, restart ---------------------------------------------

    def _new_slots(self, plan: Plan, type_: str, indexes: Iterable[int]) -> list[Slot]:
        slots = []
        for index in indexes:
            port = free_port() if type_ == WEB and not plan.system else None
            slot = Slot(plan.spec(type_, index, port), port)
            if type_ in plan.ready_lines:
                slot.gated, slot.ready_line = True, plan.ready_lines[type_]
            slots.append(slot)
        return slots

    def _spawn(self, slot: Slot) -> None:
        spec, source = slot.spec, f"ouro[{slot.name}]"
        slot.restart = None
        slot.state, slot.since = State.STARTING, time.time()
        # an app's command is its Procfile line, the last word of its shell's argv
        command = shlex.join(spec.argv) if self.plan.system else spec.argv[-1]
        self._bus.emit(spec.app, source, f"Starting process with command `{command}`")
        try:
            on_line, on_exit = self._callbacks(slot)
            slot.child = Child(spec, on_line=on_line, on_exit=on_exit)
        except OSError as e:
            self._bus.emit(spec.app, source, f"Failed to start: {e.strerror or e}")
            self._crashed(slot)
            return
        self.live.add(slot.child)
        self._spawned()
        if slot.gated:
            slot.boot = asyncio.ensure_future(self._gate(slot, slot.child))
        elif slot.port is None:
            self._up(slot)
        else:
            slot.boot = asyncio.ensure_future(self._boot(slot, slot.child, slot.port))

    def _callbacks(self, slot: Slot) -> tuple[Callable[[str], None], Callable[[Child], None]]:
        app, source = slot.spec.app, f"app[{slot.name}]"

        def on_line(line: str) -> None:
            self._bus.emit(app, source, line)
            if slot.ready_line and slot.child and line.startswith(slot.ready_line):
                self.ready(slot.child.pid)

        return on_line, lambda child: self._reaped(slot, child)

    async def _boot(self, slot: Slot, child: Child, port: int) -> str | None:
        """Wait for `child` to listen on `port`; returns None, or why it did not."""
        deadline = time.monotonic() + self._boot_timeout
        while slot.child is child and not child.exited.done():
            if await _listening(port):
                self._up(slot)
                return None
            if time.monotonic() > deadline:
                self._bus.emit(
                    slot.spec.app,
                    f"ouro[{slot.name}]",
                    f"Error R10 (Boot timeout) -> {slot.name} failed to bind to $PORT within"
                    f" {self._boot_timeout:g} seconds of launch",
                )
                child.signal(signal.SIGKILL)
                return "did not listen on $PORT in time"
            await asyncio.sleep(PROBE_INTERVAL)
        return "crashed during boot"

    async def _gate(self, slot: Slot, child: Child) -> str | None:
        """Wait for `child` to say it is ready; returns None, or why it did not."""
        gate = self._gates[child.pid] = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait(
                {gate, child.exited}, timeout=self._boot_timeout, return_when=FIRST_COMPLETED
            )
        finally:
            self._gates.pop(child.pid, None)
        if gate.done() and slot.child is child:
            self._up(slot)
            return None
        if child.exited.done():
            return "exited before it was ready"
        child.signal(signal.SIGKILL)
        return f"was not ready within {self._boot_timeout:g} seconds"

    def _up(self, slot: Slot) -> None:
        slot.state, slot.since = State.UP, time.time()
        self._bus.emit(slot.spec.app, f"ouro[{slot.name}]", "State changed from starting to up")
        self._on_change()

    def _reaped(self, slot: Slot, child: Child) -> None:
        self._retiring.discard(child)
        self.live.discard(child)
        app, source = slot.spec.app, f"ouro[{slot.name}]"
        self._bus.emit(app, source, f"Process exited with status {child.exit_status}")
        if slot.child is not child:
            return
        slot.child = None
        if not slot.wanted:
            if slot.state is not State.DOWN:
                slot.state, slot.since = State.DOWN, time.time()
            return
        was_up = slot.state is State.UP
        if was_up and time.time() - slot.since > STABLE_AFTER:
            slot.crashes = 0
        self._bus.emit(app, source, f"State changed from {slot.state} to crashed")
        self._crashed(slot)
        if was_up:
            self._on_change()

    def _crashed(self, slot: Slot) -> None:
        delay = 0.0 if slot.crashes == 0 else min(BACKOFF_CAP, 2.0 ** (slot.crashes - 1))
        slot.crashes += 1
        slot.state, slot.since = State.CRASHED, time.time()
        slot.restart = asyncio.get_running_loop().call_later(delay, self._respawn, slot)

    def _respawn(self, slot: Slot) -> None:
        if slot.wanted:
            self._spawn(slot)

    def _retire(self, slot: Slot) -> None:
        if slot.restart is not None:
            slot.restart.cancel()
            slot.restart = None
        child = slot.child
        if child is None or child.exited.done():
            return
        self._retiring.add(child)
        child.signal(signal.SIGTERM)
        asyncio.get_running_loop().call_later(self._grace, child.signal, signal.SIGKILL)


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _carries_over(plan: Plan, slot: Slot) -> bool:
    """A kept type's process that `plan` would start with the same command."""
    type_ = slot.spec.type
    if type_ not in plan.kept_types or type_ not in plan.process_types:
        return False
    return plan.spec(type_, slot.spec.index, slot.port).argv == slot.spec.argv
