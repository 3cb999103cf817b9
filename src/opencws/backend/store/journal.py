"""The write-ahead journal in front of the store: a request's rows are acknowledged once they are one record of
an append-only file; a flusher thread (`Flusher`) inserts the journaled records into the engine later, many
records per INSERT. ClickHouse makes a part per insert, at a fixed cost (~20 ms of CPU with chdb, plus the
merges each part brings): a part per 2,000-event request cost more than the events themselves.

Files, in the journal's directory:
- `NNNNNNNNNNNN.wal`, the segments, appended in order: `FILE_MAGIC` then records. A new segment is started
  at each open and when the current one passes `segment_bytes`; a segment is deleted once every record of it
  is stored.
- `stored`: "SEGMENT OFFSET", the position before which every record is in the store (written after each
  insert, atomically by a rename). It needs no fsync: when it is older than the truth (or unreadable), the
  recovery inserts the records after it again, and rows already stored are left out (`Record.suspect`).
- `lock`: held (flock) by the process that owns the journal.

A record: `_HEAD` (magic, number of contexts, number of events, their byte lengths, then a CRC32 of the
header's first fields and of the payload), the contexts' RowBinary, the events' RowBinary (`tables.COLUMNS`
order). A request's record may be followed by its *receipt* (`_RECEIPT_MAGIC`, the same header with no rows
and the receipt's bytes as its payload: the answer to the request's `Idempotency-Key`), written by the same
`writev` (looping on a short write), so that a crash never leaves a request's rows journaled without its
answer (its retry would store them twice); receipts are handed back at the next open (`receipts`). With
`fsync`, `os.fdatasync` follows before the acknowledgement. A record cut short at the end of the last segment
(a crash in the middle of its write: never acknowledged) is cut off with a warning; a bad record anywhere else
stops the open with the file and offset (never dropped silently).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from opencws.backend.store.engine import StoreError

log = logging.getLogger(__name__)

MiB = 1 << 20
FILE_MAGIC = b"OCWSJNL1"
_RECORD_MAGIC = b"OCJR"
_RECEIPT_MAGIC = b"OCJK"
_HEAD = struct.Struct("<4sIIQQI")  # magic, contexts, events, contexts' bytes, events' bytes, CRC32
_CRC = struct.Struct("<I")
_SUFFIX = ".wal"


@dataclass(frozen=True)
class JournalLimits:
    """When the flusher inserts (whichever comes first) and how far the journal may grow."""

    flush_rows: int = 50_000  # pending events (and contexts) that make an insert at once
    flush_bytes: int = 128 * MiB  # pending bytes that make an insert at once (and an insert's most)
    flush_interval: float = 1.0  # seconds a record waits at most before its insert
    max_bytes: int = 1 << 30  # pending bytes past which the intake is refused (the store is behind)
    segment_bytes: int = 64 * MiB  # a new segment past this size

    def check(self) -> None:
        for name in ("flush_rows", "flush_bytes", "max_bytes", "segment_bytes"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"journal {name} must be a positive integer, got {v!r}")
        if not isinstance(self.flush_interval, int | float) or isinstance(self.flush_interval, bool) or not (
            self.flush_interval > 0
        ):
            raise ValueError(f"journal flush_interval must be a number > 0, got {self.flush_interval!r}")
        if self.max_bytes < self.flush_bytes:
            raise ValueError(
                f"journal max_bytes ({self.max_bytes}) must be at least journal flush_bytes ({self.flush_bytes})"
            )


@dataclass(slots=True)
class Record:
    segment: int
    offset: int
    contexts: int
    events: int
    ctx_bytes: int
    evt_bytes: int
    since: float  # time.monotonic() of its append (0: recovered at open, due at once)
    suspect: bool = False  # may be (partly) in the store already: its rows are checked before the insert

    @property
    def size(self) -> int:
        return _HEAD.size + self.ctx_bytes + self.evt_bytes

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True)
class _Problem:
    offset: int
    reason: str
    torn: bool  # a record cut short by a crash in its write (at the end of the last segment only)


def _head(magic: bytes, n_ctx: int, n_evt: int, ctx: bytes | bytearray | memoryview,
          evt: bytes | bytearray | memoryview) -> bytes:  # fmt: skip
    """A record's header, its CRC32 over the header's first fields and the payload (`ctx` then `evt`)."""
    head = _HEAD.pack(magic, n_ctx, n_evt, len(ctx), len(evt), 0)[: -_CRC.size]
    return head + _CRC.pack(zlib.crc32(evt, zlib.crc32(ctx, zlib.crc32(head))))


def _scan(
    data: bytes, receipts: list[bytes] | None = None
) -> tuple[list[tuple[int, int, int, int, int]], int, _Problem | None]:
    """The records of a segment's bytes (offset, contexts, events, their byte lengths), where the good part
    ends, and the first problem met; the receipts met are added to `receipts`."""
    records: list[tuple[int, int, int, int, int]] = []
    if len(data) < len(FILE_MAGIC):
        return records, 0, _Problem(0, "the file header is cut short", FILE_MAGIC.startswith(data))
    if not data.startswith(FILE_MAGIC):
        return records, 0, _Problem(0, "not a journal file (bad file header)", False)
    at = len(FILE_MAGIC)
    size = len(data)
    while at < size:
        zeros = data.count(0, at) == size - at  # an unwritten tail a power loss leaves: zeros to the end
        if size - at < _HEAD.size:
            return records, at, _Problem(at, f"a record header cut short ({size - at} of {_HEAD.size} bytes)", True)
        magic, n_ctx, n_evt, ctx_len, evt_len, crc = _HEAD.unpack_from(data, at)
        if magic not in (_RECORD_MAGIC, _RECEIPT_MAGIC):
            return records, at, _Problem(at, "no record starts here (bad record magic)", zeros)
        end = at + _HEAD.size + ctx_len + evt_len
        if end > size:
            return records, at, _Problem(at, f"a record of {end - at} bytes cut short at {size - at}", True)
        view = memoryview(data)
        got = zlib.crc32(view[at + _HEAD.size : end], zlib.crc32(view[at : at + _HEAD.size - _CRC.size]))
        if got != crc:
            return records, at, _Problem(at, "CRC32 mismatch", end == size or zeros)
        if magic == _RECEIPT_MAGIC:
            if receipts is not None:
                receipts.append(bytes(view[at + _HEAD.size : end]))
        else:
            records.append((at, n_ctx, n_evt, ctx_len, evt_len))
        at = end
    return records, at, None


class Journal:
    """The journal's files and its pending records (appended, not yet stored), in order."""

    def __init__(self, directory: str, limits: JournalLimits | None = None, fsync: bool = False) -> None:
        self.directory = directory
        self.limits = limits or JournalLimits()
        self.limits.check()
        self.fsync = fsync
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)  # notified when the flusher may have work
        self.pending: deque[Record] = deque()
        self.pending_rows = 0
        self.pending_bytes = 0
        self._fds: dict[int, int] = {}  # segment → fd (open while it holds pending records, and the current)
        self._segment = 0
        self._size = 0
        self._broken: str | None = None
        self.behind_reason = ""  # the last insert error, told with a refusal
        self.receipts: list[bytes] = []  # the receipts found at the open, in the segments it kept
        try:
            os.makedirs(directory, exist_ok=True)
            self._lock_fd = os.open(os.path.join(directory, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StoreError(f"cannot open the journal in {directory}: {e.strerror}") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise StoreError(f"the journal {directory} is in use by another process") from None
        try:
            self._recover()
            self._roll()
        except BaseException:
            self.close()
            raise

    def _path(self, segment: int) -> str:
        return os.path.join(self.directory, f"{segment:012d}{_SUFFIX}")

    def _segments(self) -> list[int]:
        return sorted(
            int(n[: -len(_SUFFIX)])
            for n in os.listdir(self.directory)
            if n.endswith(_SUFFIX) and n[: -len(_SUFFIX)].isdigit()
        )

    def _read_stored(self) -> tuple[int, int]:
        path = os.path.join(self.directory, "stored")
        try:
            with open(path, "rb") as f:
                text = f.read()
        except FileNotFoundError:
            return (0, 0)
        except OSError as e:
            raise StoreError(f"cannot read {path}: {e.strerror}") from None
        parts = text.split()
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            log.warning("journal: %s is unreadable (%r): every record is checked against the store", path, text[:40])
            return (0, 0)
        return int(parts[0]), int(parts[1])

    def _recover(self) -> None:
        """The records after the stored point become pending (suspect: checked against the store); segments
        fully stored are deleted; a torn last record is cut off."""
        stored = self._read_stored()
        segments = self._segments()
        for i, seg in enumerate(segments):
            path = self._path(seg)
            if seg < stored[0]:
                os.unlink(path)
                continue
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise StoreError(f"cannot read the journal {path}: {e.strerror}") from None
            records, good, problem = _scan(data, self.receipts)
            if problem is not None:
                if not (problem.torn and i == len(segments) - 1):
                    raise StoreError(
                        f"the journal {path} is corrupt at offset {problem.offset}: {problem.reason} "
                        f"(the records after it cannot be read; move the file away to start without them)"
                    )
                log.warning(
                    "journal: %s: the last record, at offset %d, is cut off (%s; %d bytes): a write a crash "
                    "interrupted, never acknowledged",
                    path, problem.offset, problem.reason, len(data) - good,
                )  # fmt: skip
                try:
                    os.truncate(path, good) if good else os.unlink(path)
                except OSError as e:
                    raise StoreError(f"cannot cut the journal {path}: {e.strerror}") from None
                if not good:
                    continue
            kept = [r for r in records if (seg, r[0]) >= stored]
            if not kept:
                os.unlink(path)
                continue
            self._fds[seg] = os.open(path, os.O_RDONLY)
            for off, n_ctx, n_evt, ctx_len, evt_len in kept:
                self._add(Record(seg, off, n_ctx, n_evt, ctx_len, evt_len, 0.0, suspect=True))
        self._segment = segments[-1] if segments else 0
        if self.pending:
            log.info(
                "journal: %d records (%d events) not yet known to be stored: inserted again, leaving out "
                "those the store has", len(self.pending), sum(r.events for r in self.pending),
            )  # fmt: skip

    def _add(self, r: Record) -> None:
        self.pending.append(r)
        self.pending_rows += r.contexts + r.events
        self.pending_bytes += r.size

    def _roll(self) -> None:
        """A new current segment; the previous one is closed (and deleted when nothing in it is pending)."""
        old = self._segment
        seg = old + 1
        path = self._path(seg)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            os.write(fd, FILE_MAGIC)
            if self.fsync:
                os.fdatasync(fd)
                self._sync_directory()
        except OSError as e:
            raise StoreError(f"cannot start the journal segment {path}: {e.strerror}") from None
        self._fds[seg] = fd
        self._segment, self._size = seg, len(FILE_MAGIC)
        self._drop_stored_segments()

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _drop_stored_segments(self) -> None:
        first = self.pending[0].segment if self.pending else self._segment
        for seg in [s for s in self._fds if s < first]:
            os.close(self._fds.pop(seg))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(seg))

    # --- the intake's side ----------------------------------------------------------------------------

    def append(self, ctx: bytes | bytearray | memoryview, n_ctx: int, evt: bytes | bytearray | memoryview,
               n_evt: int, receipt: bytes = b"") -> None:  # fmt: skip
        """Journal one request's rows, and its receipt when given (written after them, in the same write);
        once this returns they are acknowledged."""
        parts = [_head(_RECORD_MAGIC, n_ctx, n_evt, ctx, evt), ctx, evt]
        size = _HEAD.size + len(ctx) + len(evt)
        if receipt:
            parts += [_head(_RECEIPT_MAGIC, 0, 0, receipt, b""), receipt]
            size += _HEAD.size + len(receipt)
        with self._lock:
            if self._broken is not None:
                raise StoreError(self._broken)
            limit = self.limits.max_bytes
            if self.pending_bytes and self.pending_bytes + size > limit:
                raise StoreError(
                    f"the store is behind: {self.pending_rows:,} acknowledged rows ({self.pending_bytes:,} bytes) "
                    f"wait in the journal for it, which holds at most {limit:,} bytes"
                    + (f"; the store's last error: {self.behind_reason}" if self.behind_reason else "")
                )
            if self._size >= self.limits.segment_bytes:
                self._roll()
            fd, offset = self._fds[self._segment], self._size
            try:
                written = os.writev(fd, parts)
                if written < size:
                    rest = memoryview(b"".join(parts))[written:]
                    while rest:
                        rest = rest[os.write(fd, rest) :]
                if self.fsync:
                    os.fdatasync(fd)
            except OSError as e:
                self._undo(fd, offset)
                raise StoreError(f"cannot write the journal {self._path(self._segment)}: {e.strerror}") from None
            self._size += size
            was_empty = not self.pending
            self._add(Record(self._segment, offset, n_ctx, n_evt, len(ctx), len(evt), time.monotonic()))
            # (the receipt after it is not pending: nothing to store; its bytes count toward the segment's size)
            if was_empty or self.pending_rows >= self.limits.flush_rows or self.pending_bytes >= self.limits.flush_bytes:
                self.changed.notify_all()

    def _undo(self, fd: int, offset: int) -> None:
        """A failed write is cut off, so that the next record starts where a reader looks for it."""
        try:
            os.ftruncate(fd, offset)
        except OSError as e:
            self._broken = (
                f"the journal {self._path(self._segment)} cannot be written (a failed write could not be "
                f"cut off: {e.strerror}); restart the backend"
            )

    # --- the flusher's side ---------------------------------------------------------------------------

    def due(self, now: float) -> float | None:
        """Seconds until the pending records must be inserted (0 or less: now), None when none is pending.
        Call with `changed` held."""
        if not self.pending:
            return None
        if self.pending_rows >= self.limits.flush_rows or self.pending_bytes >= self.limits.flush_bytes:
            return 0.0
        return self.pending[0].since + self.limits.flush_interval - now

    def take(self) -> list[Record]:
        """The oldest pending records, up to an insert's worth (at least one)."""
        with self._lock:
            out: list[Record] = []
            rows = size = 0
            for r in self.pending:
                if out and (rows + r.contexts + r.events > self.limits.flush_rows or size + r.size > self.limits.flush_bytes):
                    break
                out.append(r)
                rows += r.contexts + r.events
                size += r.size
            return out

    def read(self, records: list[Record]) -> tuple[list[bytes], list[bytes]]:
        """The contexts' and the events' RowBinary of `records` (pending ones: read back from their files,
        each part by itself: they go to the engine as they are, without a copy of them all in one buffer)."""
        ctx: list[bytes] = []
        evt: list[bytes] = []
        for r in records:
            with self._lock:
                fd = self._fds[r.segment]
            path = self._path(r.segment)
            at = r.offset + _HEAD.size
            ctx.append(_pread(fd, r.ctx_bytes, at, path) if r.ctx_bytes else b"")
            evt.append(_pread(fd, r.evt_bytes, at + r.ctx_bytes, path) if r.evt_bytes else b"")
        return ctx, evt

    def stored(self, records: list[Record]) -> None:
        """`records` (the oldest pending ones) are in the store: recorded, and segments of stored records only
        deleted."""
        with self._lock:
            for r in records:
                assert self.pending[0] is r, "records are stored in the journal's order"
                self.pending.popleft()
                self.pending_rows -= r.contexts + r.events
                self.pending_bytes -= r.size
            nxt = self.pending[0] if self.pending else None
            point = (nxt.segment, nxt.offset) if nxt else (self._segment, self._size)
            self.behind_reason = ""
            self._write_stored(point)
            self._drop_stored_segments()

    def _write_stored(self, point: tuple[int, int]) -> None:
        path = os.path.join(self.directory, "stored")
        tmp = path + ".tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(b"%d %d\n" % point)
            os.replace(tmp, path)
        except OSError as e:
            # Harmless: the recovery then checks more records against the store.
            log.warning("journal: cannot record the stored point in %s: %s", path, e.strerror)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"pending_rows": self.pending_rows, "pending_bytes": self.pending_bytes,
                    "pending_records": len(self.pending)}  # fmt: skip

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            if self._lock_fd >= 0:
                os.close(self._lock_fd)  # the flock goes with it
                self._lock_fd = -1


def _pread(fd: int, size: int, offset: int, path: str) -> bytes:
    try:
        data = os.pread(fd, size, offset)
        while len(data) < size:
            more = os.pread(fd, size - len(data), offset + len(data))
            if not more:
                raise StoreError(f"the journal {path} ends before offset {offset + size}")
            data += more
    except OSError as e:
        raise StoreError(f"cannot read the journal {path}: {e.strerror}") from None
    return data


class Flusher:
    """Inserts the journal's pending records into the store, in the journal's order: in the background when
    they are due (`Journal.due`), at once when a reader needs everything acknowledged (`flush`). A failed
    insert leaves its records pending (then checked against the store before the next try) and is retried
    with a growing delay."""

    def __init__(self, journal: Journal, insert: Callable[[list[Record], list[bytes], list[bytes]], None]) -> None:
        self.journal = journal
        self._insert = insert
        self._flush_lock = threading.Lock()
        self._closed = False
        self._retry_at = 0.0
        self._backoff = 0.0
        self.inserts = 0
        self.inserted_rows = 0
        self.errors = 0
        self.last_error = ""
        self._thread = threading.Thread(target=self._run, name="journal-flusher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        j = self.journal
        while True:
            with j.changed:
                while True:
                    if self._closed:
                        return
                    now = time.monotonic()
                    wait = j.due(now)
                    if wait is not None:
                        wait = max(wait, self._retry_at - now)
                        if wait <= 0:
                            break
                    j.changed.wait(wait)
            try:
                self.flush(background=True)
            except StoreError:
                pass  # counted and logged by flush; retried after the backoff
            except Exception:  # never let the thread die: the records stay pending
                log.exception("journal: the flusher failed")
                self._failed("unexpected error (see the log)")

    def flush(self, background: bool = False) -> None:
        """Insert every pending record (`background`: while they are due). Raises StoreError when an insert
        fails (the records stay pending)."""
        j = self.journal
        with self._flush_lock:
            while True:
                if background:
                    with j.changed:
                        wait = j.due(time.monotonic())
                    if wait is None or wait > 0:
                        return
                batch = j.take()
                if not batch:
                    return
                try:
                    ctx, evt = j.read(batch)
                    self._insert(batch, ctx, evt)
                except StoreError as e:
                    for r in batch:
                        r.suspect = True  # may be partly in: checked before the next try
                    self._failed(str(e))
                    raise
                j.stored(batch)
                self.inserts += 1
                self.inserted_rows += sum(r.contexts + r.events for r in batch)
                self._backoff = 0.0
                self._retry_at = 0.0

    def _failed(self, reason: str) -> None:
        self.errors += 1
        self.last_error = reason
        self.journal.behind_reason = reason
        self._backoff = min(max(self._backoff * 2, 0.1), 10.0)
        self._retry_at = time.monotonic() + self._backoff
        log.warning("journal: inserting into the store failed (retried in %.1f s): %s", self._backoff, reason)

    def stats(self) -> dict[str, int]:
        return {**self.journal.stats(), "inserts": self.inserts, "inserted_rows": self.inserted_rows,
                "insert_errors": self.errors}  # fmt: skip

    def close(self, flush: bool = True) -> None:
        """Stop the thread and insert what is pending (what cannot be stays in the journal for the next open;
        all of it without `flush`: the files as a crash leaves them)."""
        with self.journal.changed:
            self._closed = True
            self.journal.changed.notify_all()
        self._thread.join()
        if not flush:
            return
        try:
            self.flush()
        except StoreError as e:
            log.warning("journal: %d records left in the journal at close: %s", len(self.journal.pending), e)
