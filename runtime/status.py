"""The platform's status as people read it (`ouro status`, `ssh platform status`)."""

from __future__ import annotations

from typing import Any

from runtime.settings import Settings


def describe(answer: dict[str, Any], settings: Settings) -> str:
    """Text for a supervisor `status` answer."""
    lines = [
        f"{answer['version']} is up at {settings.home}",
        f"SSH:   {settings.bind}:{answer['ssh_port']}",
        f"HTTP:  {settings.bind}:{answer['http_port']}",
        "",
        "=== Processes",
    ]
    for proc in answer["processes"]:
        pid = f"pid {proc['pid']}" if proc["pid"] else ""
        lines.append(f"{proc['app']}.{proc['name']}: {proc['state']} {pid}".rstrip())
    return "\n".join(lines)
