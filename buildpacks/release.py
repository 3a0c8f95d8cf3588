"""``bin/release`` output: the small YAML subset buildpacks emit.

Buildpacks print a document such as::

    ---
    config_vars:
      PYTHONUNBUFFERED: "true"
    default_process_types:
      web: npm start
    addons:
      - heroku-postgresql

Only these three top-level keys matter; each is a map of ``key: value``
lines or a list of ``- item`` lines (or ``{}`` / ``[]`` when empty). Other
top-level keys are skipped, as Heroku skips them. A full YAML parser would
be a dependency for twenty lines of grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from buildpacks.errors import BuildError

_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):\s*(.*)$")
_MAP_ENTRY = re.compile(r"^\s+(['\"]?[^'\":]+['\"]?):\s*(.*)$")
_LIST_ITEM = re.compile(r"^\s+-\s+(.*)$")
_EMPTY = {"", "{}", "[]", "~", "null"}


@dataclass(frozen=True)
class Release:
    """What one buildpack's ``bin/release`` declared."""

    config_vars: dict[str, str] = field(default_factory=dict)
    default_process_types: dict[str, str] = field(default_factory=dict)
    addons: tuple[str, ...] = ()


def parse_release(text: str) -> Release:
    """Parse ``bin/release`` output; raises ``BuildError`` naming a bad line."""
    sections: dict[str, dict[str, str]] = {"config_vars": {}, "default_process_types": {}}
    addons: list[str] = []
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped in ("---", "..."):
            continue
        top = _TOP_KEY.match(line)
        if top is not None:
            current = top.group(1)
            inline = top.group(2).strip()
            if current == "addons" and inline.startswith("["):
                addons.extend(_flow_list(inline, number))
            elif current in ("addons", *sections) and _strip_comment(inline) not in _EMPTY:
                raise BuildError(f"bin/release line {number}: cannot parse {line!r}")
            continue
        if current == "addons":
            item = _LIST_ITEM.match(line)
            if item is None:
                raise BuildError(f"bin/release line {number}: expected '- addon', got {line!r}")
            addons.append(_scalar(item.group(1)))
        elif current in sections:
            entry = _MAP_ENTRY.match(line)
            if entry is None:
                raise BuildError(f"bin/release line {number}: expected 'key: value', got {line!r}")
            sections[current][_scalar(entry.group(1))] = _scalar(entry.group(2))
    return Release(sections["config_vars"], sections["default_process_types"], tuple(addons))


def _flow_list(text: str, number: int) -> list[str]:
    body = _strip_comment(text)
    if not body.endswith("]"):
        raise BuildError(f"bin/release line {number}: unterminated list {text!r}")
    return [_scalar(item) for item in body[1:-1].split(",") if item.strip()]


def _strip_comment(text: str) -> str:
    return re.sub(r"\s+#.*$", "", text).strip()


def _scalar(text: str) -> str:
    """A YAML scalar's value: quotes removed, or a plain value without its comment."""
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return _unescape_double(value[1:-1])
    return _strip_comment(value)


def _unescape_double(body: str) -> str:
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(0)), body)
