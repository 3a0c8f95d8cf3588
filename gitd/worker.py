"""`python -m gitd.worker FD`: one git worker process of gitd.

gitd keeps one of these ready and starts more while requests overlap
(`gitd.workers.WorkerPool`): a fresh Python per request costs about 0.1 s, and
threads in gitd's interpreter were slower than git for concurrent pushes. Each
worker waits on its control socket (a SOCK_SEQPACKET socketpair with gitd,
inherited as FD) for a job: one JSON message carrying two file descriptors,
the read end of the client's stdin pipe and the write end of its stdout pipe.
It serves the git service over them with dulwich, closes both, and answers
with one JSON message `{"status": N, "error": TEXT|null}`. EOF on the control
socket means stop.

gitd itself imports this module (`Job`, `remove_orphans`) and need not pay for
the serving side of dulwich and our handlers (some 2.5 MB): they are imported by
`preload`, in the worker, and by the functions that use them, not at the top.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitd.hooks import HookError, PushHook, load_hook
from gitd.repos import ensure_repo

if TYPE_CHECKING:
    from dulwich.protocol import Protocol
    from dulwich.repo import Repo
    from dulwich.server import Handler

log = logging.getLogger(__name__)

RECEIVE, UPLOAD = "git-receive-pack", "git-upload-pack"
#: git's status for a fatal error
FATAL = 128
MAX_JOB = 64 * 1024
#: a receiving worker's temporary pack is named this, its pid, `_` and a random part
TMP_PREFIX = "tmp_pack_"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Job:
    service: str
    repo: str
    app: str
    hook: str
    #: the name of the key that pushes: the author of the release it makes
    pusher: str = ""

    def encode(self) -> bytes:
        return json.dumps(self.__dict__).encode()

    @classmethod
    def decode(cls, data: bytes) -> Job:
        fields: dict[str, Any] = json.loads(data)
        return cls(**fields)


def preload() -> None:
    """Import what serving needs before the first request, not during it."""
    for module in ("dulwich.repo", "gitd.receive", "gitd.upload"):
        importlib.import_module(module)


def run_job(job: Job, stdin_fd: int, stdout_fd: int, hooks: dict[str, PushHook]) -> dict[str, Any]:
    """Serve one git request over the two pipe ends; closes both."""
    from dulwich.errors import GitProtocolError, HangupException
    from dulwich.protocol import Protocol
    from dulwich.repo import Repo

    ensure_repo(Path(job.repo))
    with open(stdin_fd, "rb", buffering=1 << 16) as stdin, open(stdout_fd, "wb", 0) as stdout:
        repo = Repo(job.repo)
        try:
            handler = _handler(job, repo, Protocol(stdin.read, _writer(stdout.fileno())), hooks)
            handler.handle()
        except HangupException:
            return {"status": FATAL, "error": None}  # the client went away; nothing to say
        except (GitProtocolError, HookError, BrokenPipeError) as e:
            log.warning("%s %s: %s", job.service, job.app, e)
            return {"status": FATAL, "error": str(e)}
        finally:
            repo.close()
    return {"status": 0, "error": None}


def _handler(job: Job, repo: Repo, proto: Protocol, hooks: dict[str, PushHook]) -> Handler:
    from dulwich.errors import GitProtocolError
    from dulwich.server import BackendRepo, DictBackend

    from gitd.receive import OuroReceivePackHandler
    from gitd.upload import OuroUploadPackHandler

    repos: dict[str, BackendRepo] = {"/": repo}
    backend = DictBackend(repos)
    if job.service == RECEIVE:
        if job.hook not in hooks:
            hooks[job.hook] = load_hook(job.hook)
        return OuroReceivePackHandler(
            backend, ["/"], proto, job.app, hooks[job.hook], job.pusher
        )
    if job.service == UPLOAD:
        return OuroUploadPackHandler(backend, ["/"], proto)
    raise GitProtocolError(f"unknown git service {job.service}")


def _writer(fd: int) -> Any:
    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    return write


def serve(control: socket.socket) -> int:
    """Take jobs until gitd closes the control socket."""
    hooks: dict[str, PushHook] = {}
    while True:
        data, fds, _, _ = socket.recv_fds(control, MAX_JOB, 2)
        if not data:
            for fd in fds:
                os.close(fd)
            return 0
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            control.sendall(json.dumps({"status": FATAL, "error": "bad job"}).encode())
            continue
        result = run_job(Job.decode(data), fds[0], fds[1], hooks)
        gc.collect()  # a push's pack index and object sets go now, not at the next push
        control.sendall(json.dumps(result).encode())


def _ignore(signum: int, frame: object) -> None:
    pass


def remove_orphans(objects_dir: str) -> list[str]:
    """Remove the temporary packs of receivers that died (killed mid-push)."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(objects_dir):
            pid = _receiver_pid(name)
            if pid is not None and not _alive(pid):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(objects_dir, name))
                removed.append(name)
    return removed


def _receiver_pid(name: str) -> int | None:
    if not name.startswith(TMP_PREFIX):
        return None
    pid = name[len(TMP_PREFIX) :].partition("_")[0]
    return int(pid) if pid.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str]) -> int:
    # Die with gitd, whatever the way it went.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:
        return 0
    # The supervisor signals gitd's whole group; a worker finishes its job and
    # stops when gitd closes its socket. A handler, not SIG_IGN: what a hook
    # spawns must not inherit an ignored SIGTERM.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _ignore)
    preload()
    control = socket.socket(fileno=int(argv[1]))
    try:
        return serve(control)
    finally:
        control.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main(sys.argv))
