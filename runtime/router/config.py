"""The router's settings: one frozen object, validated when made."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RouterConfig:
    #: the public port, reported to apps as X-Forwarded-Port
    port: int = 8080
    #: seconds a backend has to start answering before H12
    timeout: float = 30.0
    #: seconds in-flight requests get to finish when the router stops
    grace: float = 30.0
    #: seconds an idle client keep-alive connection is kept open
    keepalive_timeout: float = 75.0
    #: seconds an idle pooled backend connection is kept open
    backend_idle_timeout: float = 30.0
    #: idle pooled connections kept per backend; more are closed when released
    backend_idle_max: int = 64

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is not a TCP port")
        for name in ("timeout", "grace", "keepalive_timeout", "backend_idle_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.backend_idle_max < 0:
            raise ValueError("backend_idle_max must not be negative")
