"""Scale: N apps of two processes each under one supervisor.

    python bench/scale.py [--apps N] [--web tiny|http.server]

Starts a platform in a temporary home on free ports, deploys N Procfile-only
apps (a web process and a `sleep` worker each; pushed through a bounded pool
of concurrent `git push`es, then `ps:scale worker=1`), stops the platform and
times `ouro up` until every app answers through the router and the
supervisor's process list shows every process up. Then it measures the memory
(RSS and PSS) of the platform's own processes (supervisor, gitd and its
workers, router, scheduler) and their CPU while idle. Targets (issue 4): all
up within 20 s, the platform's own processes under 200 MB together, idle CPU
under 2% of one core.

The web process is, by default, a ~15-line socket server run by
`python3 -I -S` (about 10 ms of CPU and 10 MB RSS to start) rather than
`python3 -m http.server` (about 40 ms and 19 MB): 100 of the latter spend ~4 s
of CPU on a 2-core machine just importing, which would measure Python rather
than the platform. `--web http.server` runs the heavier one for comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.procfs import descendants, memory_kb, process_tree, stat  # noqa: E402
from runtime.control import ControlError, request  # noqa: E402
from runtime.names import SYSTEM_APP  # noqa: E402
from tests.harness import OURO, Platform, SshKey, make_key, make_repo  # noqa: E402

TARGET_START = 20.0
TARGET_MB = 200.0
TARGET_CPU = 2.0
#: every wait has a bound; the whole run is a few minutes at N=100
PUSH_TIMEOUT = 120.0
START_TIMEOUT = 120.0
STOP_TIMEOUT = 90.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

#: answers every request with the app's name (USER) so that the bench knows the
#: router reached the right app; Connection: close keeps it one loop, no threads
TINY_WEB = """\
import os, socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen(128)
body = os.environ["USER"].encode()
reply = b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n%s" % (
    len(body), body)
while True:
    c = s.accept()[0]
    try:
        c.settimeout(5)
        data = b""
        while b"\\r\\n\\r\\n" not in data:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        c.sendall(reply)
    except OSError:
        pass
    c.close()
"""
PROCFILES = {
    "tiny": "web: exec python3 -I -S web.py\nworker: exec sleep 100000\n",
    "http.server": (
        "web: exec python3 -m http.server $PORT --bind 127.0.0.1\nworker: exec sleep 100000\n"
    ),
}


class Interrupted(Exception):
    """SIGTERM: unwind through the `finally` that stops the platform."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signum}")


def wait(condition: Callable[[], object], timeout: float, what: str, every: float = 0.02) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


# -- deploying ----------------------------------------------------------------


def deploy_all(
    platform: Platform, key: SshKey, repo: Path, apps: list[str], pushers: int
) -> list[float]:
    """Push `repo` to every app and scale its worker to 1; returns each app's seconds."""

    def one(app: str) -> float:
        started = time.monotonic()
        push = platform.git(key, "push", platform.url(app), "main", cwd=repo, check=False)
        if push.returncode != 0 or "Launching... done" not in push.stderr:
            raise RuntimeError(f"push to {app} failed:\n{push.stderr[-2000:]}")
        scaled = platform.ssh(key, "ps:scale", "-a", app, "worker=1")
        if scaled.returncode != 0:
            raise RuntimeError(f"ps:scale on {app} failed:\n{scaled.stderr}")
        return time.monotonic() - started

    with ThreadPoolExecutor(pushers) as pool:
        return list(pool.map(one, apps))


# -- the supervisor's view and the router's -------------------------------------


def status(platform: Platform, timeout: float = 5.0) -> dict[str, Any] | None:
    try:
        return request(control_socket(platform), "status", timeout=timeout)
    except (ControlError, ValueError):
        return None


def control_socket(platform: Platform) -> Path:
    from runtime.settings import Settings

    return Settings.load({}, home=platform.home).control_socket


def app_processes_up(answer: dict[str, Any] | None, apps: Iterable[str]) -> int:
    if answer is None:
        return 0
    wanted = set(apps)
    return sum(1 for p in answer["processes"] if p["app"] in wanted and p["state"] == "up")


def answers(port: int, app: str, named: bool) -> bool:
    """The router serves `app`'s web process: a 200, and when the web process is
    the tiny server (`named`), with the app's own name (not another app's)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": f"{app}.localhost"})
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
        return response.status == 200 and (body == app or not named)
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


@dataclass
class Startup:
    ready: float = float("nan")  # ouro.json written by the new supervisor
    first: float = float("nan")  # the first app answers through the router
    routed: float = float("nan")  # every app answers through the router
    ps_up: float = float("nan")  # the supervisor lists every app process up
    shutdown: float = float("nan")  # SIGINT to exit of the previous `ouro up`

    @property
    def all_up(self) -> float:
        return max(self.routed, self.ps_up)


def timed_up(platform: Platform, apps: list[str], sock: Path, named: bool) -> Startup:
    """Start `ouro up` (as Platform.start does, but timed, with no `ouro status`
    subprocesses competing for the CPU) and wait until every app is up."""
    result = Startup()
    started = time.monotonic()
    with (platform.work / "up.log").open("ab") as log:
        platform.proc = subprocess.Popen(
            [*OURO, "up", "--ssh-port", "0", "--http-port", "0"],
            env=platform.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    proc = platform.proc
    status_file = platform.home / "run" / "ouro.json"

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"ouro up exited with {proc.returncode}")
        with contextlib.suppress(OSError, ValueError):
            return bool(json.loads(status_file.read_text()).get("pid") == proc.pid)
        return False

    wait(ready, START_TIMEOUT, "ouro up to write its status", every=0.005)
    result.ready = time.monotonic() - started
    info = json.loads(status_file.read_text())
    platform.ssh_port, platform.http_port = info["ssh_port"], info["http_port"]
    pending = list(apps)
    end = started + START_TIMEOUT
    while pending or result.ps_up != result.ps_up:
        if time.monotonic() > end:
            raise TimeoutError(f"not up after {START_TIMEOUT:.0f}s: {len(pending)} apps unrouted")
        if result.ps_up != result.ps_up:
            try:
                answer = request(sock, "status", timeout=5.0)
            except ControlError:
                answer = None
            if app_processes_up(answer, apps) == 2 * len(apps):
                result.ps_up = time.monotonic() - started
        still = []
        for app in pending:
            if answers(platform.http_port, app, named):
                if result.first != result.first:
                    result.first = time.monotonic() - started
            else:
                still.append(app)
        if not still and pending:
            result.routed = time.monotonic() - started
        pending = still
        time.sleep(0.02)
    return result


# -- /proc --------------------------------------------------------------------


@dataclass
class Proc:
    pid: int
    role: str
    cmd: str = ""
    rss_kb: int = 0
    pss_kb: int = 0
    ticks: int = 0
    children: list[int] = field(default_factory=list)


def platform_processes(supervisor: int, answer: dict[str, Any]) -> list[Proc]:
    """The supervisor, and each process of app `ouro` with its descendants (gitd's
    workers): the platform's own processes, named by their role."""
    tree = process_tree()
    procs = [Proc(supervisor, "supervisor")]
    for p in answer["processes"]:
        if p["app"] == SYSTEM_APP and p["pid"]:
            role = p["name"].split(".")[0]
            for index, pid in enumerate(descendants(p["pid"], tree)):
                procs.append(Proc(pid, role if index == 0 else f"{role} workers"))
    return procs


def app_pids(answer: dict[str, Any]) -> list[int]:
    tree = process_tree()
    return [
        pid
        for p in answer["processes"]
        if p["app"] != SYSTEM_APP and p["pid"]
        for pid in descendants(p["pid"], tree)
    ]


def measure_memory(procs: Iterable[Proc]) -> None:
    for proc in procs:
        with contextlib.suppress(OSError):
            proc.cmd = Path(f"/proc/{proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        found = memory_kb(proc.pid)
        proc.rss_kb, proc.pss_kb = found.get("Rss", 0), found.get("Pss", 0)


def cpu_ticks(pids: Iterable[int]) -> dict[int, int]:
    ticks = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            ticks[pid] = stat(pid)[1]
    return ticks


# -- cleanup ------------------------------------------------------------------


def sweep(root: Path, seen: set[int]) -> None:
    """Kill the process group of any app or platform process seen that still runs
    from this bench's home (checked by its cwd: pids get reused)."""
    for pid in seen:
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd.startswith(str(root)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


# -- the run ------------------------------------------------------------------


@dataclass
class Figures:
    apps: int
    web: str
    push_seconds: list[float]
    push_wall: float
    startup: Startup
    procs: list[Proc]
    app_rss_kb: int
    app_pss_kb: int
    cpu: dict[str, float]
    idle_seconds: float
    loadavg: str


def run(args: argparse.Namespace, root: Path, seen: set[int]) -> Figures:
    platform = Platform(root / "home", root / "work")
    (root / "work").mkdir()
    try:
        key = make_key(root, "bench")
        added = platform.ouro("keys:add", "--name", "bench", str(key.public))
        if added.returncode != 0:
            raise RuntimeError(added.stderr)
        platform.start()
        sock = control_socket(platform)
        repo = make_repo(root / "app", {"Procfile": PROCFILES[args.web], "web.py": TINY_WEB})
        apps = [f"scale{i:03d}" for i in range(args.apps)]
        print(f"deploying {len(apps)} apps, {args.pushers} pushes at a time...", flush=True)
        started = time.monotonic()
        push_seconds = deploy_all(platform, key, repo, apps, args.pushers)
        push_wall = time.monotonic() - started
        wait(
            lambda: app_processes_up(status(platform), apps) == 2 * len(apps),
            START_TIMEOUT,
            "every deployed process to be up",
            every=0.2,
        )
        answer = status(platform)
        assert answer is not None
        seen.update(p["pid"] for p in answer["processes"] if p["pid"])

        print("stopping the platform, then timing `ouro up`...", flush=True)
        stopping = time.monotonic()
        if platform.proc is not None and platform.proc.pid:
            seen.add(platform.proc.pid)
        code = platform.stop(signal.SIGINT)
        shutdown = time.monotonic() - stopping
        if code != 0:
            raise RuntimeError(f"ouro up exited with {code} on SIGINT")
        sweep(root, seen)  # nothing should be left; if something is, it must not count
        startup = timed_up(platform, apps, sock, named=args.web == "tiny")
        startup.shutdown = shutdown

        # Let the startup's tail (log flushes, gitd workers, the first route
        # acknowledgements) finish, so that "idle" means idle.
        time.sleep(2.0)
        answer = status(platform)
        assert answer is not None and platform.proc is not None
        seen.update(p["pid"] for p in answer["processes"] if p["pid"])
        procs = platform_processes(platform.proc.pid, answer)
        seen.update(p.pid for p in procs)
        measure_memory(procs)
        apps_mem = [Proc(pid, "app") for pid in app_pids(answer)]
        measure_memory(apps_mem)

        print(f"measuring idle CPU over {args.idle:.0f}s...", flush=True)
        loadavg = Path("/proc/loadavg").read_text().split()[:3]
        before, t0 = cpu_ticks(p.pid for p in procs), time.monotonic()
        time.sleep(args.idle)
        after, elapsed = cpu_ticks(p.pid for p in procs), time.monotonic() - t0
        cpu: dict[str, float] = {}
        for proc in procs:
            if proc.pid in before and proc.pid in after:
                delta = (after[proc.pid] - before[proc.pid]) / CLK_TCK
                role = proc.role.removesuffix(" workers")
                cpu[role] = cpu.get(role, 0.0) + 100 * delta / elapsed
        return Figures(
            apps=len(apps),
            web=args.web,
            push_seconds=push_seconds,
            push_wall=push_wall,
            startup=startup,
            procs=procs,
            app_rss_kb=sum(p.rss_kb for p in apps_mem),
            app_pss_kb=sum(p.pss_kb for p in apps_mem),
            cpu=cpu,
            idle_seconds=elapsed,
            loadavg=" ".join(loadavg),
        )
    finally:
        with contextlib.suppress(Exception):
            platform.stop(signal.SIGINT)


def row(figure: str, value: str, target: str = "", verdict: str = "") -> None:
    print(f"{figure:<52}{value:>16}{target:>10}  {verdict}")


def check(value: float, limit: float) -> str:
    return "ok" if value < limit else "MISSED"


def report(f: Figures) -> None:
    s = f.startup
    print()
    print(f"{f.apps} apps x (web + worker), web = {f.web}; load average at idle: {f.loadavg}")
    row("figure", "value", "target")
    row(
        f"deploy {f.apps} apps (push + ps:scale), wall",
        f"{f.push_wall:.1f}s",
    )
    row("  per app, median (4 at a time)", f"{statistics.median(f.push_seconds):.2f}s")
    row(f"stop (SIGINT to exit, {2 * f.apps} processes)", f"{s.shutdown:.2f}s")
    row("ouro up -> supervisor ready (ouro.json)", f"{s.ready:.2f}s")
    row("ouro up -> first app answers via router", f"{s.first:.2f}s")
    row(f"ouro up -> all {f.apps} apps answer via router", f"{s.routed:.2f}s")
    row(f"ouro up -> all {2 * f.apps} processes up in ps", f"{s.ps_up:.2f}s")
    row(
        "ouro up -> all up",
        f"{s.all_up:.2f}s",
        f"< {TARGET_START:.0f}s",
        check(s.all_up, TARGET_START),
    )

    roles: dict[str, list[Proc]] = {}
    for proc in f.procs:
        roles.setdefault(proc.role, []).append(proc)
    print()
    row("memory (MB)", "RSS / PSS", "target")
    for role, members in roles.items():
        rss = sum(p.rss_kb for p in members) / 1024
        pss = sum(p.pss_kb for p in members) / 1024
        label = f"{role} ({len(members)})" if len(members) > 1 else role
        row(f"  {label}", f"{rss:.1f} / {pss:.1f}")
    rss = sum(p.rss_kb for p in f.procs) / 1024
    pss = sum(p.pss_kb for p in f.procs) / 1024
    row(
        f"platform's own processes ({len(f.procs)}), total",
        f"{rss:.1f} / {pss:.1f}",
        f"< {TARGET_MB:.0f}",
        f"{check(pss, TARGET_MB)} (PSS), {check(rss, TARGET_MB)} (RSS)",
    )
    row(
        f"  (apps' processes, for reference: {f.apps} apps)",
        f"{f.app_rss_kb / 1024:.0f} / {f.app_pss_kb / 1024:.0f}",
    )
    print()
    row(f"idle CPU over {f.idle_seconds:.0f}s (% of one core)", "")
    for role, value in f.cpu.items():
        row(f"  {role}", f"{value:.2f}%")
    total = sum(f.cpu.values())
    row(
        "platform's own processes, total",
        f"{total:.2f}%",
        f"< {TARGET_CPU:.0f}%",
        check(total, TARGET_CPU),
    )


def print_logs(root: Path, lines: int = 40) -> None:
    for log in (root / "work" / "up.log", root / "home" / "logs" / SYSTEM_APP / "ouro.log"):
        with contextlib.suppress(OSError):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            print(
                f"--- the last {len(tail)} lines of {log.name}:", *tail, sep="\n", file=sys.stderr
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=100, help="apps to run (default 100)")
    parser.add_argument("--pushers", type=int, default=4, help="concurrent pushes (default 4)")
    parser.add_argument("--idle", type=float, default=10.0, help="idle CPU window (default 10s)")
    parser.add_argument("--web", choices=sorted(PROCFILES), default="tiny", help="web process")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _on_sigterm)
    root = Path(tempfile.mkdtemp(prefix="ouro-bench-scale-"))
    # App processes run as their own unprivileged users: they must reach the slugs.
    os.chmod(root, 0o755)
    seen: set[int] = set()
    try:
        figures = run(args, root, seen)
    except BaseException:
        # The temporary home goes with the run: show what the platform logged first.
        print_logs(root)
        raise
    finally:
        sweep(root, seen)
        shutil.rmtree(root, ignore_errors=True)
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
