"""The receive pipeline's hook point: what runs before a deployable branch moves.

A push to `main`/`master` whose pack is stored and whose ref passed the ref
policy is handed to a `PushHook` before the ref moves (DESIGN §2, "A push, end
to end"). The hook says yes (`None`) or no (the rejection reason the client
sees as `! [remote rejected] main -> main (reason)`), and reports progress
through `log`, whose lines reach the client live as `remote: ...`.

The hook runs inside a git worker process (`gitd.worker`), so it may block.
Which hook runs is named by a spec: a built-in name from `BUILTIN_HOOKS` or
`package.module:attribute` (a class or factory taking no arguments).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol

#: the environment variable that names the hook gitd's workers run
HOOK_ENV = "OURO_GIT_HOOK"
DEFAULT_HOOK = "hooks.pipeline:Pipeline"

Log = Callable[[str], None]


class HookError(Exception):
    """A hook spec that names nothing usable."""


class PushHook(Protocol):
    def on_push(
        self, app: str, old_sha: str, new_sha: str, ref: str, log: Log, pusher: str
    ) -> str | None:
        """Decide on moving `ref` of `app` from `old_sha` to `new_sha` (hex; zeros: none),
        pushed by the key named `pusher`.

        Returns None to let the ref move, or the one-line reason it may not.
        """
        ...


class AcceptPushes:
    """The default until the receive pipeline exists: every push is accepted."""

    def on_push(
        self, app: str, old_sha: str, new_sha: str, ref: str, log: Log, pusher: str
    ) -> str | None:
        return None


BUILTIN_HOOKS: dict[str, Callable[[], PushHook]] = {"accept": AcceptPushes}


def load_hook(spec: str) -> PushHook:
    """The hook a spec names; raises HookError when it names nothing usable."""
    if spec in BUILTIN_HOOKS:
        return BUILTIN_HOOKS[spec]()
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        known = ", ".join(sorted(BUILTIN_HOOKS))
        raise HookError(f"unknown git hook {spec!r}: use one of {known} or MODULE:NAME")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as e:
        raise HookError(f"cannot load git hook {spec!r}: {e}") from None
    hook = factory()
    if not callable(getattr(hook, "on_push", None)):
        raise HookError(f"git hook {spec!r} has no on_push method")
    return hook  # type: ignore[no-any-return]
