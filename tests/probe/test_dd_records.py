"""Records ending with a dd trailer (HF_DD, bpf/ddcontext.h): the thread's span id and the low 64 bits of its
trace id, decoded alike by every path (views, eager decoding, both ring loops)."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from test_records import exit_record, file_record, ring

import kernel_records
from opencws.probe import records as r
from opencws.probe.errors import DecodeError
from opencws.probe.eventtypes import EventType

SPAN, TRACE = 0x1122334455667788, 0xF0E0D0C0B0A09080  # (the trace id's high bit set: unsigned all the way)


def with_dd(data: bytes, span: int = SPAN, trace: int = TRACE) -> bytes:
    return kernel_records.with_dd(data, span, trace)


RECORDS = {
    "open": file_record(EventType.OPEN, b"/etc/passwd"),
    "rename": file_record(EventType.RENAME, b"/a", b"/b", nr=82),
    "setxattr": file_record(EventType.SETXATTR, b"/f", extra=b"user.x", nr=188),
    "exit": exit_record(9),
}


@pytest.mark.parametrize("lazy", [True, False])
@pytest.mark.parametrize("name", sorted(RECORDS))
def test_a_record_with_a_dd_trailer_is_the_same_event_with_its_ids(name, lazy):
    plain = r.decode(RECORDS[name], lazy=False)
    e = r.decode(with_dd(RECORDS[name]), lazy)
    assert plain.span_id is None and plain.trace_id is None
    assert asdict(e) == {**asdict(plain), "span_id": SPAN, "trace_id": TRACE}


def test_events_with_and_without_ids_differ_and_a_view_equals_its_eager_twin():
    data = with_dd(RECORDS["open"])
    assert r.decode(data) == r.decode(data, lazy=False)
    assert r.decode(data) != r.decode(RECORDS["open"])
    assert r.decode(with_dd(RECORDS["open"], span=1)) != r.decode(data)


@pytest.mark.parametrize("lazy", [True, False])
def test_a_dd_flag_without_room_for_the_trailer_is_refused(lazy):
    cut = with_dd(RECORDS["open"])[:-8]
    with pytest.raises(DecodeError, match="record size"):
        r.decode(cut[:4] + r.struct.pack("<I", len(cut)) + cut[8:], lazy)
    short = with_dd(RECORDS["exit"])[:r.HEADER.size + 8]
    short = short[:4] + r.struct.pack("<I", len(short)) + short[8:]
    with pytest.raises(DecodeError, match="too short for its header and dd trailer"):
        r.decode(short, lazy)


@pytest.fixture(params=["c", "python"])
def decode_ring(request):
    return r.decode_ring_py if request.param == "python" else r.decode_ring_c


def test_both_ring_loops_read_the_ids_of_the_records_that_have_them(decode_ring):
    recs = [RECORDS["open"], with_dd(RECORDS["open"]), with_dd(RECORDS["exit"], span=5, trace=6), RECORDS["rename"]]
    buf, end = ring(*recs)
    events, used, errors = decode_ring(buf, end)
    assert not errors and used == end
    assert [(e.span_id, e.trace_id) for e in events] == [(None, None), (SPAN, TRACE), (5, 6), (None, None)]
    assert events[1] == r.decode(recs[1], lazy=False)
    assert events[1].file._b is buf  # a view made by the loop itself (not handed to decode: no copy)


def test_a_trailer_the_flag_does_not_announce_sends_the_record_to_decode_which_refuses_it(decode_ring):
    data = with_dd(RECORDS["open"])
    h = list(r.HEADER.unpack_from(data))
    h[8] &= ~r.HF_DD
    buf, end = ring(r.HEADER.pack(*h) + data[r.HEADER.size:])
    events, _, errors = decode_ring(buf, end)
    assert events == [] and len(errors) == 1 and "record size" in errors[0]


def test_the_file_block_key_of_an_event_leaves_its_ids_out():
    """The serializer reuses a file block by its record's bytes: two spans touching the same file share it."""
    a, b = r.decode(with_dd(RECORDS["open"])), r.decode(with_dd(RECORDS["open"], span=7, trace=8))
    assert r.file_record_key(a) == r.file_record_key(b) == r.file_record_key(r.decode(RECORDS["open"]))
