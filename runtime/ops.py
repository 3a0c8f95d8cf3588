"""The supervisor's control ops: one small coroutine each, in an explicit table.

Every op takes the request message and its connection and returns the answer
(or None when it replied itself, as the streaming ops do). A refusal raises
`ControlError` with the one line the user will see.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Mapping
from typing import Any

from runtime.control import Connection, ControlError, Handler, Message
from runtime.formation import DeployError, Formation
from runtime.logbus import RING_LINES
from runtime.names import SYSTEM_APP
from runtime.oneoff import RunRequest
from runtime.store import NotFound
from runtime.supervisor import Supervisor
from runtime.version import version_string


def handlers(sup: Supervisor) -> Mapping[str, Handler]:
    def bind(op: Any) -> Handler:
        async def handler(message: Message, conn: Connection) -> Message | None:
            result: Message | None = await op(sup, message, conn)
            return result

        return handler

    return {name: bind(op) for name, op in _OPS.items()}


def _formation(sup: Supervisor, app: str) -> Formation:
    formation = sup.formations.get(app)
    if formation is None:
        raise ControlError(f"{app} has no running release: push it first")
    return formation


def _names(formation: Formation, target: str | None) -> list[str]:
    """`web` -> every web process, `web.2` -> that one, None -> all."""
    slots = formation.slots
    if not target:
        return list(slots)
    if target in slots:
        return [target]
    names = [name for name, slot in slots.items() if slot.spec.type == target]
    if not names:
        raise ControlError(f"no such process: {target}")
    return names


async def status(sup: Supervisor, message: Message, conn: Connection) -> Message:
    processes = [
        {
            "app": app,
            "name": name,
            "state": str(slot.state),
            "pid": slot.child.pid if slot.child else None,
            "since": slot.since,
        }
        for app, formation in sup.formations.items()
        for name, slot in formation.slots.items()
    ]
    return {
        "ok": True,
        "version": version_string(),
        "ssh_port": sup.settings.ssh_port,
        "http_port": sup.settings.http_port,
        "processes": processes,
    }


async def ps(sup: Supervisor, message: Message, conn: Connection) -> Message:
    app = message["app"]
    processes = []
    formation = sup.formations.get(app)
    if formation is not None:
        for name, slot in formation.slots.items():
            processes.append(
                {
                    "name": name,
                    "type": slot.spec.type,
                    "state": str(slot.state),
                    "since": slot.since,
                    "command": formation.plan.process_types.get(slot.spec.type, ""),
                    "pid": slot.child.pid if slot.child else None,
                    "oneoff": False,
                }
            )
    for oneoff in sup.oneoffs.of(app):
        processes.append(
            {
                "name": oneoff.spec.name,
                "type": oneoff.spec.type,
                "state": "up",
                "since": oneoff.since,
                "command": oneoff.command,
                "pid": oneoff.child.pid,
                "oneoff": True,
            }
        )
    return {"ok": True, "processes": processes}


async def deploy(sup: Supervisor, message: Message, conn: Connection) -> Message:
    """Run release `version` of `app`; answers once its web processes listen."""
    app, version = message["app"], int(message["version"])
    store = sup.require_store()
    try:
        release = store.release(app, version)
    except NotFound as e:
        raise ControlError(str(e)) from None
    if app == SYSTEM_APP:
        try:
            await sup.deploy_system(release)
        except DeployError as e:
            raise ControlError(str(e)) from None
        return {"ok": True}
    lock = sup.deploying.setdefault(app, asyncio.Lock())
    async with lock:
        plan = sup.plan(release)
        formation = sup.formation_for(plan)
        try:
            await formation.deploy(plan, sup.quantities(release))
        except DeployError as e:
            raise ControlError(str(e)) from None
    return {"ok": True, "backends": formation.backends()}


async def scale(sup: Supervisor, message: Message, conn: Connection) -> Message:
    """Make the app's processes match its stored formation."""
    app = message["app"]
    if app == SYSTEM_APP:
        sup.start_system()  # gitd and router scale; one scheduler, one database server
        return {"ok": True}
    release = sup.require_store().current_release(app)
    if release is None or release.slug is None:
        raise ControlError(f"{app} has no running release: push it first")
    formation = sup.formation_for(sup.plan(release))
    formation.scale(sup.quantities(release))
    return {"ok": True}


async def restart(sup: Supervisor, message: Message, conn: Connection) -> Message:
    app, target = message["app"], message.get("target")
    formation = _formation(sup, app)
    if not target and app != SYSTEM_APP:
        release = sup.require_store().current_release(app)
        if release is not None:
            return await deploy(sup, {"app": app, "version": release.version}, conn)
    await formation.restart(_names(formation, target))
    return {"ok": True}


async def stop(sup: Supervisor, message: Message, conn: Connection) -> Message:
    app, target = message["app"], message.get("target")
    if target and sup.oneoffs.kill(app, target, signal.SIGTERM):
        return {"ok": True, "stopped": [target]}
    formation = _formation(sup, app)
    names = _names(formation, target)
    formation.stop(names)
    return {"ok": True, "stopped": names}


async def kill(sup: Supervisor, message: Message, conn: Connection) -> Message:
    app, name = message["app"], message["target"]
    try:
        signum = signal.Signals[f"SIG{message.get('signal', 'KILL').upper().removeprefix('SIG')}"]
    except KeyError:
        raise ControlError(f"unknown signal {message.get('signal')!r}") from None
    if sup.oneoffs.kill(app, name, signum):
        return {"ok": True}
    formation = _formation(sup, app)
    if name not in formation.slots:
        raise ControlError(f"no such process: {name}")
    formation.kill(name, signum)
    return {"ok": True}


async def destroy(sup: Supervisor, message: Message, conn: Connection) -> Message:
    app = message["app"]
    formation = sup.formations.pop(app, None)
    for oneoff in sup.oneoffs.of(app):
        oneoff.child.signal(signal.SIGKILL)
    if formation is not None:
        sup.publish_routes()
        await formation.shutdown()
    sup.bus.forget(app)
    return {"ok": True}


async def logs(sup: Supervisor, message: Message, conn: Connection) -> None:
    app = message["app"]
    count = max(0, min(int(message.get("lines", 100)), RING_LINES))
    wanted = _log_filter(message.get("ps"), message.get("source"))
    lines = [line for line in sup.bus.recent(app, RING_LINES) if wanted(line)]
    await conn.reply({"ok": True, "lines": lines[-count:] if count else []})
    if not message.get("tail"):
        return
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)

    def deliver(line_app: str, line: str) -> None:
        if line_app == app and wanted(line):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(line)

    unsubscribe = sup.bus.subscribe(deliver)
    gone = asyncio.ensure_future(conn.closed())
    try:
        while not gone.done():
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            await conn.reply({"line": getter.result()})
    except ConnectionError:
        pass
    finally:
        unsubscribe()
        gone.cancel()


def _log_filter(ps_filter: str | None, source: str | None) -> Any:
    def wanted(line: str) -> bool:
        tag = line.split(" ", 2)[1] if line.count(" ") >= 2 else ""
        origin, _, dyno = tag.rstrip(":").partition("[")
        dyno = dyno.rstrip("]")
        if source and origin != source:
            return False
        return not ps_filter or dyno == ps_filter or dyno.split(".")[0] == ps_filter

    return wanted


async def system_refresh(sup: Supervisor, message: Message, conn: Connection) -> Message:
    """An add-on needs (or no longer needs) a platform process: run what it lists."""
    sup.start_system()
    return {"ok": True}


async def reroute(sup: Supervisor, message: Message, conn: Connection) -> Message:
    """The domains changed: send the routers the new table."""
    sup.publish_routes()
    return {"ok": True}


async def emit(sup: Supervisor, message: Message, conn: Connection) -> Message:
    sup.bus.emit(message["app"], message.get("source", "ouro[api]"), message["text"])
    return {"ok": True}


async def routes(sup: Supervisor, message: Message, conn: Connection) -> None:
    """Stream the routing table: now, then at every change, until the router goes."""
    sup.route_subscribers[conn] = -1
    await conn.reply({"op": "routes", **sup.routes()})
    try:
        while line := await conn.reader.readline():
            message = json.loads(line)
            if "ack" in message:
                sup.routes_applied(conn, int(message["ack"]))
            for app, text in message.get("entries", []):
                if app in sup.formations:
                    sup.bus.emit(app, "ouro[router]", text)
    except (ConnectionError, ValueError):
        pass
    finally:
        sup.route_subscribers.pop(conn, None)
        sup.routes_applied(conn, 0)


async def run(sup: Supervisor, message: Message, conn: Connection) -> None:
    request = RunRequest(
        app=message["app"],
        type=message.get("type", "run"),
        command=message["command"],
        env=dict(message.get("env", {})),
        tty=bool(message.get("tty")),
        detached=bool(message.get("detached")),
        rows=int(message.get("rows", 0)),
        cols=int(message.get("cols", 0)),
        timeout=message.get("timeout"),
        version=message.get("version"),
    )
    try:
        await sup.oneoffs.run(request, conn)
    except (ControlError, NotFound) as e:
        await conn.reply({"ok": False, "error": str(e)})
    except OSError as e:
        await conn.reply({"ok": False, "error": f"cannot start the process: {e.strerror or e}"})


_OPS = {
    "status": status,
    "ps": ps,
    "deploy": deploy,
    "scale": scale,
    "restart": restart,
    "stop": stop,
    "kill": kill,
    "destroy": destroy,
    "logs": logs,
    "emit": emit,
    "routes": routes,
    "run": run,
    "reroute": reroute,
    "system_refresh": system_refresh,
}
