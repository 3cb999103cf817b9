"""The HTTP reporter's spool: batches the backend has not acknowledged, kept on disk in order, across restarts.

One file per batch, `SEQ-EVENTS-KEY.batch`: SEQ (20 digits) orders the batches, EVENTS is how many events it
holds, KEY the `Idempotency-Key` it is always sent with (so that a batch the backend stored but whose answer was
lost is not stored twice when it is sent again). The file is the body exactly as it is posted, zstd or gzip:
its coding is known from its first bytes (`opencws.agent.batch_coding`), so that the gzip batches of an older
agent are replayed with their own `Content-Encoding`. It is written under a temporary name, fsynced and renamed (the directory fsynced too): after a crash or a power cut a
batch is whole or absent. An acknowledged batch is unlinked, which is atomic.

The spool is bounded in bytes: a batch that would pass the bound is refused (`SpoolFull`) and its sender counts
its events as dropped. What is spooled is never removed before the backend acknowledged it (dropping the newest
keeps the spool a plain queue: nothing in it is ever half-sent or unaccounted). One process uses a spool at a
time (an exclusive lock on `.lock`): two agents replaying one spool would send its batches twice at once.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import os
import re
import threading
from pathlib import Path
from typing import NamedTuple

_NAME = re.compile(r"(\d{20})-(\d+)-([0-9A-Za-z_.-]{1,128})\.batch")
_TMP_PREFIX = ".tmp-"


class SpoolError(Exception):
    """The spool cannot be used (not writable, used by another process)."""


class SpoolFull(Exception):
    """The batch would pass the spool's size bound: it was not written."""


class SpooledBatch(NamedTuple):
    """Ordered by sequence number, then key (the parts of a batch split in two share its number)."""

    seq: int
    key: str
    events: int
    path: Path
    size: int


class Spool:
    def __init__(self, directory: str | os.PathLike[str], max_bytes: int):
        if max_bytes < 0:
            raise ValueError(f"the spool's bound must be >= 0 bytes, got {max_bytes}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock_fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise SpoolError(f"spool {self.directory}: {e.strerror or e}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self._lock_fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self._lock_fd)
            raise SpoolError(f"spool {self.directory} is in use by another process (pid {holder}): give each "
                             "agent a spool directory of its own") from None
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, f"{os.getpid()}\n".encode(), 0)
        self._batches: list[SpooledBatch] = []
        self._writing: set[tuple[int, str]] = set()
        self.bytes = 0
        self.unknown_files: list[str] = []
        """Files in the directory that are not batches: left alone, and said once."""
        for entry in os.scandir(self.directory):
            if entry.name.startswith(_TMP_PREFIX):  # a write a crash interrupted: never renamed, never counted
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                continue
            m = _NAME.fullmatch(entry.name)
            if m is None:
                if entry.name != ".lock":
                    self.unknown_files.append(entry.name)
                continue
            b = SpooledBatch(int(m.group(1)), m.group(3), int(m.group(2)), Path(entry.path),
                             entry.stat().st_size)
            self._batches.append(b)
            self.bytes += b.size
        self._batches.sort()

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._batches)

    @property
    def events(self) -> int:
        with self._lock:
            return sum(b.events for b in self._batches)

    @property
    def next_seq(self) -> int:
        """A sequence number after every spooled batch's."""
        with self._lock:
            return self._batches[-1].seq + 1 if self._batches else 1

    def head(self) -> SpooledBatch | None:
        """The oldest batch."""
        with self._lock:
            return self._batches[0] if self._batches else None

    def read(self, batch: SpooledBatch) -> bytes:
        return batch.path.read_bytes()

    # ------------------------------------------------------------------ writing

    def put(self, seq: int, key: str, events: int, body: bytes) -> SpooledBatch | None:
        """Write a batch (durably, whole or not at all). `SpoolFull` past the bound; `OSError` from the disk.
        The batch of that sequence number and key when it is already there; None while another thread writes it."""
        name = f"{seq:020d}-{events}-{key}.batch"
        if _NAME.fullmatch(name) is None:
            raise ValueError(f"not a spoolable batch key: {key!r}")
        with self._lock:
            if self._closed:
                raise SpoolError(f"spool {self.directory} is closed")
            i = bisect.bisect_left(self._batches, (seq, key))
            if i < len(self._batches) and self._batches[i][:2] == (seq, key):
                return self._batches[i]  # already there (spooled by another thread at a stop)
            if (seq, key) in self._writing:
                return None
            if self.bytes + len(body) > self.max_bytes:
                raise SpoolFull(f"spool {self.directory} holds {self.bytes} bytes; a batch of {len(body)} bytes "
                                f"would pass its bound of {self.max_bytes}")
            self.bytes += len(body)  # reserved now, so that two writers never pass the bound together
            self._writing.add((seq, key))
        path = self.directory / name
        tmp = self.directory / f"{_TMP_PREFIX}{name}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            self._sync_directory()
        except OSError:
            with self._lock:
                self.bytes -= len(body)
                self._writing.discard((seq, key))
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        batch = SpooledBatch(seq, key, events, path, len(body))
        with self._lock:
            bisect.insort(self._batches, batch)
            self._writing.discard((seq, key))
        return batch

    def remove(self, batch: SpooledBatch) -> None:
        """The backend acknowledged `batch`: it leaves the spool (unlink: atomic). A file that cannot be unlinked
        (a read-only disk) leaves the index all the same: replayed at the next start, its key makes it harmless."""
        with contextlib.suppress(OSError):
            os.unlink(batch.path)
        with self._lock:
            i = bisect.bisect_left(self._batches, batch)
            if i < len(self._batches) and self._batches[i] == batch:
                del self._batches[i]
                self.bytes -= batch.size

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        os.close(self._lock_fd)  # releases the lock

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
