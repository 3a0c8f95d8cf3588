"""Running a release cut by a config change, a rollback or an add-on.

A pending release is deployed and then marked succeeded. When its processes
do not come up it is marked failed and the config goes back to what runs:
the change is refused as a whole, and the running release goes on.
"""

from __future__ import annotations

from runtime.control import ControlError, request
from runtime.settings import Settings
from runtime.store import STATUS_PENDING, Release, Store

#: beyond the boot timeout and the grace period, what a deploy may take
DEPLOY_MARGIN = 30.0


class RolloutError(Exception):
    """The release's processes did not come up; nothing changed."""


def deploy(settings: Settings, app: str, version: int) -> None:
    """Ask the supervisor to run release `version` of `app`: it answers once the new
    web processes listen. Raises ControlError when they did not come up."""
    timeout = settings.boot_timeout + settings.grace_period + DEPLOY_MARGIN
    request(settings.control_socket, "deploy", timeout=timeout, app=app, version=version)


def roll_out(settings: Settings, store: Store, release: Release) -> None:
    if release.status != STATUS_PENDING:
        return  # nothing runs yet: the release is current as it is
    try:
        deploy(settings, release.app, release.version)
    except ControlError as e:
        store.abandon_release(release.app, release.version)
        raise RolloutError(
            f"v{release.version} did not start ({e}): nothing changed, the running release goes on"
        ) from None
    store.finish_release(release.app, release.version, succeeded=True)
