"""A BPF ring buffer consumer that reads the shared memory directly (mmap), without a callback per record.

libbpf's ring_buffer__poll calls a ctypes callback for every record, which costs more than decoding the
record; here a batch of records is framed with one struct call each, straight from the mapped pages.
Layout (kernel/bpf/ringbuf.c): page 0 is the consumer position (written by us), page 1 the producer
position, then the data pages (offered twice in a row so that a record never wraps; mapped once here, so
that the ring counts once in RSS, and a record that wraps is copied in two slices). Each record starts with
an 8-byte header: u32 length with BUSY (bit 31: not committed yet) and DISCARD (bit 30) flags, u32 page
offset; records are 8-byte aligned.

The two positions are shared with the kernel while it runs, so each is read and written as one atomic 8-byte
access: an acquire load and a release store in C (`_ringdecoder.load_position`/`store_position`, as libbpf's
reader does), else, when the extension is not built, a native `Q` item of a memoryview (one memcpy of 8 bytes:
a single load or store on x86-64 and arm64, though CPython does not promise it). `struct.pack_into` must never
be used for them: it zero-fills the field before writing the value, and a BPF program reserving in between
reads consumer position 0, finds the ring "full" once the producer is past its size, and drops the record
(counted lost). `struct.unpack_from` reads byte by byte, so a producer position read while the kernel moves it
could mix old and new bytes and point past what was written.
"""

from __future__ import annotations

import mmap
import select
import struct
from functools import partial
from typing import Any

try:
    from opencws.probe._ringdecoder import load_position, store_position
except ImportError:  # not built (or built before it had them): the memoryview twin
    load_position = store_position = None  # type: ignore[assignment]

POSITIONS = "atomic" if store_position is not None else "memoryview"
"""How the ring's positions are accessed: "atomic" (C, acquire/release) or "memoryview" (the Python twin)."""

BUSY = 1 << 31
DISCARD = 1 << 30
_SIZE_MASK = DISCARD - 1
_U32 = struct.Struct("<I")

class _Position:
    """One u64 at the start of a mapping, shared with the kernel: `get()` one 8-byte load, `set(value)` one 8-byte
    store (atomic, acquire/release, with the C extension)."""

    def __init__(self, mm: mmap.mmap, *, atomic: bool):
        self._view: memoryview | None = None
        self.get: Any
        self.set: Any
        if atomic:
            self.get = partial(load_position, mm, 0)
            self.set = partial(store_position, mm, 0)
        else:
            self._view = view = memoryview(mm)[:8].cast("Q")
            self.get = partial(view.__getitem__, 0)
            self.set = partial(view.__setitem__, 0)

    def close(self) -> None:
        """Release the view (before the mapping closes)."""
        if self._view is not None:
            self._view.release()
        self.get = self.set = None


class RingReader:
    """Consumer of one BPF_MAP_TYPE_RINGBUF map (by fd and size in bytes)."""

    def __init__(self, map_fd: int, size: int, *, atomic: bool | None = None):
        """`atomic`: the positions through the C extension's atomic accesses, or the memoryview twin (False);
        None: as `POSITIONS` says."""
        if atomic is None:
            atomic = POSITIONS == "atomic"
        if atomic and store_position is None:
            raise ValueError("atomic ring positions need the C extension (run scripts/setup.sh)")
        if size & (size - 1):
            raise ValueError(f"ring buffer size {size} is not a power of two")
        page = mmap.PAGESIZE
        self.size = size
        self.mask = size - 1
        self._consumer = mmap.mmap(map_fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        # The data pages mapped once (the kernel offers them twice in a row, so that a record never wraps; a
        # second mapping would count the ring twice in the agent's RSS): what wraps is copied in two slices.
        # Populated now: the first pass over the ring takes no page fault per page.
        self._producer = mmap.mmap(map_fd, page + size, mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0),
                                   mmap.PROT_READ, offset=page)
        # the positions: every access a single 8-byte load or store (see above)
        self._cons = _Position(self._consumer, atomic=atomic)
        self._prod = _Position(self._producer, atomic=atomic)
        self._epoll = select.epoll()
        self._epoll.register(map_fd, select.EPOLLIN)

    def close(self) -> None:
        self._cons.close()
        self._prod.close()
        self._producer.close()
        self._consumer.close()
        self._epoll.close()

    def available(self) -> int:
        return self._prod.get() - self._cons.get()

    def consumed(self) -> int:
        """The consumer position: bytes released so far."""
        return self._cons.get()

    def produced(self) -> int:
        """The producer position: bytes the kernel has written since the ring was made."""
        return self._prod.get()

    def wait(self, timeout_ms: int) -> None:
        if self.available() == 0 and timeout_ms != 0:
            self._epoll.poll(timeout_ms / 1000 if timeout_ms > 0 else -1)

    def region(self, limit: int = 0, pad: int = 0) -> tuple[int, bytes, int, bool]:
        """One copy of what was produced and not consumed yet (at most `limit` bytes when given): (consumer
        position, the bytes, how many were copied, whether that is all there is).

        The region is one buffer even when it wraps around the ring; `pad` more bytes follow it (whatever the
        ring holds there), for readers that read a fixed-size prefix of every record. Release what was read
        with `release`."""
        cons = self._cons.get()
        avail = self._prod.get() - cons
        n = min(avail, limit) if limit else avail
        buf = self._copy(cons & self.mask, n + pad)
        if len(buf) < n + pad:
            buf += bytes(n + pad - len(buf))
        return cons, buf, n, n == avail

    def _copy(self, offset: int, n: int) -> bytes:
        """`n` bytes of the ring from `offset` (of the data area), continued at its start past its end (at most
        the ring's size)."""
        start = mmap.PAGESIZE + offset
        end = start + n
        limit = mmap.PAGESIZE + self.size
        if end <= limit:
            return self._producer[start:end]
        return self._producer[start:limit] + self._producer[mmap.PAGESIZE:mmap.PAGESIZE + min(end - limit, offset)]

    def release(self, position: int) -> None:
        """Hand the space before this consumer position back to the producer (one 8-byte store)."""
        self._cons.set(position)

    def read(self, limit: int = 0) -> list[bytes]:
        """Copy out every committed record (at most `limit` when given), then release their space."""
        mm = self._producer
        base = mmap.PAGESIZE
        cons = self._cons.get()
        prod = self._prod.get()
        mask = self.mask
        unpack_len = _U32.unpack_from
        out: list[bytes] = []
        append = out.append
        while cons < prod:
            off = base + (cons & mask)
            length = unpack_len(mm, off)[0]
            if length & BUSY:
                break
            size = length & _SIZE_MASK
            if not length & DISCARD:
                body = off + 8 - base
                # slicing the mmap copies in one call; a record that wraps around the ring in two
                append(mm[off + 8:off + 8 + size] if body + size <= self.size else self._copy(body & mask, size))
            cons += (size + 15) & ~7
            if limit and len(out) >= limit:
                break
        self._cons.set(cons)
        return out
