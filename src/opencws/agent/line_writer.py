"""Buffered JSON-lines output that survives write errors: what could not be written waits in a bounded backlog.

Both the stream and the file reporters write through `LineWriter`. Lines are kept in memory until a flush (or
until `buffer_bytes` of them are waiting) and written with as few system calls as possible. When a write fails
(disk full, I/O error, a pipe closed), the lines stay queued, `write` raises `ReporterError`, and the next
`write` or `flush` tries again: once space is back, everything queued goes out in order. The queue holds at
most `backlog` lines; a line that finds it full is counted in `dropped` and reported, never silently lost.

Lines are queued as given, a line either bytes or a tuple of pieces (a cached event head, its date...), and
written with their newlines by `writev` where the output has a file descriptor: the pieces are never joined in
user space, the kernel copies each one once into the output.

Only whole lines reach the output: the bytes of a line cut short by a full disk are truncated away (or, where
truncation is refused, completed by the next attempt). Not thread-safe: one pipeline thread writes.
"""

from __future__ import annotations

import errno as errno_codes
from collections import deque
from itertools import islice

DEFAULT_BACKLOG = 10_000
"""Lines kept in memory while the output refuses them (at ~1 KiB a CWS event: ~10 MB at most)."""

DEFAULT_BUFFER_BYTES = 64 * 1024
"""Bytes queued before `write` writes them out without waiting for `flush`."""

_CHUNK = 1 << 20
"""At most this many bytes per write system call."""
_IOV_MAX = 1024
"""At most this many buffers per `writev` (the kernel's IOV_MAX)."""
_NL = b"\n"


class ReporterError(Exception):
    """An output could not take lines. The reporter stays usable; the message says what was kept or dropped."""

    def __init__(self, reporter: str, errno: int | None, message: str):
        super().__init__(reporter, errno, message)
        self.reporter = reporter
        self.errno = errno
        self.message = message

    def __str__(self) -> str:
        return f"{self.reporter}: {self.message}"


def describe_os_error(e: OSError) -> str:
    """`No space left on device (ENOSPC)`: the text and the symbolic name, for a message a person acts on."""
    code = errno_codes.errorcode.get(e.errno, str(e.errno)) if e.errno else "?"
    return f"{e.strerror or e} ({code})"


class LineWriter:
    """The buffering and the backlog; a subclass provides `_write_out(data) -> bytes written`."""

    name: str

    def __init__(self, name: str, *, backlog: int = DEFAULT_BACKLOG, buffer_bytes: int = DEFAULT_BUFFER_BYTES):
        if backlog < 1:
            raise ValueError(f"backlog must be >= 1 line, got {backlog}")
        if buffer_bytes < 0:
            raise ValueError(f"buffer_bytes must be >= 0, got {buffer_bytes}")
        self.name = name
        self.backlog = backlog
        self.buffer_bytes = buffer_bytes
        self._lines: deque[bytes | tuple[bytes, ...]] = deque()
        self._sizes: deque[int] = deque()
        """Each queued line's bytes, its newline included."""
        self._queued_bytes = 0
        self._head_done = 0  # bytes of the first queued line already written (a write cut short)
        self._failing: OSError | None = None
        self.lines_written = 0
        self.bytes_written = 0
        self.failed_writes = 0
        self.dropped = 0

    # ------------------------------------------------------------------ the Reporter interface

    def write(self, line: bytes | tuple[bytes, ...], size: int | None = None) -> None:
        """Queue one JSON document (without its newline), bytes or a tuple of pieces (`size`: their length when
        known). Raises `ReporterError` if the output refuses it."""
        if size is None:
            size = len(line) if type(line) is bytes else sum(map(len, line))
        if len(self._lines) >= self.backlog:
            try:
                self._drain()
            except ReporterError as e:
                self.dropped += 1
                raise ReporterError(self.name, e.errno, f"{e.message}; backlog full ({self.backlog} lines): line "
                                                        f"dropped ({self.dropped} dropped so far)") from None
        self._lines.append(line)
        self._sizes.append(size + 1)
        self._queued_bytes += size + 1
        if self._failing is not None or self._queued_bytes >= self.buffer_bytes:
            self._drain()

    def write_parts(self, parts: tuple[bytes, ...]) -> None:
        """Queue one document given as pieces (written as they are, never joined here)."""
        self.write(parts)

    def write_lines(self, lines: list[bytes | tuple[bytes, ...]], sizes: list[int] | None = None) -> None:
        """Queue several documents, as `write` each of them would, with one drain at the end; `sizes`: each
        line's length with its newline, when the caller knows them."""
        if sizes is None:
            sizes = [(len(x) if type(x) is bytes else sum(map(len, x))) + 1 for x in lines]
        if len(self._lines) + len(lines) > self.backlog:
            for line, size in zip(lines, sizes, strict=True):  # the backlog may fill: each refused line counted
                self.write(line, size - 1)
            return
        self._lines.extend(lines)
        self._sizes.extend(sizes)
        self._queued_bytes += sum(sizes)
        if self._failing is not None or self._queued_bytes >= self.buffer_bytes:
            self._drain()

    def flush(self) -> None:
        """Write out everything queued. Raises `ReporterError` (lines kept in the backlog) on failure."""
        self._drain()

    def stats(self) -> dict[str, int | str | None]:
        return {
            "name": self.name,
            "lines_written": self.lines_written,
            "bytes_written": self.bytes_written,
            "backlog_lines": len(self._lines),
            "dropped": self.dropped,
            "failed_writes": self.failed_writes,
            "last_error": describe_os_error(self._failing) if self._failing is not None else None,
        }

    # ------------------------------------------------------------------ for subclasses

    def _write_out(self, data: memoryview) -> int:
        """One write system call; returns the bytes written."""
        raise NotImplementedError

    def _write_parts(self, parts: list[bytes | memoryview]) -> int:
        """One write system call of these buffers in order (`os.writev` where there is a file descriptor);
        returns the bytes written. By default, joined and given to `_write_out`."""
        return self._write_out(memoryview(b"".join(parts)))

    def _room(self) -> int | None:
        """Bytes the output takes before it must be rotated (at least 1 when it is empty); None: no limit."""
        return None

    def _output_empty(self) -> bool:
        """Nothing written to the output since its last rotation (a line too long for any room goes there)."""
        return True

    def _rotate(self) -> None:
        """Make room; called between whole lines only."""

    def _after_write(self, n: int) -> None:
        """`n` bytes were written."""

    def _undo_partial(self, n: int) -> bool:
        """Cut off the last `n` bytes written (the start of a line); False when the output cannot be cut back
        (the line is completed by a later write)."""
        return False

    # ------------------------------------------------------------------ the backlog

    def _error(self, e: OSError, action: str) -> ReporterError:
        self.failed_writes += 1
        self._failing = e
        if self._head_done and self._undo_partial(self._head_done):
            self.bytes_written -= self._head_done
            self._head_done = 0
        return ReporterError(self.name, e.errno, f"{describe_os_error(e)} {action}; {len(self._lines)} lines "
                                                 f"kept in the backlog, retried on the next write or flush")

    def drop_backlog(self) -> int:
        """Forget every queued line (the output is gone for good); how many there were."""
        n = len(self._lines)
        self._lines.clear()
        self._sizes.clear()
        self._queued_bytes = self._head_done = 0
        return n

    def _next_chunk(self) -> list[bytes | memoryview] | None:
        """Queued lines (with their newlines, as pieces) that fit in the room left (a line started, or the
        first one if the output is empty, goes whatever its size); None when the first line needs a rotation
        first."""
        room = self._room()
        lines = self._lines
        done = self._head_done
        first = self._sizes[0] - done
        if room is not None and done == 0 and first > room and not self._output_empty():
            return None
        head = lines[0]
        if not done:
            parts: list[bytes | memoryview] = [head, _NL] if type(head) is bytes else [*head, _NL]
        else:  # a line cut short by the last write: the rest of it
            if type(head) is not bytes:
                head = lines[0] = b"".join(head)
            parts = [memoryview(head)[done:], _NL] if done < len(head) else [_NL]
        size = first
        limit = _CHUNK if room is None else min(_CHUNK, room)
        # (a deque is walked, not indexed far from its ends)
        for line, n in zip(islice(lines, 1, None), islice(self._sizes, 1, None), strict=True):
            size += n
            if size > limit:
                break
            if type(line) is bytes:
                if len(parts) >= _IOV_MAX - 1:
                    break
                parts += (line, _NL)
            else:
                if len(parts) + len(line) >= _IOV_MAX:
                    break
                parts += line
                parts.append(_NL)
        return parts

    def _drain(self) -> None:
        while self._lines:
            chunk = self._next_chunk()
            if chunk is None:
                try:
                    self._rotate()
                except OSError as e:
                    raise self._error(e, "rotating") from None
                continue
            try:
                n = self._write_parts(chunk)
                if n <= 0:
                    raise OSError(errno_codes.EIO, "the output took no bytes")
            except OSError as e:
                raise self._error(e, "writing") from None
            self._account(n)
        self._failing = None

    def _account(self, n: int) -> None:
        """Pop the lines that `n` written bytes completed. A short write stopped inside a line (a disk filling
        up): the next write continues it, and if that fails, `_error` cuts the line back out."""
        self.bytes_written += n
        self._after_write(n)
        lines, sizes = self._lines, self._sizes
        n += self._head_done
        queued = len(lines)
        freed = 0
        while sizes and n >= sizes[0]:
            size = sizes.popleft()
            n -= size
            freed += size
            lines.popleft()
        self._queued_bytes -= freed
        self.lines_written += queued - len(lines)
        self._head_done = n
