"""Reporters written by a thread of their own: order, errors handed back, a bounded handoff, and a reading thread
that a blocked output does not hold."""

from __future__ import annotations

import os
import threading
import time

import pytest

from opencws.agent.file_reporter import FileReporter
from opencws.agent.line_writer import ReporterError
from opencws.agent.output_thread import ThreadedReporter
from opencws.agent.reporters import StreamReporter


def lines(n: int, size: int = 100) -> list[bytes]:
    return [b'{"n":%d,"pad":"%s"}' % (i, b"x" * size) for i in range(n)]


def write_all(out: ThreadedReporter, sent: list[bytes], *, flush_every: int) -> None:
    """As the agent writes: lines, and a flush after each batch."""
    for i, line in enumerate(sent):
        out.write(line)
        if i % flush_every == 0:
            out.flush()


def test_lines_come_out_whole_and_in_order_and_close_writes_what_is_queued(tmp_path):
    out = ThreadedReporter(FileReporter(tmp_path / "events.json", max_bytes=50_000, keep=100))
    sent = lines(3000)
    write_all(out, sent, flush_every=500)
    out.close()
    files = sorted(tmp_path.glob("events.json*"), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0)
    got = b"".join(p.read_bytes() for p in files).splitlines()
    assert got == sent
    assert out.lines_written == 3000 and out.dropped == 0  # the wrapped reporter's counters


def test_a_line_given_as_pieces_is_written_whole_in_its_place(tmp_path):
    out = ThreadedReporter(FileReporter(tmp_path / "events.json"))
    out.write(b'{"a":1}')
    out.write_parts((b'{"b":', b"2", b"}"))
    out.write(b'{"c":3}')
    out.close()
    assert (tmp_path / "events.json").read_bytes() == b'{"a":1}\n{"b":2}\n{"c":3}\n'
    assert out.lines_written == 3 and out.bytes_written == 24


def test_a_reporter_that_takes_whole_lines_only_gets_pieces_joined():
    class Lines:
        name = "lines"

        def __init__(self) -> None:
            self.got: list[bytes] = []

        def write(self, line: bytes) -> None:
            assert type(line) is bytes
            self.got.append(line)

        def flush(self) -> None: ...

        def close(self) -> None: ...

    inner = Lines()
    out = ThreadedReporter(inner)
    out.write(b'{"a":1}')
    out.write_parts((b'{"b":', b"2", b"}"))
    out.close()
    assert inner.got == [b'{"a":1}', b'{"b":2}']


def test_flush_hands_over_without_waiting_and_wait_written_waits(tmp_path):
    out = ThreadedReporter(FileReporter(tmp_path / "events.json"))
    out.write(b'{"a":1}')
    out.flush()
    assert out.wait_written(10)
    assert (tmp_path / "events.json").read_bytes() == b'{"a":1}\n'
    out.close()


def test_a_blocked_output_does_not_hold_the_reading_thread_and_loses_nothing():
    r, w = os.pipe()
    out = ThreadedReporter(StreamReporter(os.fdopen(w, "wb"), "pipe", buffer_bytes=0), max_bytes=4 << 20)
    sent = lines(20_000)  # 2 MB: far more than the pipe holds, less than the handoff
    t0 = time.monotonic()
    for line in sent:
        out.write(line)
    out.flush()
    assert time.monotonic() - t0 < 5 and out.waits == 0  # nobody reads the pipe: the writer thread is blocked
    got = bytearray()
    reader = threading.Thread(target=lambda: got.extend(_read_all(r)))
    reader.start()
    out.close()
    os.close(w)
    reader.join(30)
    assert got.splitlines() == sent


def test_a_slow_output_makes_the_reading_thread_wait_for_room_and_loses_nothing():
    r, w = os.pipe()
    out = ThreadedReporter(StreamReporter(os.fdopen(w, "wb"), "pipe", buffer_bytes=0), max_bytes=64 << 10)
    got = bytearray()

    def slow() -> None:
        while chunk := os.read(r, 16 << 10):
            got.extend(chunk)
            time.sleep(0.002)

    reader = threading.Thread(target=slow)
    reader.start()
    sent = lines(5000)
    write_all(out, sent, flush_every=100)
    out.close()
    os.close(w)
    reader.join(30)
    assert got.splitlines() == sent
    assert out.waits > 0 and out.waited_s > 0


def test_an_error_of_the_output_is_raised_on_the_reading_thread_and_the_lines_are_kept():
    out = ThreadedReporter(FileReporter("/dev/full"))
    out.write(b'{"a":1}')
    out.flush()
    assert out.wait_written(10)
    with pytest.raises(ReporterError) as e:
        out.write(b'{"a":2}')
    assert "space" in str(e.value).lower()
    out.flush()
    assert out.wait_written(10)
    assert out.stats()["backlog_lines"] == 2 and out.lines_written == 0


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def test_reopen_follows_a_file_moved_away_and_is_nothing_for_a_stream(tmp_path):
    out = ThreadedReporter(FileReporter(tmp_path / "events.json"))
    out.write(b'{"a":1}')
    (tmp_path / "events.json").rename(tmp_path / "events.json.old")  # the line may not be written yet
    out.reopen()
    out.write(b'{"a":2}')
    out.close()
    assert (tmp_path / "events.json.old").read_bytes() + (tmp_path / "events.json").read_bytes() == \
        b'{"a":1}\n{"a":2}\n'
    assert (tmp_path / "events.json").read_bytes() == b'{"a":2}\n'
    r, w = os.pipe()
    stream = ThreadedReporter(StreamReporter(os.fdopen(w, "wb"), "pipe"))
    stream.reopen()
    stream.write(b'{"b":1}')
    stream.close()
    os.close(w)
    assert _read_all(r) == b'{"b":1}\n'


def test_an_output_still_blocked_at_close_is_left_behind_saying_what_was_not_written():
    r, w = os.pipe()
    stream = os.fdopen(w, "wb")
    out = ThreadedReporter(StreamReporter(stream, "pipe", buffer_bytes=0))
    sent = lines(2000)  # 200 KB: more than the pipe holds, and nobody reads it
    for line in sent:
        out.write(line)
    t0 = time.monotonic()
    with pytest.raises(ReporterError, match="blocked"):
        out.close(timeout=0.5)
    assert time.monotonic() - t0 < 5 and out.writing
    got = bytearray()
    reader = threading.Thread(target=lambda: got.extend(_read_all(r)), daemon=True)
    reader.start()  # once the pipe is read, the writer left behind finishes
    deadline = time.monotonic() + 10
    while out.writing and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not out.writing
    stream.close()
    reader.join(10)
    assert got.splitlines() == sent
