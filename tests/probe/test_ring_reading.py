"""The mmap reader shares the ring's positions with the kernel while BPF programs write: reading while they
write must never make the kernel believe the ring is full, and a record wrapping around the ring's end is read
whole."""

from __future__ import annotations

import os
import select
import subprocess
import sys

import opencws.probe.events as ev

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


def test_a_ring_read_while_the_kernel_writes_loses_nothing_lap_after_lap(require_kernel, tmp_path):
    """Before the fix the reader stored its position with struct.pack_into, which zero-fills the field first:
    a reservation in between saw consumer position 0 and, once the producer had gone round the ring, dropped
    its record as if the ring were full (hundreds in this test; a few dozen per 100,000 records in the agent's benchmark)."""
    from opencws.probe.probe import Probe

    f = tmp_path / "ring-lap-target"
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

