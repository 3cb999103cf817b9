"""A reporter written by a thread of its own: the thread that reads the ring buffer hands lines over and goes on.

Writing can block: an fsync when a file rotates (tens to hundreds of milliseconds on a busy disk), a pipe whose
reader is slow, a disk being written back. Done on the reading thread, every such stall leaves the kernel's ring
buffer filling, and past its size events are lost. `ThreadedReporter` wraps a reporter (`reporters.Reporter`):
`write` keeps the line in a local list; `flush` (once per batch read) or 1 MiB of lines hand the list over to
the writer thread, which writes the lines to the wrapped reporter and flushes it. The handoff is bounded
(`max_bytes` of lines not written yet): when the output is that far behind, the reading thread waits for room
(`waits`, `waited_s`) rather than holding an unbounded amount of memory; nothing is dropped here.

What the wrapped reporter raises on the writer thread (a `ReporterError` on a full disk: the lines stay in its
backlog) is handed back: the next `write` or `flush` on the reading thread raises the latest one, and the agent
reports it as it would a synchronous error. `close` writes everything queued, closes the wrapped reporter and
stops the thread; `reopen` does its I/O with the writer thread out of the way.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from opencws.agent.line_writer import ReporterError

DEFAULT_MAX_BYTES = 32 << 20
"""Lines handed over and not written yet, at most (about 0.1 s of 50,000 events/s of 7.5 KB lines)."""

CLOSE_TIMEOUT_S = 30.0
"""How long `close` waits for a blocked output before leaving it behind."""

HANDOFF_BYTES = 1 << 20
"""Lines kept by the reading thread before they are handed over without waiting for `flush` (each handoff wakes
the writer thread: about 140 lines of 7.5 KB, one `writev` of at most 1 MiB)."""


class ThreadedReporter:
    def __init__(self, inner: Any, *, max_bytes: int = DEFAULT_MAX_BYTES):
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.inner = inner
        self.name: str = inner.name
        self.max_bytes = max_bytes
        self.waits = 0
        """Times the reading thread waited for the writer thread to make room."""
        self.waited_s = 0.0
        self._local: list[bytes | tuple[bytes, ...]] = []
        self._local_sizes: list[int] = []
        """Each kept line's length with its newline."""
        self._local_bytes = 0
        self._queue: list[tuple[list[bytes | tuple[bytes, ...]], list[int], int]] = []
        """Handoffs not written yet: (lines, their sizes, their bytes)."""
        self._queued_bytes = 0
        """Bytes handed over and not written yet (those being written included)."""
        self._flush = False
        self._closing = False
        self._error: Exception | None = None
        self._cond = threading.Condition()
        self._io = threading.Lock()
        """Held while the wrapped reporter is used (by the writer thread, `reopen`, `close`)."""
        self._thread = threading.Thread(target=self._run, name=f"opencws output {self.name}", daemon=True)
        self._thread.start()

    @property
    def native_id(self) -> int | None:
        """The writer thread's id (for its CPU time)."""
        return self._thread.native_id

    @property
    def ident(self) -> int | None:
        return self._thread.ident

    @property
    def writing(self) -> bool:
        """The writer thread runs (until `close`, or after a `close` that left a blocked output behind)."""
        return self._thread.is_alive()

    # ------------------------------------------------------------------ the reading thread

    def write(self, line: bytes) -> None:
        """Keep the line (always: an error raised here is an earlier one of the output, the line is queued)."""
        self._local.append(line)
        self._local_sizes.append(n := len(line) + 1)
        self._local_bytes += n
        if self._local_bytes >= HANDOFF_BYTES:
            self._hand_over(False)
        if self._error is not None:
            self._raise_error()

    def write_parts(self, parts: tuple[bytes, ...]) -> None:
        """A line given as pieces (written as pieces by the writer thread: nobody copies them in user space)."""
        self._local.append(parts)
        self._local_sizes.append(n := sum(map(len, parts)) + 1)
        self._local_bytes += n
        if self._local_bytes >= HANDOFF_BYTES:
            self._hand_over(False)
        if self._error is not None:
            self._raise_error()

    def flush(self) -> None:
        """Hand the lines over and have them written and flushed (without waiting for it)."""
        self._hand_over(True)
        if self._error is not None:
            self._raise_error()

    def wait_written(self, timeout: float | None = None) -> bool:
        """Until every line handed over so far is written and flushed (False on timeout)."""
        self._hand_over(True)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queued_bytes or self._flush:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def reopen(self) -> None:
        """The wrapped reporter's `reopen` (a file moved away by logrotate), once what was handed over is
        written; nothing for an output that has none (a stream)."""
        reopen = getattr(self.inner, "reopen", None)
        if reopen is None:
            return
        self.wait_written()
        with self._io:
            reopen()

    def close(self, timeout: float | None = CLOSE_TIMEOUT_S) -> None:
        """Write everything queued, close the wrapped reporter, stop the thread. An output still blocked after
        `timeout` seconds (a pipe nobody reads) is left behind: `ReporterError` says how much was not written,
        and the agent can exit."""
        if self._closing:
            return
        self._hand_over(True)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise ReporterError(self.name, None, f"the output is blocked: {self._queued_bytes:,} bytes of lines "
                                                 f"not written after {timeout:g} s at close")
        with self._io:
            self.inner.close()
        if self._error is not None:
            self._raise_error()

    def stats(self) -> dict[str, Any]:
        stats = dict(self.inner.stats()) if hasattr(self.inner, "stats") else {"name": self.name}
        stats.update(queued_bytes=self._queued_bytes + self._local_bytes, handoff_waits=self.waits)
        return stats

    def __getattr__(self, name: str) -> Any:
        """The wrapped reporter's counters (`lines_written`, `dropped`...), read as they are now."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _hand_over(self, flush: bool) -> None:
        lines, sizes, n = self._local, self._local_sizes, self._local_bytes
        if not lines and not flush:
            return
        self._local, self._local_sizes, self._local_bytes = [], [], 0
        with self._cond:
            if self._closing:
                raise RuntimeError(f"{self.name}: written to after close")
            if self._queued_bytes and self._queued_bytes + n > self.max_bytes:
                self.waits += 1
                t0 = time.monotonic()
                while self._queued_bytes and self._queued_bytes + n > self.max_bytes:
                    self._cond.wait(0.1)
                self.waited_s += time.monotonic() - t0
            if lines:
                self._queue.append((lines, sizes, n))
                self._queued_bytes += n
            self._flush = self._flush or flush
            self._cond.notify_all()

    def _raise_error(self) -> None:
        with self._cond:
            error, self._error = self._error, None
        if error is not None:
            raise error

    # ------------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        inner = self.inner
        many = getattr(inner, "write_lines", None)
        """A `LineWriter` takes a whole handoff at once, lines given as pieces included (the lines it cannot
        write stay in its backlog); another reporter gets each line joined."""
        while True:
            with self._cond:
                while not self._queue and not self._flush and not self._closing:
                    self._cond.wait()
                batches, self._queue = self._queue, []
                flush, closing = self._flush, self._closing
            written = 0
            with self._io:
                for lines, sizes, n in batches:
                    written += n
                    try:
                        if many is not None:
                            many(lines, sizes)
                        else:
                            for line in lines:
                                try:
                                    inner.write(line if type(line) is bytes else b"".join(line))
                                except Exception as exc:
                                    self._error = exc
                    except Exception as exc:  # kept in the reporter's backlog or counted as dropped by it
                        self._error = exc
                if flush or closing:
                    try:
                        inner.flush()
                    except Exception as exc:
                        self._error = exc
            with self._cond:
                self._queued_bytes -= written
                if flush and not self._queue:
                    self._flush = False
                self._cond.notify_all()
                if closing and not self._queue:
                    return
