"""The routing table: which app a Host names, and which of its backends is next.

The supervisor pushes whole snapshots (`RoutingTable.replace`); the router reads
the current one on every request, so a replacement never waits for, nor breaks,
requests already in flight. Backends that survive a replacement keep their
counters and pooled connections; removed ones are closed as they go idle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .upstream import Upstream

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}\.?|\[[0-9a-f:.]+\]", re.ASCII)


class RoutingError(ValueError):
    """A snapshot cannot be used as a routing table."""


class BadHost(ValueError):
    """A Host header that names nothing routable (missing, empty or malformed)."""


def normalize_host(raw: str) -> str:
    """Lower-case `raw`, drop its port and trailing dot; raise BadHost if invalid."""
    host = raw.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        name += "]"
        port = rest[1:] if rest.startswith(":") else rest
        if rest and not rest.startswith(":"):
            raise BadHost(raw)
    else:
        name, _, port = host.partition(":")
    if port and not port.isdigit():
        raise BadHost(raw)
    if not _HOSTNAME.fullmatch(name):
        raise BadHost(raw)
    return name.rstrip(".")


class Backend:
    """One web process: its address, its outstanding requests and idle connections."""

    __slots__ = ("app", "dyno", "host", "idle", "outstanding", "port", "removed")

    def __init__(self, app: str, dyno: str, host: str, port: int) -> None:
        self.app = app
        self.dyno = dyno
        self.host = host
        self.port = port
        self.outstanding = 0
        self.removed = False
        self.idle: list[Upstream] = []

    def take_idle(self) -> Upstream | None:
        idle = self.idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    def close_idle(self) -> None:
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()

    def __repr__(self) -> str:
        return f"Backend({self.app}/{self.dyno} {self.host}:{self.port})"


class AppRoute:
    """An app's backends, shared by least outstanding requests, ties in turn."""

    __slots__ = ("backends", "name", "turn")

    def __init__(self, name: str, backends: Sequence[Backend], turn: int = 0) -> None:
        self.name = name
        self.backends = tuple(backends)
        self.turn = turn

    def pick(self, exclude: Sequence[Backend] = ()) -> Backend | None:
        """The next backend to send a request to, or None if every one is excluded."""
        backends = self.backends
        n = len(backends)
        if n == 1 and not exclude:
            self.turn = 1  # as the search below would leave it
            return backends[0]
        best: Backend | None = None
        best_i = 0
        start = self.turn
        for k in range(n):
            i = (start + k) % n
            b = backends[i]
            if exclude and b in exclude:
                continue
            if best is None or b.outstanding < best.outstanding:
                best, best_i = b, i
                if b.outstanding == 0:
                    break
        if best is not None:
            self.turn = best_i + 1
        return best


class RoutingTable:
    """Host → app routing, replaced as a whole by the supervisor.

    `replace` must run on the router's event loop thread (it closes connections).
    """

    def __init__(self, snapshot: Mapping[str, Any] | None = None) -> None:
        self.domain = "localhost"
        self._hosts: dict[str, AppRoute] = {}
        self._apps: dict[str, AppRoute] = {}
        self._backends: dict[tuple[str, str, str, int], Backend] = {}
        if snapshot is not None:
            self.replace(snapshot)

    def lookup(self, host: str) -> AppRoute | None:
        """The app a normalized host names, or None."""
        return self._hosts.get(host)

    def backends(self) -> list[Backend]:
        return list(self._backends.values())

    def replace(self, snapshot: Mapping[str, Any]) -> None:
        """Install a new snapshot; raise RoutingError (keeping the old one) if invalid."""
        domain, apps = _parse(snapshot)
        old_backends = self._backends
        backends: dict[tuple[str, str, str, int], Backend] = {}
        hosts: dict[str, AppRoute] = {}
        routes: dict[str, AppRoute] = {}
        for name, (custom, addrs) in apps.items():
            members = []
            for dyno, host, port in addrs:
                key = (name, dyno, host, port)
                b = old_backends.get(key) or backends.get(key) or Backend(name, dyno, host, port)
                backends[key] = b
                members.append(b)
            previous = self._apps.get(name)
            route = AppRoute(name, members, previous.turn if previous else 0)
            routes[name] = route
            for h in custom:
                hosts.setdefault(h, route)
        for name, route in routes.items():
            # The app's own name wins over another app's custom domain.
            hosts[f"{name}.{domain}"] = route
        self.domain, self._hosts, self._apps, self._backends = domain, hosts, routes, backends
        for key, b in old_backends.items():
            if key not in backends:
                b.removed = True
                b.close_idle()


_Addr = tuple[str, str, int]


def _parse(snapshot: Mapping[str, Any]) -> tuple[str, dict[str, tuple[list[str], list[_Addr]]]]:
    if not isinstance(snapshot, Mapping):
        raise RoutingError("snapshot must be an object")
    domain = snapshot.get("domain", "localhost")
    apps = snapshot.get("apps", {})
    if not isinstance(domain, str) or not isinstance(apps, Mapping):
        raise RoutingError("snapshot needs a string 'domain' and an object 'apps'")
    try:
        domain = normalize_host(domain)
    except BadHost:
        raise RoutingError(f"bad domain {domain!r}") from None
    return domain, {str(name): _parse_app(str(name), app) for name, app in apps.items()}


def _parse_app(name: str, app: Any) -> tuple[list[str], list[_Addr]]:
    if not isinstance(app, Mapping):
        raise RoutingError(f"app {name}: must be an object")
    hosts, backends = app.get("hosts", []), app.get("backends", [])
    if not isinstance(hosts, list) or not isinstance(backends, list):
        raise RoutingError(f"app {name}: 'hosts' and 'backends' must be lists")
    try:
        custom = [normalize_host(h) for h in hosts if isinstance(h, str)]
    except BadHost as e:
        raise RoutingError(f"app {name}: bad host {e}") from None
    if len(custom) != len(hosts):
        raise RoutingError(f"app {name}: hosts must be strings")
    addrs: list[_Addr] = []
    for b in backends:
        if not isinstance(b, Mapping):
            raise RoutingError(f"app {name}: backend must be an object")
        dyno, host, port = b.get("dyno"), b.get("host", "127.0.0.1"), b.get("port")
        if not isinstance(dyno, str) or not isinstance(host, str):
            raise RoutingError(f"app {name}: backend needs string 'dyno' and 'host'")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise RoutingError(f"app {name}: backend {dyno} has bad port {port!r}")
        addrs.append((dyno, host, port))
    return custom, addrs
