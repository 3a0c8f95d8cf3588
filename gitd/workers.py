"""gitd's bounded pool of git worker processes (`gitd.worker`).

Per request the pool hands an idle worker two pipe ends with `send_fds`: the
read end of a pipe that `_feed` fills from the channel's stdin, and the write
end of a pipe that `_drain` copies to the channel's stdout. Both copy loops are
explicit and run on the event loop (asyncssh's `redirect()` corrupted large
pushes; one socketpair for both directions hung asyncio). The worker answers on
its control socket when done.

One worker is started ahead of the first request; while requests overlap, more
are started, up to `size` (a request waits while that many are busy). A worker
done with its request stops if another one is idle: each idle worker is some
25 MB. A worker that dies is dropped, and the temporary pack it left is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from gitd.worker import FATAL, MAX_JOB, Job, remove_orphans

log = logging.getLogger(__name__)

CHUNK = 1 << 18
#: pipes of 1 MiB instead of 64 KiB: fewer wake-ups per pushed megabyte
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
#: seconds a worker has to exit once its socket is closed
STOP_TIMEOUT = 5.0
_libc = ctypes.CDLL(None)
#: glibc's mallopt parameter: allocations from this size up get their own mapping
_M_MMAP_THRESHOLD = -3


def bound_heap() -> None:
    """Keep the copy loops' large buffers off gitd's heap. glibc raises its mapping
    threshold to the size of each mapped buffer freed, after which a push's
    window-sized buffers come from the heap, which fragments and stays grown: a
    fixed threshold gives each one back when it is freed (gitd's peak during a
    push: 3 MB lower). `WorkerPool` trims what is left when no request runs."""
    _libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)


@dataclass(frozen=True)
class JobResult:
    status: int
    error: str | None = None


class Worker:
    """One `python -m gitd.worker` process and gitd's end of its control socket."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "gitd.worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        ours.setblocking(False)
        self.sock = ours
        self.dead = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, job: Job) -> tuple[int, int]:
        """Hand the job to the worker; returns gitd's pipe ends (to stdin, from stdout)."""
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        for fd in (in_w, out_r):
            with contextlib.suppress(OSError):  # the default size still works
                fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)
            os.set_blocking(fd, False)
        try:
            socket.send_fds(self.sock, [job.encode()], [in_r, out_w])
        except OSError:
            os.close(in_w)
            os.close(out_r)
            self.dead = True
            raise
        finally:
            os.close(in_r)
            os.close(out_w)
        return in_w, out_r

    async def result(self) -> JobResult:
        """The worker's answer; a worker that died answers FATAL."""
        loop = asyncio.get_running_loop()
        try:
            data = await loop.sock_recv(self.sock, MAX_JOB)
        except OSError:
            data = b""
        if not data:
            self.dead = True
            return JobResult(FATAL, "the git worker died")
        fields = json.loads(data)
        return JobResult(int(fields["status"]), fields.get("error"))

    async def stop(self) -> None:
        self.sock.close()
        try:
            await asyncio.wait_for(asyncio.to_thread(self.proc.wait), STOP_TIMEOUT)
        except TimeoutError:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait)


class WorkerPool:
    """Up to `size` workers; `run` serves one git request on an idle one."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._idle: asyncio.Queue[Worker] = asyncio.Queue()
        self._busy = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._workers: set[Worker] = set()

    def start(self) -> None:
        self._add()

    async def run(
        self, job: Job, stdin: asyncssh.SSHReader[bytes], stdout: asyncssh.SSHWriter[bytes]
    ) -> JobResult:
        worker = await self._take()
        self._busy += 1
        self._quiet.clear()
        done = False
        try:
            in_w, out_r = worker.start(job)
            feed = asyncio.create_task(_feed(stdin, in_w))
            try:
                await _drain(out_r, stdout)
                result = await worker.result()
                done = True
            finally:
                feed.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await feed
        except OSError as e:
            log.warning("git worker %d unusable: %s", worker.pid, e)
            result, done = JobResult(FATAL, "no git worker available"), True
        finally:
            if done:
                self._release(worker, job)
            else:  # cancelled: the worker still owes its answer
                self._spawn_task(self._settle(worker, job))
        return result

    async def close(self, timeout: float) -> None:
        """Let running requests finish (up to `timeout` s), then stop every worker."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), timeout)
        await asyncio.gather(*(w.stop() for w in self._workers))
        self._workers.clear()

    def _add(self) -> None:
        worker = Worker()
        self._workers.add(worker)
        self._idle.put_nowait(worker)

    async def _take(self) -> Worker:
        while True:
            if self._idle.empty() and len(self._workers) < self._size:
                self._add()
            worker = await self._idle.get()
            if worker.proc.poll() is None:
                return worker
            self._spawn_task(self._drop(worker, None))

    async def _settle(self, worker: Worker, job: Job) -> None:
        await worker.result()
        self._release(worker, job)

    def _release(self, worker: Worker, job: Job) -> None:
        self._busy -= 1
        if self._busy == 0:
            self._quiet.set()
            # glibc keeps the heap that the requests' buffers freed (some 25 MB after
            # three concurrent pushes), for good unless told: give it back now.
            _libc.malloc_trim(0)
        if worker.dead:
            self._spawn_task(self._drop(worker, job))
        elif self._idle.empty():
            self._idle.put_nowait(worker)
        else:  # one idle worker is enough until requests overlap again
            self._workers.discard(worker)
            self._spawn_task(worker.stop())

    async def _drop(self, worker: Worker, job: Job | None) -> None:
        """Forget a worker that died, remove what it left, and keep one ready."""
        log.warning("git worker %d died", worker.pid)
        self._workers.discard(worker)
        worker.proc.kill()
        await worker.stop()
        if job is not None:
            remove_orphans(str(Path(job.repo) / "objects"))
        if not self._workers:
            self._add()

    def _spawn_task(self, coro: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _feed(stdin: asyncssh.SSHReader[bytes], fd: int) -> None:
    """Client -> worker, until the client's EOF (closing the pipe is the worker's EOF).

    Each read takes up to a whole receive window. asyncssh grants the client a new
    window each time it hands buffered data on to the reader, whatever it still holds:
    with smaller reads, what it held for a worker slower than the client grew with the
    push (22 MB of a 50 MB push); reading a window at a time keeps it within one.
    """
    size = max(CHUNK, stdin.channel.get_recv_window())
    try:
        while data := await stdin.read(size):
            await _write(fd, data)
    except (asyncssh.Error, BrokenPipeError, ConnectionError):
        pass  # the worker is done reading, or the client is gone: both end the copy
    finally:
        os.close(fd)


async def _drain(fd: int, stdout: asyncssh.SSHWriter[bytes]) -> None:
    """Worker -> client, until the worker closes its end."""
    try:
        while data := await _read(fd):
            stdout.write(data)
            await stdout.drain()
    except (asyncssh.Error, BrokenPipeError, ConnectionError):
        pass  # the client is gone; the worker's next write fails and it stops
    finally:
        os.close(fd)


async def _read(fd: int) -> bytes:
    while True:
        try:
            return os.read(fd, CHUNK)
        except BlockingIOError:
            await _ready(fd, readable=True)


async def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            await _ready(fd, readable=False)


async def _ready(fd: int, readable: bool) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    add, remove = (
        (loop.add_reader, loop.remove_reader) if readable else (loop.add_writer, loop.remove_writer)
    )
    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    add(fd, wake)
    try:
        await ready
    finally:
        remove(fd)
