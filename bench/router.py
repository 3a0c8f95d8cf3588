"""Benchmark the router against nginx as a reverse proxy, on loopback, with wrk.

    python bench/router.py [--duration 5] [--connections 16] [--rounds 3] [--baseline DIR]
                           [--reuseport]

Backend: nginx serving static files (small page, 1 MB file). In front of it, in
the same run: nothing (direct), Ouro's router (one process; two processes
sharing one listening socket), nginx with `worker_processes 1` and `auto`
(upstream keepalive on). Load: wrk with browser-like request headers.

The host is shared and noisy: req/s through the same proxy swings by a fifth
from one run to the next. So every proxy runs throughout, and each of `--rounds N`
measures them one after the other (in reverse order every other round): a proxy
is compared with its reference measured next to it, and the ratios are reported
as their median and range over the rounds. `--baseline DIR` (another checkout,
e.g. from `git archive`) adds its router to the same rounds for a before/after;
`--reuseport` adds two routers with a SO_REUSEPORT socket each.

`cpu us` is the CPU time (user + system) of the proxy's processes during the
measured run, per request (for `direct`, the backend's). On a shared machine it
varies far less than req/s (wrk, the backend and the proxy compete for the same
cores), so it is the figure to compare; its ratio is against nginx measured in
the same rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.procfs import descendants, stat  # noqa: E402

#: microseconds per /proc clock tick
TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")
HOST = "bench.localhost"

WRK_LUA = """
wrk.headers["Host"] = "bench.localhost"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
wrk.headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
wrk.headers["Accept-Language"] = "en-GB,en;q=0.5"
wrk.headers["Accept-Encoding"] = "gzip, deflate, br, zstd"
wrk.headers["Referer"] = "http://bench.localhost/index.html"
wrk.headers["Cookie"] = "session=8f2a7c1d9e4b6a3f0c5d2e1b7a9c4f6e; theme=dark; _ga=GA1.1.123456789"
wrk.headers["Upgrade-Insecure-Requests"] = "1"
wrk.headers["Sec-Fetch-Dest"] = "document"
wrk.headers["Sec-Fetch-Mode"] = "navigate"
wrk.headers["Sec-Fetch-Site"] = "same-origin"
wrk.headers["Connection"] = "keep-alive"
"""

NGINX_BACKEND = """
worker_processes 1;
daemon off;
pid {tmp}/backend.pid;
error_log {tmp}/backend-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {tmp}/www;
    }}
}}
"""

NGINX_PROXY = """
worker_processes {workers};
daemon off;
pid {tmp}/proxy.pid;
error_log {tmp}/proxy-error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format heroku 'method=$request_method path="$request_uri" host=$host '
                      'fwd="$remote_addr" status=$status bytes=$body_bytes_sent';
    access_log {tmp}/proxy-access.log heroku buffer=64k;
    keepalive_requests 1000000;
    upstream app {{ server 127.0.0.1:{backend}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto http;
            proxy_set_header X-Forwarded-Port {port};
            proxy_set_header X-Request-Id $request_id;
            proxy_buffering off;
        }}
    }}
}}
"""


@dataclass
class Result:
    name: str
    workload: str
    #: the round it was measured in
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    mb_s: float
    #: the proxy's CPU time per request, in microseconds
    cpu_us: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


@contextlib.contextmanager
def running(argv: list[str], **kw: object) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, start_new_session=True, **kw)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def nginx(tmp: Path, name: str, conf: str) -> Iterator[list[int]]:
    """nginx in the foreground; yields its master's pid (its workers are below it)."""
    path = tmp / f"{name}.conf"
    path.write_text(conf)
    with running(["nginx", "-p", str(tmp), "-c", str(path)], stderr=subprocess.DEVNULL) as proc:
        yield [proc.pid]


@contextlib.contextmanager
def routers(tmp: Path, backend: int, port: int, count: int, root: Path = ROOT,
            reuseport: bool = False) -> Iterator[list[int]]:
    """`count` router processes sharing one listening socket, as the supervisor
    runs them, or (`reuseport`) each with its own SO_REUSEPORT socket; yields their pids."""
    routes = tmp / "routes.jsonl"
    snapshot = {"domain": "localhost", "apps": {"bench": {"hosts": [], "backends": [
        {"dyno": "web.1", "host": "127.0.0.1", "port": backend}]}}}
    routes.write_text(json.dumps(snapshot) + "\n")
    argv = ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh",
            sys.executable, "-m", "runtime.router", "--routes", str(routes)]
    with contextlib.ExitStack() as stack:
        sock = None
        pids = []
        for _ in range(count):
            if sock is None or reuseport:
                sock = stack.enter_context(socket.create_server(
                    ("127.0.0.1", port), backlog=1024, reuse_port=reuseport))
            fd = sock.fileno()
            pids.append(stack.enter_context(running(
                argv, cwd=root, pass_fds=(fd, 3), preexec_fn=lambda fd=fd: os.dup2(fd, 3),
                stdout=subprocess.DEVNULL)).pid)
        wait_listening(port)
        yield pids


def cpu_ticks(roots: Iterable[int]) -> int:
    """CPU ticks (user + system) used so far by the processes under `roots`."""
    total = 0
    for root in roots:
        for pid in descendants(root):
            with contextlib.suppress(OSError):
                total += stat(pid)[1]
    return total


def wrk(port: int, path: str, args: argparse.Namespace, lua: Path,
        proxy: list[int]) -> tuple[float, ...]:
    """(req/s, p50 ms, p99 ms, MB/s, CPU µs per request of the `proxy` processes)."""
    before = cpu_ticks(proxy)
    out = subprocess.run(
        ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.duration}s",
         "--latency", "-s", str(lua), f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True, timeout=args.duration + 30).stdout
    ticks = cpu_ticks(proxy) - before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    xfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    scale = {"B": 1e-6, "KB": 1e-3, "MB": 1.0, "GB": 1e3}
    mb_s = float(xfer.group(1)) * scale[xfer.group(2)] * 1.048576 if xfer else 0.0
    return rps, ms(lat["50"]), ms(lat["99"]), mb_s, ticks * TICK_US / max(count, 1)


def ms(value: str) -> float:
    num, unit = re.fullmatch(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(num) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


WORKLOADS = (("small", "/small.html"), ("1 MB", "/big.bin"))
#: each proxy's reference: the nginx setup it is held against
AGAINST = {"ouro x1": "nginx 1", "ouro x2": "nginx auto", "ouro x2 rp": "nginx auto",
           "base x1": "nginx 1", "base x2": "nginx auto"}


def measure(name: str, port: int, workload: str, path: str, args: argparse.Namespace,
            lua: Path, proxy: list[int], round: int) -> Result:
    """One wrk run through the proxy on `port`, whose processes are under `proxy`."""
    r = Result(name, workload, round, *wrk(port, path, args, lua, proxy))
    print(f"  {round:>2} {name:<12} {workload:<6} {r.rps:>9.0f} req/s {r.cpu_us:>7.1f} cpu us/req",
          file=sys.stderr)
    return r


def run(args: argparse.Namespace) -> list[Result]:
    """Every proxy runs throughout; each round measures them one after the other,
    in reverse order every other round, so a proxy and its reference run next to
    each other and the machine's drift falls on both alike."""
    with tempfile.TemporaryDirectory(prefix="ouro-bench-") as t, contextlib.ExitStack() as stack:
        tmp = Path(t)
        tmp.chmod(0o755)  # nginx's workers run as an unprivileged user when we are root
        (tmp / "www").mkdir()
        (tmp / "www" / "small.html").write_text("<!DOCTYPE html><p>Hello from Ouro!</p>\n" * 3)
        (tmp / "www" / "big.bin").write_bytes(os.urandom(1 << 20))
        lua = tmp / "headers.lua"
        lua.write_text(WRK_LUA)
        backend = free_port()
        proxies: dict[str, tuple[int, list[int]]] = {}
        proxies["direct"] = (backend, stack.enter_context(
            nginx(tmp, "backend", NGINX_BACKEND.format(tmp=tmp, port=backend))))
        wait_listening(backend)
        trees = [("ouro", ROOT)]
        if args.baseline is not None:
            trees.insert(0, ("base", args.baseline.resolve()))
        for count, workers in ((1, "1"), (2, "auto")):
            for label, root in trees:
                port = free_port()
                proxies[f"{label} x{count}"] = (port, stack.enter_context(
                    routers(tmp, backend, port, count, root)))
            if count == 2 and args.reuseport:
                port = free_port()
                proxies["ouro x2 rp"] = (port, stack.enter_context(
                    routers(tmp, backend, port, 2, reuseport=True)))
            port = free_port()
            conf = NGINX_PROXY.format(tmp=tmp, port=port, backend=backend, workers=workers)
            proxies[f"nginx {workers}"] = (port, stack.enter_context(
                nginx(tmp, f"proxy-{workers}", conf)))
            wait_listening(port)
        warm = argparse.Namespace(**{**vars(args), "duration": 1})
        for port, pids in proxies.values():
            for _, path in WORKLOADS:
                wrk(port, path, warm, lua, pids)
        order = [name for name in proxies if name != "direct"] + ["direct"]
        results = []
        for n in range(args.rounds):
            for workload, path in WORKLOADS:
                for name in order if n % 2 == 0 else reversed(order):
                    port, pids = proxies[name]
                    results.append(measure(name, port, workload, path, args, lua, pids, n))
        return results


def report(results: list[Result]) -> None:
    """Per proxy and load: the median round's figures, then the median and the range
    over rounds of its ratios to its reference measured in the same round."""
    by: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        by.setdefault((r.name, r.workload), []).append(r)
    print(f"{'proxy':<12} {'load':<6} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'MB/s':>8} "
          f"{'cpu us':>7}  against its reference, per round: median [range]")
    for (name, workload), rs in by.items():
        mid = sorted(rs, key=lambda r: r.rps)[len(rs) // 2]
        line = (f"{name:<12} {workload:<6} {mid.rps:>9.0f} {mid.p50_ms:>7.2f} {mid.p99_ms:>7.2f} "
                f"{mid.mb_s:>8.0f} {statistics.median(r.cpu_us for r in rs):>7.1f}")
        ref_name = AGAINST.get(name, "")
        refs = {r.round: r for r in by.get((ref_name, workload), [])}
        pairs = [(r, refs[r.round]) for r in rs if r.round in refs]
        if pairs:
            line += (f"  {ref_name}: {_spread([r.rps / ref.rps for r, ref in pairs], 'x')}, "
                     f"p50 {_spread([r.p50_ms - ref.p50_ms for r, ref in pairs], ' ms', '+.2f')}, "
                     f"cpu {_spread([r.cpu_us / ref.cpu_us for r, ref in pairs], 'x')}")
        print(line)


def _spread(values: list[float], unit: str, fmt: str = ".2f") -> str:
    mid = f"{statistics.median(values):{fmt}}{unit}"
    if len(values) < 2:
        return mid
    return f"{mid} [{min(values):{fmt}}..{max(values):{fmt}}]"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=int, default=5, help="seconds per run")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians reported")
    p.add_argument("--baseline", type=Path, help="a checkout whose router is measured too")
    p.add_argument("--reuseport", action="store_true",
                   help="also two routers with a SO_REUSEPORT socket each (ouro x2 rp)")
    args = p.parse_args()
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install -y nginx wrk", file=sys.stderr)
            return 1
    report(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
