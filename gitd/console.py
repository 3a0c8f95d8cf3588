"""The client's terminal as a command sees it, usable from a worker thread.

asyncssh objects belong to the event loop: a command running in a thread
reaches them only through `call_soon_threadsafe` / `run_coroutine_threadsafe`.
Coroutine commands (`run`, `logs`) run on the loop and use `process` directly.
"""

from __future__ import annotations

import asyncio

import asyncssh


class Console:
    def __init__(
        self, process: asyncssh.SSHServerProcess[bytes], loop: asyncio.AbstractEventLoop
    ) -> None:
        self._process = process
        self._loop = loop
        # `ssh -t` puts the client's terminal in raw mode: a bare LF would not return
        # the cursor, so text lines end in CR LF there (a pty's ONLCR, which we lack).
        self._newline = b"\r\n" if process.get_terminal_type() is not None else b"\n"

    @property
    def process(self) -> asyncssh.SSHServerProcess[bytes]:
        """The SSH session itself, for coroutine commands on the event loop."""
        return self._process

    def out(self, text: str) -> None:
        """Write to the client's stdout (from any thread)."""
        self._write(self._process.stdout, text)

    def err(self, text: str) -> None:
        """Write to the client's stderr (from any thread)."""
        self._write(self._process.stderr, text)

    def fail(self, message: str) -> int:
        """The one-line error of a refused command; returns its exit status."""
        self.err(f" !    {message}\n")
        return 1

    def read_all(self, limit: int = 1 << 20) -> bytes:
        """All of stdin up to EOF (from a worker thread, never from the loop)."""
        future = asyncio.run_coroutine_threadsafe(self._read(limit), self._loop)
        return future.result()

    async def _read(self, limit: int) -> bytes:
        data = b""
        while len(data) <= limit:
            chunk = await self._process.stdin.read(65536)
            if not chunk:
                break
            data += chunk
        return data

    def _write(self, stream: asyncssh.SSHWriter[bytes], text: str) -> None:
        data = text.encode("utf-8").replace(b"\n", self._newline)
        if self._loop.is_running() and not _on_loop(self._loop):
            self._loop.call_soon_threadsafe(stream.write, data)
        else:
            stream.write(data)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
