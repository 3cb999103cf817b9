"""The mmap reader shares the ring's positions with the kernel while BPF programs write: reading while they
write must never make the kernel believe the ring is full, and a record wrapping around the ring's end is read
whole."""

from __future__ import annotations

import mmap
import os
import select
import struct
import subprocess
import sys

import pytest

import opencws.probe.events as ev
from opencws.probe import ringbuf

# the writer: one batch of chmods on the file for every byte read, then one byte back
_WRITER = """
import os, sys
path, n = sys.argv[1], int(sys.argv[2])
while sys.stdin.buffer.read(1):
    for i in range(n):
        os.chmod(path, 0o600 | (i & 1) << 2)
    sys.stdout.buffer.write(b".")
    sys.stdout.buffer.flush()
"""


def _whole(e: object, f: object) -> bool:
    """A chmod of the test's file, read whole: the records that wrap around the ring's end (copied in two
    slices) included."""
    return isinstance(e, ev.ChmodEvent) and e.file.path == str(f) and e.mode in (0o600, 0o604)


def test_the_positions_are_atomic_accesses_when_the_extension_is_built():
    assert ringbuf.POSITIONS == "atomic", "the C extension is not built: run scripts/setup.sh"


def test_a_position_is_one_aligned_u64_stored_and_loaded_whole():
    from opencws.probe._ringdecoder import load_position, store_position

    m = mmap.mmap(-1, mmap.PAGESIZE)
    try:
        store_position(m, 8, (1 << 64) - 2)
        assert load_position(m, 8) == (1 << 64) - 2 and m[8:16] == struct.pack("<Q", (1 << 64) - 2)
        assert load_position(m, 0) == 0 and m[16:24] == bytes(8)  # nothing written beside it
        for offset, error in ((4, "not 8-byte aligned"), (mmap.PAGESIZE - 4, "do not fit"), (-8, "do not fit")):
            with pytest.raises(ValueError, match=error):
                store_position(m, offset, 1)
            with pytest.raises(ValueError, match=error):
                load_position(m, offset)
        with pytest.raises(OverflowError):
            store_position(m, 8, -1)
        with pytest.raises(TypeError):  # a read-only buffer (the producer's page) is never written
            store_position(bytes(16), 0, 1)
        assert load_position(m, 8) == (1 << 64) - 2
    finally:
        m.close()


@pytest.mark.parametrize("positions", ["atomic", "memoryview"])
def test_a_ring_read_while_the_kernel_writes_loses_nothing_lap_after_lap(require_kernel, tmp_path, monkeypatch,
                                                                         positions):
    """Before the fix the reader stored its position with struct.pack_into, which zero-fills the field first:
    a reservation in between saw consumer position 0 and, once the producer had gone round the ring, dropped
    its record as if the ring were full (hundreds in this test; a few dozen per 100,000 records in the agent's
    benchmark). The positions are atomic accesses in C; the memoryview twin (no C extension) holds too."""
    from opencws.probe.probe import Probe

    monkeypatch.setattr(ringbuf, "POSITIONS", positions)

    f = tmp_path / f"ring-lap-target-{os.getpid()}"  # approved by basename: not another test run's file
    f.write_bytes(b"")
    ring, batch, batches = 1 << 20, 500, 400
    with Probe(ring_buffer_bytes=ring, event_types=["chmod"]) as p:
        p.set_approvers("chmod", basenames=[f.name])
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(f), str(batch)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        received = requested = done = reads = 0
        try:
            while done < batches:
                # the next batch only once the last one is written and the ring is at most half full: it can
                # never fill, however late this reader is, so every loss is the reader's fault
                consumed, produced = p.ring_positions()
                if requested == done and produced - consumed < ring // 2:
                    writer.stdin.write(b"g")
                    writer.stdin.flush()
                    requested += 1
                # few records a read (every other time): many position stores race the kernel's reservations
                events = p.poll(0) if reads % 2 else p.decode_all(p.poll_raw(0, limit=4))
                received += sum(_whole(e, f) for e in events)
                reads += 1
                if requested > done and select.select([writer.stdout], [], [], 0)[0]:
                    assert os.read(writer.stdout.fileno(), 1) == b"."
                    done += 1
            laps = p.ring_positions()[1] // ring
            while batch_events := p.poll(50):
                received += sum(_whole(e, f) for e in batch_events)
        finally:
            writer.stdin.close()
            writer.wait(timeout=30)
        c = p.counters()["chmod"]
        n = batch * batches
        assert laps >= 20  # the producer went round the ring many times
        assert (c.lost, c.sent, received) == (0, n, n)

