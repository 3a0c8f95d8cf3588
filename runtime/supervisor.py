"""The supervisor: owns the state directory, the listening sockets and every process.

In the shape of gunicorn's arbiter: signal handlers only queue (asyncio's
`add_signal_handler` runs them on the loop), children are reaped as their
pidfds become readable, and each app's processes are kept equal to its
formation by a `Formation`. Stopping is SIGTERM to every process group, then
SIGKILL after the grace period. Everything else talks to it over the control
socket (`runtime.control`); the ops are in `runtime.ops`.
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime.acl import AclError, grant_search
from runtime.control import Connection, ControlServer, Handler
from runtime.formation import DeployError, Formation
from runtime.leftovers import kill_leftovers, record_groups
from runtime.logbus import LogBus
from runtime.names import SYSTEM_APP
from runtime.oneoff import OneOffs
from runtime.plan import Plan, formation_of
from runtime.process import State
from runtime.reexec import ReexecError, exec_fallback, exec_resume, read_state, write_state
from runtime.selfhost import PlatformCode
from runtime.settings import Settings
from runtime.sockets import bind_tcp
from runtime.store import STATUS_SUCCEEDED, Release, Store
from runtime.users import APPS_GID, AppUser, needs_drop
from runtime.version import commit, version_string

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: gunicorn's: re-execute the supervisor in place, keeping every child
REEXEC_SIGNAL = signal.SIGUSR2
#: the process groups of a supervisor that died without stopping them
LEFTOVERS = "process-groups.json"
#: the longest a deploy waits for the routers to take new routes
ROUTES_TIMEOUT = 5.0
#: the platform's process types that serve a listening socket, and scale (DESIGN §2)
SYSTEM_SOCKETS = {"gitd": "ssh", "router": "http"}
#: how a platform process says it serves: gitd prints this line; a router acks routes
READY_LINES = {"gitd": "gitd listening", "router": ""}
#: control ops that stream for as long as the client stays: a re-exec ends them (a
#: router reconnects at once; `logs --tail` ends)
STREAMS = frozenset({"routes", "logs"})
#: a platform release whose processes crash this often soon after it came up is
#: rolled back (`CRASH_WATCH` seconds)
CRASH_LIMIT = 3
CRASH_WATCH = 30.0


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bus = LogBus(settings.logs_dir)
        self.formations: dict[str, Formation] = {}
        self.deploying: dict[str, asyncio.Lock] = {}
        #: each router's connection, with the routes version it installed last
        self.route_subscribers: dict[Connection, int] = {}
        self.routes_version = 0
        self._routes_acked = asyncio.Event()
        self._stopping = asyncio.Event()
        self._sockets: dict[str, socket.socket] = {}
        self.store: Store | None = None
        self.oneoffs = OneOffs(self)
        self._groups_dirty = False
        self._reexec_wanted = asyncio.Event()
        self._control: ControlServer | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        #: the platform code that last passed `ouro check` (each is checked once)
        self._checked: PlatformCode | None = None

    async def run(self, resume: Path | None = None) -> int:
        """Run until SIGINT or SIGTERM; returns the exit status. With `resume`, take
        over what the previous supervisor of this process ran (re-exec)."""
        from runtime.ops import handlers

        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._stopping.set)
        loop.add_signal_handler(REEXEC_SIGNAL, self._reexec_wanted.set)
        self._prepare_home()
        state = read_state(resume) if resume is not None else None
        try:
            control = await self._start(state, handlers(self))
        except Exception as e:
            if state is None or not state.get("fallback"):
                raise
            log.exception("the new supervisor could not take over: the previous one resumes")
            exec_fallback(self.settings.run_dir, state, f"{type(e).__name__}: {e}")
            raise
        self._write_status()
        started = "re-executed" if state is not None else "started"
        if state is not None and state.get("failed"):
            self.bus.emit(
                SYSTEM_APP, "ouro[api]",
                f"The new supervisor could not take over ({state['failed']}):"
                " the previous one resumed",
            )  # fmt: skip
        self.bus.emit(SYSTEM_APP, "ouro[api]", f"Platform {started}: {version_string()}")
        drops = asyncio.ensure_future(self._report_drops())
        reexec = asyncio.ensure_future(self._serve_reexec())
        await self._stopping.wait()
        drops.cancel()
        reexec.cancel()
        await control.close()
        await self._shutdown()
        return 0

    async def _start(
        self, state: dict[str, Any] | None, ops: Mapping[str, Handler]
    ) -> ControlServer:
        if state is None:
            kill_leftovers(self.settings.run_dir / LEFTOVERS)
            self._abandon_pending()
            self._bind()
        else:
            self._adopt_sockets(state)
        self._bootstrap_system_app(self.require_store())
        control = self._control = ControlServer(self.settings.control_socket, ops)
        control_fd = state["control"] if state is not None else None
        await control.start(socket.socket(fileno=control_fd) if control_fd else None)
        if state is None:
            self.start_system()
            self._restore_apps()
        else:
            self._adopt(state)
            # a platform release that just came up is watched on by the new code
            release = self._system_release()
            if release is not None:
                left = release.created_at + self.settings.boot_timeout + CRASH_WATCH - time.time()
                self._watch_crashes(release.version, left)
        return control

    # -- re-exec ------------------------------------------------------------

    async def _serve_reexec(self) -> None:
        """Re-exec on SIGUSR2, and after a platform release came up."""
        while True:
            await self._reexec_wanted.wait()
            self._reexec_wanted.clear()
            try:
                await self._reexec()
            except (ReexecError, OSError) as e:
                self.bus.emit(SYSTEM_APP, "ouro[api]", f"Re-exec refused: {e}")

    async def _reexec(self) -> None:
        """Exec into the code of the release the platform's processes run, once it passed
        `ouro check` and nothing is starting or stopping; returns only if it could not."""
        while True:
            await self._quiet(self.settings.grace_period + ROUTES_TIMEOUT)
            code = PlatformCode.of(self._system_release(), self.settings)
            if code == self._checked:  # as a deploy of it did, or the round before
                self._handover(code)  # at once: nothing may start between quiet and exec
                return
            problem = await code.check()  # another release may come up meanwhile: again
            if problem is not None:
                raise ReexecError(f"{code.python} cannot run the platform: {problem}")
            self._checked = code

    def _system_release(self) -> Release | None:
        formation = self.formations.get(SYSTEM_APP)
        if formation is None or not formation.plan.version:
            return None
        return self.require_store().release(SYSTEM_APP, formation.plan.version)

    def _busy(self) -> list[str]:
        """What an exec would cut short: processes starting or stopping, deploys, and
        requests being answered (but the streams clients reopen: routes, logs)."""
        busy = [app for app, f in self.formations.items() if f.busy]
        busy += [f"{app} (deploying)" for app, lock in self.deploying.items() if lock.locked()]
        if any(o.attached for o in self.oneoffs.running.values()):
            busy.append("a one-off attached to a client")
        if self._control is not None:
            ops = self._control.in_flight
            busy += [f"a {op} request" for op, n in ops.items() if n and op not in STREAMS]
        return busy

    async def _quiet(self, timeout: float) -> None:
        """Wait until no process starts or stops (an old generation drains first)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while busy := self._busy():
            if loop.time() > deadline:
                raise ReexecError(f"still busy after {timeout:g} s: {', '.join(busy)}")
            await asyncio.sleep(0.1)

    def _handover(self, code: PlatformCode) -> None:
        """Exec `code` as `ouro up --resume`; returns only when that could not happen,
        with everything watched again as before."""
        if busy := self._busy():
            raise ReexecError(f"processes are starting or stopping: {', '.join(busy)}")
        if self._control is None:
            raise ReexecError("not serving yet")
        sockets = {name: sock.fileno() for name, sock in self._sockets.items()}
        for fd in sockets.values():
            os.set_inheritable(fd, True)
        state = {
            "pid": os.getpid(),
            "sockets": sockets,
            "control": self._control.handover(),
            "routes_version": self.routes_version,
            "formations": {
                app: {"version": f.plan.version, "slots": f.export()}
                for app, f in self.formations.items()
            },
            "oneoffs": self.oneoffs.export(),
            # what runs now, for the new code to exec back into if it cannot take over
            "fallback": {"python": sys.executable, "env": dict(os.environ)},
        }
        path = write_state(self.settings.run_dir, state)
        self.bus.emit(SYSTEM_APP, "ouro[api]", "Supervisor re-executing (children kept)")
        self.bus.close()
        try:
            exec_resume(path, code.python, code.environ(dict(os.environ) | self.settings.to_env()))
        except OSError:
            self._adopt(read_state(path))
            raise

    def _adopt_sockets(self, state: dict[str, Any]) -> None:
        for name, fd in state["sockets"].items():
            sock = socket.socket(fileno=fd)
            sock.set_inheritable(False)
            self._sockets[name] = sock
        self.settings = self.settings.with_ports(
            self._sockets["ssh"].getsockname()[1], self._sockets["http"].getsockname()[1]
        )

    def _adopt(self, state: dict[str, Any]) -> None:
        """Watch the processes of `state` again, as they run."""
        store = self.require_store()
        self.routes_version = state["routes_version"]
        for app, saved in state["formations"].items():
            if app == SYSTEM_APP:
                plan = self._system_plan(store.release(app, saved["version"]))
            else:
                plan = self.plan(store.release(app, saved["version"]))
            formation = self.formation_for(plan)
            formation.plan = plan
            formation.adopt(saved["slots"])
        self.oneoffs.adopt(state["oneoffs"])
        self.children_changed()
        self.publish_routes()

    # -- the home and the sockets --------------------------------------------

    def _prepare_home(self) -> None:
        s = self.settings
        for folder in (
            s.home,
            s.repos_dir,
            s.run_dir,
            s.logs_dir,
            s.ssh_dir,
            s.slugs_dir,
            s.cache_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        for private in (s.run_dir, s.ssh_dir, s.repos_dir, s.logs_dir):
            private.chmod(0o700)
        self.store = Store(s.db_path)
        if needs_drop():
            # App users pass through to their own slugs and caches, and see nothing else.
            for shared in (s.slugs_dir, s.cache_dir):
                shared.chmod(0o711)
            try:
                grant_search(s.home, APPS_GID)
            except AclError as e:
                log.warning("%s: app users may not reach their slugs", e)
        from gitd.hostkeys import ensure_host_keys  # made once here, never by a child

        ensure_host_keys(s.ssh_dir)

    def _abandon_pending(self) -> None:
        """A release still pending at start was being deployed when the platform died
        (SIGKILL in the middle of a deploy or an upgrade): it never ran, so it is
        refused, and each app comes back on the release that ran before it."""
        store = self.require_store()
        for release in store.pending_releases():
            store.abandon_release(release.app, release.version)
            log.warning("%s v%d was being deployed when the platform stopped: refused",
                        release.app, release.version)  # fmt: skip

    def _bootstrap_system_app(self, store: Store) -> None:
        """The platform is app `ouro`: its v1 is the installed code (DESIGN §2), so there
        is always a known-good release to fall back on."""
        if any(app.name == SYSTEM_APP for app in store.apps()):
            return
        store.create_app(SYSTEM_APP, SYSTEM_APP)
        release = store.cut_release(
            SYSTEM_APP, f"Bootstrap from the installed code ({version_string()})", SYSTEM_APP,
            commit=None, slug=None, slug_size=None,
            process_types=self._system_plan().process_types, buildpacks=(),
            status=STATUS_SUCCEEDED,
        )  # fmt: skip
        log.info("app %s v%d: %s", SYSTEM_APP, release.version, release.description)

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

    # -- formations ---------------------------------------------------------

    def _system_plan(self, release: Release | None = None) -> Plan:
        """App `ouro`'s processes for `release` (default: the current one): the
        platform's own, from its code (`runtime.selfhost`), then those its add-ons need."""
        from addons.system import system_processes

        if release is None:
            release = self.require_store().current_release(SYSTEM_APP)
        code = PlatformCode.of(release, self.settings)
        types = code.process_types(release)
        users, added = {}, set()
        for process in system_processes(self.settings):
            types[process.type] = process.command
            added.add(process.type)
            if process.user is not None:
                users[process.type] = process.user
        return Plan(
            app=SYSTEM_APP,
            version=release.version if release is not None else 0,
            slug_dir=self.settings.home,
            process_types=types,
            config={},
            system=True,
            base_env=code.environ(_base_env() | self.settings.to_env()),
            sockets={type_: self._sockets[name] for type_, name in SYSTEM_SOCKETS.items()},
            type_users=users,
            exclusive_types=frozenset(t for t in types if t not in SYSTEM_SOCKETS),
            ready_lines={t: line for t, line in READY_LINES.items() if t in types},
            kept_types=frozenset(added),
        )

    def _system_quantities(self, plan: Plan) -> dict[str, int]:
        """As scaled (`ps:scale -a ouro router=2`), one of each by default; only gitd
        and the router scale: one scheduler, one database server."""
        stored = self.require_store().formation(SYSTEM_APP)
        quantities = formation_of(SYSTEM_APP, plan.process_types, stored)
        return {t: n if t in SYSTEM_SOCKETS else 1 for t, n in quantities.items()}

    def start_system(self) -> None:
        """Run the platform's processes; call again when add-ons need new ones."""
        plan = self._system_plan()
        formation = self.formation_for(plan)
        formation.plan = plan
        formation.scale(self._system_quantities(plan))

    async def deploy_system(self, release: Release) -> None:
        """Roll the platform's processes onto `release` of `ouro` (DESIGN §4): its code
        must pass `ouro check`, its gitd and routers must say they serve, or nothing
        changes (DeployError). Then the supervisor re-executes into that code."""
        code = PlatformCode.of(release, self.settings)
        async with self.deploying.setdefault(SYSTEM_APP, asyncio.Lock()):
            problem = await code.check()
            if problem is not None:
                raise DeployError(f"v{release.version} cannot run the platform: {problem}")
            self._checked = code
            plan = self._system_plan(release)
            await self.formation_for(plan).deploy(plan, self._system_quantities(plan))
        self._reexec_wanted.set()
        self._watch_crashes(release.version, CRASH_WATCH)

    def _watch_crashes(self, version: int, seconds: float) -> None:
        if seconds > 0:
            task = asyncio.ensure_future(self._crash_watch(version, seconds))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _crash_watch(self, version: int, seconds: float) -> None:
        """Roll back a platform release whose processes crash over and over soon after
        it came up: the platform must keep running on a release that works."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            await asyncio.sleep(0.5)
            formation = self.formations[SYSTEM_APP]
            if formation.plan.version != version:
                return
            crashing = [
                name for name, slot in formation.slots.items()
                if slot.crashes >= CRASH_LIMIT and slot.spec.type not in formation.plan.kept_types
            ]  # fmt: skip
            if crashing:
                await self._roll_back_system(version, crashing)
                return

    async def _roll_back_system(self, version: int, crashing: list[str]) -> None:
        store = self.require_store()
        target = store.previous_release(SYSTEM_APP, version)
        if target is None:
            return
        self.bus.emit(
            SYSTEM_APP, "ouro[api]",
            f"Release v{version} crashed after it came up ({', '.join(crashing)}):"
            f" rolling back to v{target.version}",
        )  # fmt: skip
        release = store.rollback(SYSTEM_APP, target.version, SYSTEM_APP)
        try:
            await self.deploy_system(release)
        except DeployError as e:
            store.abandon_release(SYSTEM_APP, release.version)
            self.bus.emit(SYSTEM_APP, "ouro[api]", f"Rollback to v{target.version} failed: {e}")
            return
        store.finish_release(SYSTEM_APP, release.version, succeeded=True)

    def _restore_apps(self) -> None:
        """Bring back every app's formation, as the state directory has it."""
        store = self.require_store()
        for app in store.apps():
            release = store.current_release(app.name)
            if release is None or release.slug is None or app.name == SYSTEM_APP:
                continue
            formation = self.formation_for(self.plan(release))
            formation.scale(self.quantities(release))

    def formation_for(self, plan: Plan) -> Formation:
        if plan.app not in self.formations:
            self.formations[plan.app] = Formation(
                plan,
                self.bus,
                self.publish_routes,
                self.routes_settled,
                self.children_changed,
                self.settings.boot_timeout,
                self.settings.grace_period,
            )
        return self.formations[plan.app]

    def plan(self, release: Release) -> Plan:
        store = self.require_store()
        app = store.app(release.app)
        slug_dir = self.settings.slugs_dir / release.app / (release.slug or "none")
        return Plan(
            app=release.app,
            version=release.version,
            slug_dir=slug_dir,
            process_types=release.process_types,
            config=release.config,
            user=AppUser.for_app(app.name, app.uid) if needs_drop() else None,
        )

    def quantities(self, release: Release) -> dict[str, int]:
        """The formation for `release`: what was scaled, web=1 for a type never scaled."""
        return formation_of(
            release.app, release.process_types, self.require_store().formation(release.app)
        )

    def require_store(self) -> Store:
        if self.store is None:
            raise RuntimeError("the store is opened by run()")
        return self.store

    # -- routes -----------------------------------------------------------

    def routes(self) -> dict[str, Any]:
        store = self.require_store()
        domains = store.domains()
        apps: dict[str, Any] = {}
        for name, formation in self.formations.items():
            if name == SYSTEM_APP:
                continue
            apps[name] = {
                "hosts": [host for host, app in domains.items() if app == name],
                "backends": [
                    {"dyno": dyno, "host": "127.0.0.1", "port": port}
                    for dyno, port in formation.backends()
                ],
            }
        return {"version": self.routes_version, "domain": self.settings.domain, "apps": apps}

    def publish_routes(self) -> None:
        self.routes_version += 1
        if not self.route_subscribers:
            return
        message = {"op": "routes", **self.routes()}
        for conn in list(self.route_subscribers):
            with contextlib.suppress(ConnectionError, RuntimeError):
                conn.writer.write(json.dumps(message).encode() + b"\n")

    def routes_applied(self, conn: Connection, version: int) -> None:
        if conn in self.route_subscribers:
            self.route_subscribers[conn] = version
            system = self.formations.get(SYSTEM_APP)
            if system is not None and version > 0:
                system.ready(conn.peer_pid())  # a router that has routes serves
        self._routes_acked.set()

    async def routes_settled(self, timeout: float = ROUTES_TIMEOUT) -> None:
        """Wait until every router runs the newest routes (or `timeout` passes), so an
        old generation is stopped only once no router sends it new requests."""
        target = self.routes_version
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._routers_behind(target):
            left = deadline - loop.time()
            if left <= 0:
                log.warning("routers did not confirm routes v%d in %.0fs", target, timeout)
                return
            self._routes_acked.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._routes_acked.wait(), left)

    def _routers_behind(self, target: int) -> bool:
        """Some router has not installed routes `target`: one that acked less, or one
        that runs but is not subscribed (yet: routers reconnect after a re-exec)."""
        system = self.formations.get(SYSTEM_APP)
        routers = 0 if system is None else len(
            [s for s in system.slots.values() if s.spec.type == "router" and s.state is State.UP]
        )  # fmt: skip
        subscribed = self.route_subscribers.values()
        return len(subscribed) < routers or any(v < target for v in subscribed)

    # -- leftovers ----------------------------------------------------------

    def process_groups(self) -> dict[int, int | None]:
        """`{pgid: start time}` of every child: each leads its own process group."""
        children = [child for formation in self.formations.values() for child in formation.live]
        children += [oneoff.child for oneoff in self.oneoffs.running.values()]
        return {child.pid: child.start_time for child in children}

    async def _report_drops(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.bus.report_drops()

    def children_changed(self) -> None:
        """A child was spawned: record the process groups for the next start after a
        crash, before the loop handles anything else (a daemon it forks must not
        escape), once for a burst of spawns (a restore spawns hundreds)."""
        if not self._groups_dirty:
            self._groups_dirty = True
            asyncio.get_running_loop().call_soon(self._record_groups)

    def _record_groups(self) -> None:
        self._groups_dirty = False
        record_groups(self.settings.run_dir / LEFTOVERS, self.process_groups())

    # -- stopping -----------------------------------------------------------

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.oneoffs.shutdown()
        apps = [f for name, f in self.formations.items() if name != SYSTEM_APP]
        await asyncio.gather(*(f.shutdown() for f in apps))
        system = self.formations.get(SYSTEM_APP)
        if system is not None:
            await system.shutdown()
        for sock in self._sockets.values():
            sock.close()
        self.bus.close()
        if self.store is not None:
            self.store.close()
        for done in (self.settings.status_file, self.settings.run_dir / LEFTOVERS):
            done.unlink(missing_ok=True)


def _base_env() -> dict[str, str]:
    """What the platform's own processes inherit: enough to find Python and its packages."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TZ", "OURO_GIT_HOOK")
    return {k: os.environ[k] for k in keep if k in os.environ}
