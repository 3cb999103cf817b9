"""The serializer follows the project's conventions (shared/spec/README.md) and round-trips."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from opencws.model.codec import (
    DecodeError,
    event_from_json,
    format_timestamp,
    parse_timestamp,
    serialize,
    to_dict,
)
from opencws.model.event import (
    BPFEvent,
    BPFProgram,
    ContainerContext,
    DDContext,
    Event,
    EventContext,
    FileEvent,
    SELinuxEvent,
    UserContext,
)
from opencws.model.examples import exec_event, open_event


def test_top_level_keys_come_in_the_conventional_order():
    event = open_event()
    event.bpf = BPFEvent(cmd="BPF_PROG_LOAD", program=BPFProgram(name="x"))
    event.dd = DDContext(span_id=1, trace_id=2)
    event.container = ContainerContext(id="a" * 64)
    keys = list(orjson.loads(serialize(event)))
    assert keys == ["evt", "file", "bpf", "usr", "process", "dd", "container", "date"]


def test_blocks_with_nothing_to_say_are_omitted():
    event = Event(
        evt=EventContext(name="exec"),
        selinux=SELinuxEvent(),
        dd=DDContext(),
        container=ContainerContext(),
        usr=UserContext(id=""),
    )
    assert orjson.loads(serialize(event)) == {"evt": {"name": "exec"}}


def test_required_fields_are_always_present_even_when_zero_or_empty():
    doc = orjson.loads(serialize(Event(file=FileEvent(path="/x"), bpf=BPFEvent())))
    assert doc["file"] == {"path": "/x", "uid": 0, "gid": 0}
    assert doc["bpf"] == {"cmd": ""}
    creds = orjson.loads(serialize(exec_event(0)))["process"]["credentials"]
    assert creds["cap_effective"] == [] and creds["cap_permitted"] == []
    assert {"uid", "gid", "euid", "egid", "fsuid", "fsgid"} <= creds.keys()


def test_false_and_zero_are_kept_but_none_and_empty_strings_are_not():
    doc = to_dict(FileEvent(path="", in_upper_layer=False, inode=0, flags=[]))
    assert doc == {"in_upper_layer": False, "inode": 0, "uid": 0, "gid": 0}


def test_dates_are_rfc3339_utc_with_nanoseconds():
    assert format_timestamp(1_763_747_702_000_000_001) == "2025-11-21T17:55:02.000000001Z"
    assert format_timestamp(0) == "1970-01-01T00:00:00.000000000Z"
    assert orjson.loads(serialize(exec_event()))["date"] == "2025-11-21T17:55:02.123456789Z"


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2025-11-21T17:55:02.123456789Z", 1_763_747_702_123_456_789),
        ("2025-11-21T18:55:02.5+01:00", 1_763_747_702_500_000_000),
        ("2025-11-21T17:55:02Z", 1_763_747_702_000_000_000),
        ("2025-11-21t17:55:02.1234567891z", 1_763_747_702_123_456_789),
        ("2016-12-31T23:59:60Z", 1_483_228_800_000_000_000),
    ],
)
def test_dates_parse_back_to_nanoseconds(text, ns):
    assert parse_timestamp(text) == ns


def test_modes_are_integers_with_type_bits():
    doc = orjson.loads(serialize(open_event()))
    assert doc["file"]["mode"] == 0o100640 == 33184


def test_the_parent_is_the_first_ancestor_and_ancestors_exclude_the_process():
    doc = orjson.loads(serialize(exec_event(5)))
    proc = doc["process"]
    assert proc["parent"] == proc["ancestors"][0]
    assert proc["pid"] not in [a["pid"] for a in proc["ancestors"]]
    assert proc["ancestors"][-1]["pid"] == 1


def test_an_event_round_trips_through_json():
    for event in (exec_event(5), open_event(), exec_event(0, container=False)):
        again = event_from_json(serialize(event))
        again.retval = event.retval
        assert again == event
        assert serialize(again) == serialize(event)


def test_serialized_values_are_reused_and_identical_to_a_fresh_serialization():
    event = exec_event(3)
    first = serialize(event)
    assert serialize(event) == first
    assert first == orjson.dumps(to_dict(event))


def test_frozen_values_cannot_change_after_being_serialized():
    event = exec_event(1)
    serialize(event)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.process.pid = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b'{"evt": {"name": "open"', "malformed JSON"),
        (b'{"evt": {"nom": "open"}}', "/evt/nom: unknown key"),
        (b'{"process": {"uid": 0, "gid": 0, "ancestors": {}}}', "/process/ancestors: expected an array"),
        (b'{"date": "yesterday"}', "/date: not an RFC 3339 date-time"),
        (b'{"file": []}', "/file: expected an object"),
    ],
)
def test_decoding_bad_json_names_the_offending_place(doc, message):
    with pytest.raises(DecodeError, match=message):
        event_from_json(doc)


def test_a_null_value_is_an_absent_one_and_the_keys_after_it_are_read():
    e = event_from_json(b'{"evt": {"name": "open", "category": null, "outcome": "Success"}, "file": null,'
                        b' "process": {"uid": 0, "gid": 0, "pid": null, "tid": 7}}')
    assert e.evt.name == "open" and e.evt.outcome == "Success" and e.file is None
    assert e.evt.category is None and e.process.tid == 7 and e.process.pid is None
