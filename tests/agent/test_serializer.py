"""The agent's CWS event JSON (cached blocks, cached heads) against the model's own serialization, and the lazily
resolved `file` block against the files resolver (no kernel needed: records made by hand)."""

from __future__ import annotations

import dataclasses
import os
import struct
from types import SimpleNamespace

import orjson
import pytest

from kernel_records import FILE_EVENT_KINDS, file_info, file_record, with_dd
from opencws.agent.config import AgentConfig
from opencws.agent.event import LazyEvent, LazyFile
from opencws.agent.serializer import (
    SERIALIZED_FIELDS,
    envelope_prefix,
    event_parts,
    forget_files,
    serialize_event,
)
from opencws.model import jsontext
from opencws.model.codec import serialize
from opencws.model.event import Event, FileEvent, ProcessContext
from opencws.model.meta import public_fields
from opencws.probe import records as r
from opencws.probe.eventtypes import EventType
from opencws.resolvers import build_resolvers
from opencws.resolvers.files import file_values
from opencws.schema.validation import event_validator

UNRESOLVED = r.FI_PRESENT | r.FI_INCOMPLETE | r.FI_NOT_CACHED | r.FI_UPPER_LAYER | r.FI_NEGATIVE


@pytest.fixture(scope="module")
def resolvers():
    return build_resolvers(AgentConfig())


def record(etype: int, p1: bytes, extra: bytes, nr: int, *, inode: bool = True, retval: int = 0,
           path: bytes = b"/tmp/x/f\xe9") -> bytes:
    flags = r.FI_PRESENT | r.FI_INODE if inode else UNRESOLVED
    f0 = file_info(path, flags, resolved=None if inode else 6)
    return file_record(etype, path, p1, extra, nr=nr, retval=retval, f0=f0,
                       flags_arg=1 if etype == EventType.SELINUX else 0o1101)


def lazy(rec: bytes, resolvers, pid: int | None = None) -> LazyEvent:
    """A fresh event of this record (nothing resolved, nothing cached on it) of process `pid` (this one)."""
    entry = resolvers.processes.get(os.getpid() if pid is None else pid)
    return LazyEvent(r.decode(rec), resolvers, entry)


def model_copy(e: LazyEvent) -> Event:
    """The same CWS event as plain model values, with no JSON cached on the file or the process blocks."""
    values = {}
    for f in public_fields(Event):
        v = getattr(e, f.name)
        if isinstance(v, LazyFile):
            v = FileEvent(**{g.name: getattr(v, g.name) for g in public_fields(FileEvent)})
        elif isinstance(v, ProcessContext):
            v = dataclasses.replace(v)
        values[f.name] = v
    return Event(**values)


def test_the_serializer_writes_every_field_of_the_model_in_its_order():
    assert tuple(f.name for f in public_fields(Event)) == SERIALIZED_FIELDS


@pytest.mark.parametrize(("etype", "p1", "extra", "nr"), FILE_EVENT_KINDS)
@pytest.mark.parametrize("inode", [True, False])
def test_the_event_json_is_the_models_serialization_for_every_file_event_type(resolvers, etype, p1, extra, nr,
                                                                              inode):
    forget_files()
    rec = record(etype, p1, extra, nr, inode=inode, retval=-13 if inode else 0)
    expected = serialize(model_copy(lazy(rec, resolvers)))
    first = serialize_event(lazy(rec, resolvers))  # blocks serialized, head cached
    again = serialize_event(lazy(rec, resolvers))  # from the cached head
    assert first == expected and again == expected
    assert not event_validator().issues(jsontext.loads(again))


def test_a_cached_head_serves_only_the_same_file_outcome_and_process(resolvers):
    forget_files()
    ok = record(EventType.OPEN, b"", b"", 257)
    variants = [
        (ok, None),
        (record(EventType.OPEN, b"", b"", 257, retval=-13), None),  # refused: another outcome
        (ok, 1),  # another process
        (record(EventType.OPEN, b"", b"", 257, path=b"/tmp/x/g"), None),  # another file
    ]
    expected = [serialize(model_copy(lazy(rec, resolvers, pid))) for rec, pid in variants]
    assert len(set(expected)) == len(variants)
    for _ in range(2):
        assert [serialize_event(lazy(rec, resolvers, pid)) for rec, pid in variants] == expected


def test_a_cached_head_serves_only_events_of_the_same_span(resolvers):
    """The `dd` block (the span and trace the thread was in) comes before the date: in the head's key."""
    forget_files()
    rec = record(EventType.OPEN, b"", b"", 257)
    variants = [with_dd(rec, 111, 1), with_dd(rec, 222, 1), with_dd(rec, 111, 2), rec]
    expected = [serialize(model_copy(lazy(v, resolvers))) for v in variants]
    assert len(set(expected)) == len(variants)
    for _ in range(2):
        assert [serialize_event(lazy(v, resolvers)) for v in variants] == expected
    assert jsontext.loads(expected[1])["dd"] == {"span_id": 222, "trace_id": 1}


def test_the_date_is_the_events_own_when_the_head_is_cached(resolvers):
    forget_files()
    rec = record(EventType.OPEN, b"", b"", 257)
    first = lazy(rec, resolvers)
    serialize_event(first)
    ktime = r.HEADER.unpack_from(rec)[3]  # the same record 1.5 s later (the kernel's clock is in its header)
    later = lazy(rec[:8] + struct.pack("<Q", ktime + 1_500_000_001) + rec[16:], resolvers)
    assert later.date == first.date + 1_500_000_001
    assert jsontext.loads(serialize_event(later))["date"] == jsontext.loads(serialize(model_copy(later)))["date"]
    assert serialize_event(later) != serialize_event(first)


def test_a_line_is_the_envelope_around_the_event_json(resolvers):
    rule = SimpleNamespace(id="r1", version=None, tags=["a:b", "c:d"], policy="p.policy")
    e = lazy(record(EventType.CHMOD, b"", b"", 90), resolvers)
    body = event_parts(e)
    line = b"".join([envelope_prefix(rule, "host", "1.0"), *body, b"}"])
    event_json = b"".join(body)
    assert line == orjson.dumps({"rule_id": "r1", "rule_version": None, "tags": ["a:b", "c:d"], "policy": "p.policy",
                                 "host": "host", "agent_version": "1.0", "event": orjson.Fragment(event_json)})
    assert event_json == serialize(model_copy(lazy(record(EventType.CHMOD, b"", b"", 90), resolvers)))


@pytest.mark.parametrize(("etype", "p1", "extra", "nr"), FILE_EVENT_KINDS)
@pytest.mark.parametrize("inode", [True, False])
def test_the_lazy_file_block_holds_what_the_files_resolver_gives_for_the_same_kernel_file(resolvers, etype, p1,
                                                                                        extra, nr, inode):
    e = lazy(record(etype, p1, extra, nr, inode=inode), resolvers)
    f = e.file
    assert isinstance(f, LazyFile)
    expected = file_values(e.kernel.file, resolvers.users, f._root)
    assert {k: getattr(f, k) for k in expected} == expected
    if not inode:
        assert (f.uid, f.gid, f.user, f.group) == (-1, -1, None, None)  # never claims to be root's


def test_an_event_with_no_block_is_an_empty_object(resolvers):
    e = lazy(record(EventType.OPEN, b"", b"", 257), resolvers)
    for name in SERIALIZED_FIELDS:
        setattr(e, name, None)
    assert serialize_event(e) == serialize(Event()) == b"{}"
