"""JSON lines appended to a file, rotated by size: PATH -> PATH.1 -> ... -> PATH.KEEP, the oldest removed.

A file is fsynced before it is renamed away and on close, so that a crash or power cut after a rotation
never leaves a rotated file with a hole; between rotations lines reach the page cache on `flush` (an fsync
per flush would cost more than the whole pipeline). A file never holds half a line, and a line is never split
across two files. Files are created mode 0600: events carry command lines and paths of every user.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from opencws.agent.line_writer import (
    DEFAULT_BACKLOG,
    DEFAULT_BUFFER_BYTES,
    LineWriter,
    ReporterError,
    describe_os_error,
)

DEFAULT_MAX_BYTES = 100 * 2**20
DEFAULT_KEEP = 5


def _fsync(fd: int) -> None:
    """fsync, where there is something to sync: a special file (a device, a pipe) refuses with EINVAL."""
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise


class FileReporter(LineWriter):
    """Appends to `path`; past `max_bytes` the file is rotated and `keep` rotated files are kept.

    A line longer than `max_bytes` goes alone into a file of its own. Opening errors (a missing directory,
    a directory in the way, no permission) raise `ReporterError` at once: an output that cannot work should
    stop the agent at start, not at its first event.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
                 keep: int = DEFAULT_KEEP, backlog: int = DEFAULT_BACKLOG,
                 buffer_bytes: int = DEFAULT_BUFFER_BYTES, name: str | None = None):
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be an integer >= 1, got {max_bytes!r}")
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
            raise ValueError(f"keep must be an integer >= 0, got {keep!r}")
        self.path = Path(path)
        super().__init__(name or f"file:{self.path}", backlog=backlog, buffer_bytes=buffer_bytes)
        self.max_bytes = max_bytes
        self.keep = keep
        self.rotations = 0
        self._fd: int | None = None
        self._size = 0
        self._closed = False
        try:
            self._open()
        except OSError as e:
            raise ReporterError(self.name, e.errno, f"cannot open {self.path}: {describe_os_error(e)}") from None

    def rotated_path(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{i}")

    def close(self) -> None:
        """Write what is queued, fsync and close. Lines that still cannot be written are counted as dropped."""
        if self._closed:
            return
        self._closed = True
        error: ReporterError | None = None
        try:
            self._drain()
        except ReporterError as e:
            lost = self.drop_backlog()
            self.dropped += lost
            error = ReporterError(self.name, e.errno, f"{e.message.split(';')[0]} on close: {lost} lines lost")
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                _fsync(fd)
            except OSError as e:
                error = error or ReporterError(self.name, e.errno, f"{describe_os_error(e)} syncing on close")
            finally:
                os.close(fd)
        if error is not None:
            raise error

    def reopen(self) -> None:
        """Write what is queued, then start again on whatever is at `path` now: after an outside tool
        (logrotate) renamed the file away, lines go to a new file instead of following the old one."""
        self._drain()
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                _fsync(fd)
            finally:
                os.close(fd)
        self._size = 0
        try:
            self._open()
        except OSError as e:
            raise ReporterError(self.name, e.errno, f"cannot open {self.path}: {describe_os_error(e)}; lines "
                                                    f"are kept and the file is opened again on the next write") from None

    def stats(self) -> dict[str, int | str | None]:
        return {**super().stats(), "rotations": self.rotations, "file_bytes": self._size}

    # ------------------------------------------------------------------ LineWriter hooks

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._fd = fd
        self._size = os.fstat(fd).st_size

    def _write_out(self, data: memoryview) -> int:
        return self._write_parts([data])

    def _write_parts(self, parts: list[bytes | memoryview]) -> int:
        if self._closed and self._fd is None:
            raise OSError(9, "the reporter is closed")  # EBADF
        if self._fd is None:
            self._open()
        return os.writev(self._fd, parts)  # type: ignore[arg-type]

    def _room(self) -> int | None:
        return self.max_bytes - self._size

    def _output_empty(self) -> bool:
        return self._size == 0

    def _after_write(self, n: int) -> None:
        self._size += n

    def _undo_partial(self, n: int) -> bool:
        try:
            os.ftruncate(self._fd, self._size - n)
        except OSError:
            return False
        self._size -= n
        return True

    def _rotate(self) -> None:
        fd = self._fd
        if fd is not None:
            _fsync(fd)  # complete on disk before it is renamed away
            self._fd = None
            self._size = 0
            os.close(fd)
        if self.keep == 0:
            self._unlink_if_there(self.path)
        else:
            for i in range(self.keep - 1, 0, -1):
                src = self.rotated_path(i)
                if src.exists():
                    os.replace(src, self.rotated_path(i + 1))
            if self.path.exists():
                os.replace(self.path, self.rotated_path(1))
        self._open()
        self.rotations += 1
        self._sync_directory()

    @staticmethod
    def _unlink_if_there(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def _sync_directory(self) -> None:
        """Make the renames durable: they live in the directory."""
        dfd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
