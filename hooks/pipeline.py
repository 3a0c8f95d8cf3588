"""The receive pipeline: a push to `main`/`master` becomes a running release.

gitd's git workers call `Pipeline.on_push` after the pack is stored and before
the branch moves (`gitd.hooks.PushHook`). The stages (`hooks.stages`) run in
order; the first failure rejects the push with its reason, removes the new
slug, marks the release failed, and leaves the running release alone. One
deploy per app at a time: a second push waits, saying so.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from hooks.slugs import app_dir, archive_later, new_slug_id, prune
from hooks.stages import Log, Push, StageError, discard_slug, stages_for
from runtime.control import ControlError, request
from runtime.names import SYSTEM_APP
from runtime.settings import Settings
from runtime.store import Store
from runtime.users import AppUser, needs_drop

log = logging.getLogger(__name__)


class Pipeline:
    """A `gitd.hooks.PushHook`: builds and deploys each push of a deployable branch."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.load()
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.settings.db_path)
        return self._store

    def on_push(
        self, app: str, old_sha: str, new_sha: str, ref: str, log: Log, pusher: str
    ) -> str | None:
        with self._deploy_lock(app, log):
            push = self._start(app, new_sha, pusher, log)
            try:
                for stage in stages_for(app):
                    started = time.perf_counter()
                    stage.run(push)
                    push.timings[stage.name] = time.perf_counter() - started
            except (StageError, OSError) as e:
                self._failed(push, e)
                return str(e) if isinstance(e, StageError) else f"deploy failed: {e}"
            self._succeeded(push)
        return None

    def _start(self, app: str, sha: str, pusher: str, log: Log) -> Push:
        settings = self.settings
        record = self.store.app(app)
        # The platform is built by the platform's user: it is the code that runs as it.
        system = app == SYSTEM_APP
        user = AppUser.for_app(app, record.uid) if needs_drop() and not system else None
        slugs = app_dir(settings.slugs_dir / app, user)
        app_dir(settings.cache_dir / app, user)
        slug_id = new_slug_id(sha)
        return Push(settings, self.store, app, sha, pusher, log, user, slug_id, slugs / slug_id)

    def _failed(self, push: Push, error: Exception) -> None:
        discard_slug(push)
        if push.release is not None:
            self.store.finish_release(push.app, push.release.version, succeeded=False)
        self._emit(push.app, f"Deploy {push.sha[:7]} by {push.pusher} failed: {error}")

    def _succeeded(self, push: Push) -> None:
        if push.release is None:
            return
        self.store.finish_release(push.app, push.release.version, succeeded=True)
        self._emit(push.app, f"Deploy {push.sha[:7]} by {push.pusher}")
        self._emit(push.app, f"Release v{push.release.version} created by {push.pusher}")
        stages = ", ".join(f"{name} {sec * 1000:.0f}ms" for name, sec in push.timings.items())
        self._emit(push.app, f"Build v{push.release.version} stages: {stages}")
        archive_later(push.slug_dir)
        keep = self.store.slugs_in_use(push.app, self.settings.keep_releases)
        prune(push.slug_dir.parent, keep | {push.slug_id})

    def _emit(self, app: str, text: str) -> None:
        with contextlib.suppress(ControlError):
            request(self.settings.control_socket, "emit", app=app, source="ouro[api]", text=text)

    @contextlib.contextmanager
    def _deploy_lock(self, app: str, log: Log) -> Iterator[None]:
        locks = self.settings.run_dir / "locks"
        locks.mkdir(mode=0o700, exist_ok=True)
        with Path(locks / f"{app}.lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log(f"-----> Another deploy of {app} is in progress: waiting for it to finish...")
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield
