"""CWS events to bytes: the event once, then one envelope per matching rule.

An output line is `{"rule_id", "rule_version", "tags", "policy", "host", "agent_version", "event"}`: what
matched and where, around the CWS event, which stays valid against the schema on its own.

A matched event's line is mostly blocks that do not change from one event to the next: the process block
(with its ancestors, cached as JSON per process generation by the process cache's frozen values), the file
block (cached by the kernel record's bytes), the `evt`, `usr` and `container` blocks (few distinct values).
`event_parts` gives the event's JSON as those cached pieces, and a line is the rule's envelope head
(`envelope_prefix`, computed once per rule), the pieces and the closing brace, joined once: the 7.5 KB of a
typical line are copied once in user space. The bytes are those of `opencws.model.codec.serialize` (a test
holds them equal for every event type).
"""

from __future__ import annotations

from typing import Any

from opencws.agent.event import LazyEvent, LazyFile, event_date, file_event_key
from opencws.model import jsontext
from opencws.model.codec import encoder, format_timestamp, frozen_json, serialize
from opencws.probe import events as kev
from opencws.probe.records import file_record_key

FILE_BLOCKS_MAX = 4096
_file_blocks: dict[tuple[bytes, str], bytes] = {}
"""The JSON of recent `file` blocks by the record bytes they came from and the root their owner names were
looked up in: a file touched again and again is serialized once. Forgotten every second (`forget_files`),
so that renamed users and groups show within a second."""

SHARED_BLOCKS_MAX = 4096
_shared_blocks: dict[tuple[Any, ...], bytes] = {}
"""The JSON of `evt`, `usr` and `container` blocks by their values (b"" for an empty block, left out)."""

SERIALIZED_FIELDS = ("evt", "file", "selinux", "bpf", "usr", "process", "dd", "container", "date")
"""The fields of `model.event.Event` that `event_parts` writes, in the model's order (a test checks them)."""

_FIRST = {n: b'{"' + n.encode() + b'":' for n in SERIALIZED_FIELDS}
_NEXT = {n: b',"' + n.encode() + b'":' for n in SERIALIZED_FIELDS}


def serialize_event(event: Any) -> bytes:
    """The CWS event as compact JSON (a `LazyEvent` resolves every block it has as it is written)."""
    if type(event) is LazyEvent:
        return b"".join(event_parts(event))
    return serialize(event)


HEADS_MAX = 1024
_heads: dict[tuple[Any, ...], tuple[Any, bytes]] = {}
"""The JSON of file events up to their `date` (about 7 KB each: bounded), by what the blocks before the date are
made of: the record's bytes, the dd trailer's span and trace ids included (the `dd` block), the root of the
file's owner names (the `file` block), the `evt` block, the process block (one object per process generation,
and the `usr` block follows from it), and the container id (one shared container block per id); `evt` and
process blocks are shared objects: by identity, the value keeps the process block alive so that its id is not
reused. Forgotten with the file blocks."""


def event_parts(e: LazyEvent) -> list[bytes]:
    """The CWS event's JSON as pieces to join (cached blocks are not copied): for a file event seen before with
    the same file, process and outcome, its cached head, the date and the closing brace.

    The head's key is made with the event's own resolvers called directly (`event.file_event_key`: what its
    `evt`, `process` and `container` blocks are, without the cost of filling them): a hit reads no block."""
    k = e._k
    raw = file_record_key(k, ids=True)  # the `dd` block is in the head: its ids are in the key
    if raw is not None and not isinstance(k, _OWN_BLOCKS):
        f = e.file
        if isinstance(f, LazyFile):
            ctx, evt, container = file_event_key(e)
            key = (raw, f._root, id(evt), id(ctx), container)
            hit = _heads.get(key)
            if hit is not None and hit[0] is ctx:
                return [hit[1], _date_tail(event_date(e))]
            parts = _all_parts(e)
            if parts[-3] == _NEXT["date"]:
                if len(_heads) >= HEADS_MAX:
                    _heads.clear()
                _heads[key] = (ctx, b"".join(parts[:-2]))
            return parts
    return _all_parts(e)


def _date_tail(ns: int) -> bytes:
    """`"2026-11-21T17:55:02.123456789Z"}`: the date (as `format_timestamp` writes it) and the event's brace."""
    sec, frac = divmod(ns, 1_000_000_000)
    head = _seconds.get(sec)
    if head is None:
        if len(_seconds) >= 64:
            _seconds.clear()
        head = _seconds[sec] = b'"' + format_timestamp(sec * 1_000_000_000)[:-10].encode()
    return b'%b%09dZ"}' % (head, frac)


_seconds: dict[int, bytes] = {}


_OWN_BLOCKS = (kev.SelinuxEvent, kev.BpfEvent)
"""Kernel events with a block of their own besides `file` (not cached as heads)."""


def _all_parts(e: LazyEvent) -> list[bytes]:
    out: list[bytes] = []
    key = _FIRST
    v = e.evt
    if v is not None:
        j = _shared(("evt", v.name, v.category, v.outcome), v)
        if j:
            out += (key["evt"], j)
            key = _NEXT
    v = e.file
    if v is not None:
        out += (key["file"], _file_json(e, v))
        key = _NEXT
    for name in ("selinux", "bpf"):
        v = getattr(e, name)
        if v is not None:
            d = encoder(type(v))(v)
            if d:
                out += (key[name], jsontext.dumps(d))
                key = _NEXT
    v = e.usr
    if v is not None:
        j = _shared(("usr", v.id, v.group), v)
        if j:
            out += (key["usr"], j)
            key = _NEXT
    v = e.process
    if v is not None:
        out += (key["process"], frozen_json(v))
        key = _NEXT
    v = e.dd
    if v is not None:
        d = encoder(type(v))(v)
        if d:
            out += (key["dd"], jsontext.dumps(d))
            key = _NEXT
    v = e.container
    if v is not None:
        j = _shared(("container", v.id), v)
        if j:
            out += (key["container"], j)
            key = _NEXT
    v = e.date
    if v is not None:
        out += (key["date"], b'"' + format_timestamp(v).encode() + b'"')
        key = _NEXT
    out.append(b"}" if key is _NEXT else b"{}")
    return out


def _shared(key: tuple[Any, ...], value: Any) -> bytes:
    j = _shared_blocks.get(key)
    if j is None:
        d = encoder(type(value))(value)
        j = jsontext.dumps(d) if d else b""
        if len(_shared_blocks) >= SHARED_BLOCKS_MAX:
            _shared_blocks.clear()
        _shared_blocks[key] = j
    return j


def _file_json(e: LazyEvent, f: Any) -> bytes:
    if not isinstance(f, LazyFile):
        return frozen_json(f)
    raw = file_record_key(e.kernel)
    if raw is None:
        return frozen_json(f)
    key = (raw, f._root)
    j = _file_blocks.get(key)
    if j is None:
        j = frozen_json(f)
        if len(_file_blocks) >= FILE_BLOCKS_MAX:
            _file_blocks.clear()
        _file_blocks[key] = j
    return j


def forget_files() -> None:
    _file_blocks.clear()
    _heads.clear()


def envelope_prefix(rule: Any, host: str, agent_version: str) -> bytes:
    """The envelope of a rule's lines up to its `event` (the line is this, the event's JSON, and `}`)."""
    doc = jsontext.dumps({
        "rule_id": rule.id,
        "rule_version": rule.version,
        "tags": rule.tags,
        "policy": rule.policy,
        "host": host,
        "agent_version": agent_version,
        "event": None,
    })
    assert doc.endswith(b"null}")
    return doc[: -len(b"null}")]


def envelope(rule: Any, host: str, agent_version: str, event_json: bytes) -> bytes:
    return envelope_prefix(rule, host, agent_version) + event_json + b"}"
