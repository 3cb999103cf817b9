"""Accepting events: each document is a bare CWS event or the agent's envelope around one; each is checked
(envelope fields, nesting depth, the CWS event schema) and becomes a row, or a rejection with its index
and every reason.

Two ways, one answer. `accept_body` is the hot path. First, when it is built, the compiled pass
(`opencws.backend.compiled_intake`, C): JSON lines or one object, each document parsed, checked and written
as its row's RowBinary in one pass over the body (`Outcome.encoded`, which the store takes as it is; the rows
are then lazy sequences read from it, for the detection engine); it accepts a subset of what the Python hot
path accepts (no escape where a column reads the value, Int64 integers only...) and says None for anything
else. Then the Python hot path: the body is split into each document's JSON text, and each is
parsed and checked in one pass by the Structs of `opencws.schema.structs`, which accept a subset of what
the schema accepts; the stored event is the text as received. Its `process.ancestors` stay text in
that pass: each distinct ancestors text is checked once (`opencws.backend.lineages`) and stored once a day
apart from the events (`opencws.backend.store.contexts`), with the parent's text when that comes right before
it (`_parent_before`). When any document of a body is not plainly valid
that way, the whole body takes the slow twin, `accept(bodies.documents(...))`: orjson (or
`opencws.model.jsontext` for `\\udcXX` escapes), the exact validator, and every reason for each rejection.
`tests/backend/test_intake_paths.py` holds the two together, `tests/backend/test_compiled_intake.py` the
compiled pass to the Python hot path.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec

from opencws.backend import bodies
from opencws.backend.bodies import Document, depth_exceeds
from opencws.backend.compiled_intake import compiled
from opencws.backend.lineages import LINEAGES, Lineage, Lineages, parent_key
from opencws.backend.store.contexts import PARENT_SEP, new_key
from opencws.backend.store.rowbinary import Cut
from opencws.backend.store.rows import Envelope, day_of, event_row, plain_date
from opencws.model import jsontext
from opencws.schema.structs import cut_dates_checker, cut_event, cut_event_decoder, lenient
from opencws.schema.validation import event_validator

# The agent's envelope: {"rule_id", "rule_version", "tags", "policy", "host", "agent_version", "event"}.
ENVELOPE_STRINGS = ("rule_id", "rule_version", "policy", "host", "agent_version")
ENVELOPE_KEYS = frozenset((*ENVELOPE_STRINGS, "tags", "event"))
MAX_FIELD_CHARS = 1024


@dataclass
class Outcome:
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    # Rows of the contexts table the rows need (`Store.insert(rows, contexts)` stores them first).
    contexts: list[tuple[Any, ...]] = field(default_factory=list)
    _new: list[tuple[Lineage, tuple[int, Any, bytes], str]] = field(default_factory=list)
    # The rows' RowBinary (`tables.COLUMNS`), when the compiled pass made them (`Store.insert(..., encoded)`).
    encoded: bytes | None = None

    def stored(self) -> None:
        """To call once `rows` and `contexts` are stored: later events name these contexts."""
        for entry, where, key in self._new:
            Lineages.stored(entry, where, key)


def _envelope(doc: dict[str, Any]) -> tuple[Envelope, list[str]]:
    env = Envelope()
    errors = [
        f"/{k}: unknown envelope property (expected {', '.join(sorted(ENVELOPE_KEYS))})"
        for k in doc
        if k not in ENVELOPE_KEYS
    ]
    for k in ENVELOPE_STRINGS:
        v = doc.get(k)
        if v is None:
            continue
        if k == "rule_version" and type(v) is int:
            v = str(v)
        if not isinstance(v, str):
            errors.append(f"/{k}: expected string, got {type(v).__name__}")
        elif len(v) > MAX_FIELD_CHARS:
            errors.append(f"/{k}: longer than {MAX_FIELD_CHARS} characters")
        else:
            setattr(env, k, v)
    tags = doc.get("tags")
    if tags is not None:
        if not isinstance(tags, list) or not all(
            isinstance(t, str) and len(t) <= MAX_FIELD_CHARS for t in tags
        ):
            errors.append(f"/tags: expected an array of strings (each at most {MAX_FIELD_CHARS} characters)")
        elif len(tags) > 256:
            errors.append("/tags: more than 256 tags")
        else:
            env.tags = tags
    if not isinstance(doc["event"], dict):
        errors.append("/event: expected an object (a CWS event)")
    return env, errors


def _free_form_too_deep(event: Any, limit: int, prefix: str) -> list[str]:
    """The schema fixes the shape of every part of a valid event but one: the free-form
    `credentials.destination` of a process entry. Its nesting is bounded here (so that every consumer of
    a stored event may recurse safely); the rest needs no walk. `event` is a Struct, strict or lenient."""
    p = event.process
    if not p:
        return []
    entries = [("/process", p)]
    if p.parent:
        entries.append(("/process/parent", p.parent))
    ancestors = p.ancestors
    if type(ancestors) is list:  # else its text, checked by `lineages`
        entries += [(f"/process/ancestors/{i}", a) for i, a in enumerate(ancestors)]
    errors = []
    for where, entry in entries:
        dest = entry.credentials.destination if entry.credentials else None
        if isinstance(dest, dict | list) and depth_exceeds(dest, limit):
            errors.append(f"{prefix}{where}/credentials/destination: nested deeper than {limit} levels")
    return errors


def accept(docs: list[Document], max_depth: int, received_ns: int | None = None) -> Outcome:
    validator = event_validator()
    now = received_ns or time.time_ns()
    out = Outcome()
    for doc in docs:
        if doc.error is not None:
            out.rejected.append({"index": doc.index, "errors": [doc.error]})
            continue
        value = doc.value
        if not isinstance(value, dict):
            out.rejected.append(
                {"index": doc.index, "errors": ["expected a JSON object (an event or an envelope)"]}
            )
            continue
        if "event" in value:
            env, errors = _envelope(value)
            event, prefix = value["event"], "/event"
        else:
            env, errors, event, prefix = Envelope(), [], value, ""
        struct = None
        if not errors:
            if validator.is_valid(event):
                struct = lenient(event)
                errors = _free_form_too_deep(struct, max_depth, prefix)
            else:
                errors = [
                    f"{prefix}{i.pointer}: {i.reason}" if i.pointer or prefix else f"/: {i.reason}"
                    for i in validator.issues(event)
                ]
        if errors:
            out.rejected.append({"index": doc.index, "errors": errors})
            continue
        try:
            out.rows.append(event_row(struct, env, now, jsontext.dumps(event)))
        except (ValueError, OverflowError) as e:  # a date the schema's format check let through
            out.rejected.append({"index": doc.index, "errors": [f"{prefix}/date: {e}"]})
    return out


class _FastEnvelope(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    event: msgspec.Raw
    rule_id: str | None = None
    rule_version: str | int | None = None
    tags: list[str] | None = None
    policy: str | None = None
    host: str | None = None
    agent_version: str | None = None


_ENVELOPE = msgspec.json.Decoder(_FastEnvelope)
# The envelope and its event decoded in one pass (the event's text is then found by `_event_span`).
_CutEnvelope = msgspec.defstruct(
    "_CutEnvelope",
    [(f.name, cut_event()) if f.name == "event" else (f.name, f.type, None) for f in msgspec.structs.fields(_FastEnvelope)],
    forbid_unknown_fields=True,
    gc=False,
)
_CUT_ENVELOPE = msgspec.json.Decoder(_CutEnvelope)
_SPACE = b" \t\r\n"
_ANCESTORS_KEY = b'"ancestors":'
_MIN_CUT = 64  # shorter ancestors texts stay in the event
_BARE = Envelope()
# Deeper bodies are orjson's to refuse (its limit is 1024 levels): the slow twin answers them.
_FAST_DEPTH = 1000


def accept_body(
    body: bytes, content_type: str | None, max_documents: int, max_depth: int, received_ns: int | None = None,
    store: Any = None,
) -> Outcome:  # fmt: skip
    """A decompressed body → its rows and rejections (hot path; see the module's docstring), for `store`
    (its `serial`: the rows name the ancestors texts stored in it; without a store, nothing is cut): the
    compiled pass, else the Python hot path, else the slow twin. Raises `bodies.BodyError` for a body that is
    refused whole."""
    now = received_ns or time.time_ns()
    serial = store.serial if store else 0
    fast = compiled() if type(body) is bytes else None
    if fast is not None:
        lines = bodies.json_lines(content_type)
        with gc_paused():
            got = fast.accept(body, lines, max_documents, min(max_depth, _FAST_DEPTH), now, serial)
        if got is not None:
            rows, encoded, contexts, new = got
            return Outcome(rows, [], contexts, new, encoded)
    raws = bodies.raw_documents(body, content_type, max_documents)
    if raws is not None:
        with gc_paused():
            out = _accept_plain(raws, min(max_depth, _FAST_DEPTH), now, serial)
        if out is not None:
            return out
    return accept(bodies.documents(body, content_type, max_documents), max_depth, now)


def _accept_plain(
    raws: list[Any], max_depth: int, now: int, serial: int = 0, lineages: Lineages = LINEAGES
) -> Outcome | None:
    """The rows of documents that are all plainly valid, or None. `serial`: the store's (0: cut nothing)."""
    decode, dates_valid = cut_event_decoder().decode, cut_dates_checker()
    out = Outcome()
    rows, contexts = out.rows, out.contexts
    # (id of a lineage, (serial, day, parent key)) → key of its copy stored with this batch
    pending: dict[tuple[int, Any], str] = {}
    enveloped = False  # whether the last document was an envelope: this one is tried as one first
    # JSON lines are views of the body: texts are found in the body itself, between the line's bounds.
    body, starts = getattr(raws, "body", None), getattr(raws, "starts", None)
    for i, raw in enumerate(raws):
        lo = 0
        bare: tuple[Any, tuple[int, int] | None] = (raw, None)  # a bare event's text: where it is
        if starts is not None:
            lo = starts[i]
            bare = (body, (lo, lo + len(raw)))
        try:
            if enveloped:
                try:
                    event, env, doc, span = _enveloped(raw, body, lo)
                except msgspec.ValidationError:
                    event, env, (doc, span) = decode(raw), _BARE, bare
                    enveloped = False
            else:
                try:
                    event, env, (doc, span) = decode(raw), _BARE, bare
                except msgspec.ValidationError:
                    event, env, doc, span = _enveloped(raw, body, lo)
                    enveloped = True
            if env is None:
                return None
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return None
        if not dates_valid(event) or _free_form_too_deep(event, max_depth, ""):
            return None
        try:
            date = plain_date(event, now)
            ancestors = event.process.ancestors if event.process else msgspec.UNSET
            lineage = None
            if ancestors is not msgspec.UNSET:
                piece = bytes(ancestors)
                lineage = lineages.find(piece, max_depth)
                if lineage is None:
                    return None
            at = -1
            if lineage is not None and len(piece) >= _MIN_CUT and serial:
                if type(doc) is not bytes:
                    doc = bytes(doc)
                start, end = span or (0, len(doc))
                at = _offset(doc, piece, start, end)
            if at < 0:  # nothing to cut, or the ancestors' text not plainly in the event's (stored whole)
                text = doc if span is None else memoryview(doc)[span[0] : span[1]]
                rows.append(event_row(event, env, now, text, lineage and lineage.facts, date=date))
                continue
            before = _parent_before(doc, at, start, end) if event.process.parent else 0
            if before:  # the parent's text goes with the ancestors'
                at -= before
                piece = doc[at : at + before + len(piece)]
            where = (serial, day_of(date), parent_key(piece, before))
            key = lineage.keys.get(where)
            if key is None:
                key = pending.get((id(lineage), where))
                if key is None:
                    key = pending[(id(lineage), where)] = new_key()
                    contexts.append((where[1], key, piece))
                    out._new.append((lineage, where, key))
            cut = Cut(memoryview(doc)[start:end], at - start, len(piece))
            rows.append(event_row(event, env, now, cut, lineage.facts, key, date))
        except (ValueError, OverflowError):
            return None
    return out


def _enveloped(
    raw: Any, body: bytes | None, lo: int
) -> tuple[Any, Envelope | None, Any, tuple[int, int] | None]:
    """An envelope's event (cut family), the envelope (None when `_envelope` would have something to say
    about it), the bytes holding the event's JSON text and where it is in them (None: all of them). `raw`
    is `body[lo:...]` when `body` is given. Raises msgspec's errors."""
    if body is None:
        body, lo = (raw if type(raw) is bytes else bytes(raw)), 0
    e = _CUT_ENVELOPE.decode(raw)
    span = _event_span(body, lo, lo + len(raw))
    if span is not None:
        return e.event, _plain_envelope(e), body, span
    e = _ENVELOPE.decode(raw)  # the event's text by a second pass
    return cut_event_decoder().decode(e.event), _plain_envelope(e), e.event, None


def _event_span(doc: bytes, lo: int, hi: int) -> tuple[int, int] | None:
    """Where the event's JSON is in a document `_CUT_ENVELOPE` accepted, when that is plain to see: `"event"`
    appears once in the document (so it is the envelope's one `event` key: the envelope's other values are
    strings, arrays of them, integers and nulls, and a quote inside a string is escaped) and its value comes
    last (then the text before the envelope's closing brace ends with the event's; had another member come
    after, it would end with that member's value, never an object). The document is `doc[lo:hi]`. Else None."""
    if doc.find(b"\\u", lo, hi) >= 0:
        return None  # a key may be written with escapes (`"\\u0065vent"` is `event` too): the exact second pass
    i = doc.find(b'"event"', lo, hi)
    if i < 0 or doc.find(b'"event"', i + 7, hi) >= 0:
        return None
    start = i + 7
    while doc[start] in _SPACE:
        start += 1
    if doc[start] != 0x3A:  # ':'
        return None
    start += 1
    while doc[start] in _SPACE:
        start += 1
    end = hi - 1
    while doc[end] in _SPACE:
        end -= 1
    end -= 1  # the envelope's closing brace
    while doc[end] in _SPACE:
        end -= 1
    if doc[end] != 0x7D or end < start:  # '}'
        return None
    return start, end + 1


def _offset(doc: bytes, piece: bytes, start: int, end: int) -> int:
    """Where `piece` (the text of `process.ancestors`) is in the event's text, `doc[start:end]`: after the
    first `"ancestors":` when it is there, else its first occurrence (any occurrence inside the event's text
    puts the same bytes back); -1 when it is not there whole (a key written with escapes or spaces and no
    copy of the text inside the event's bounds: the event is then stored whole)."""
    i = doc.find(_ANCESTORS_KEY, start, end) + len(_ANCESTORS_KEY)
    if i >= len(_ANCESTORS_KEY) and doc.startswith(piece, i, end):
        return i
    return doc.find(piece, start, end)


class _ParentText(msgspec.Struct, frozen=True):
    parent: msgspec.Raw = msgspec.Raw()


class _ProcessParentText(msgspec.Struct):
    process: _ParentText = _ParentText()


_PARENT_TEXT = msgspec.json.Decoder(_ProcessParentText)


def _parent_before(doc: bytes, at: int, start: int, end: int) -> int:
    """How many bytes before `at` (where the ancestors' text is cut out of the event's text `doc[start:end]`)
    go with it: the text of `process.parent` and `,"ancestors":` when that is what is right before `at` (as
    the agent writes a process: its parent, then its ancestors, whose first is most often the same process),
    else 0. The event's `process.parent` must be set."""
    sep = at - len(PARENT_SEP)
    if sep <= start or not doc.startswith(PARENT_SEP, sep):
        return 0
    parent = _PARENT_TEXT.decode(memoryview(doc)[start:end]).process.parent
    n = len(parent)
    if not n or sep - n < start or memoryview(doc)[sep - n : sep] != memoryview(parent):
        return 0
    return n + len(PARENT_SEP)


def _plain_envelope(e: Any) -> Envelope | None:
    """The envelope when `_envelope` finds nothing to say about it, else None."""
    rule_id, version, policy, host, agent = e.rule_id, e.rule_version, e.policy, e.host, e.agent_version
    if type(version) is int:
        version = str(version)
    for v in (rule_id, version, policy, host, agent):
        if v is not None and len(v) > MAX_FIELD_CHARS:
            return None
    tags = e.tags
    if tags is not None and (len(tags) > 256 or any(len(t) > MAX_FIELD_CHARS for t in tags)):
        return None
    return Envelope(
        rule_id or "", version or "", policy or "", host or "", agent or "", [] if tags is None else tags
    )


_gc_lock = threading.Lock()
_gc_pauses = 0


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off while a batch is decoded (its objects hold no cycles; the collector would
    rescan them again and again), on again when the last concurrent batch is done."""
    global _gc_pauses
    with _gc_lock:
        _gc_pauses += 1
        gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if not _gc_pauses:
                gc.enable()
