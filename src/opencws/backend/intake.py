"""Accepting events: each document is a bare CWS event or the agent's envelope around one; each is checked
(envelope fields, nesting depth, the CWS event schema) and becomes a row, or a rejection with its index
and every reason.

Two ways, one answer. `accept_body` is the hot path: the body is split into each document's JSON text, and
each is parsed and checked in one pass by the Structs of `opencws.schema.structs`, which accept a subset of
what the schema accepts; the stored event is the text as received. When any document of a body is not
plainly valid that way, the whole body takes the slow twin, `accept(bodies.documents(...))`: orjson (or
`opencws.model.jsontext` for `\\udcXX` escapes), the exact validator, and every reason for each rejection.
`tests/backend/test_intake_paths.py` holds the two together.
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
from opencws.backend.store.rows import Envelope, event_row
from opencws.model import jsontext
from opencws.schema.structs import dates_checker, event_decoder, lenient
from opencws.schema.validation import event_validator

# The agent's envelope: {"rule_id", "rule_version", "tags", "policy", "host", "agent_version", "event"}.
ENVELOPE_STRINGS = ("rule_id", "rule_version", "policy", "host", "agent_version")
ENVELOPE_KEYS = frozenset((*ENVELOPE_STRINGS, "tags", "event"))
MAX_FIELD_CHARS = 1024


@dataclass
class Outcome:
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


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
    entries += [(f"/process/ancestors/{i}", a) for i, a in enumerate(p.ancestors or ())]
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
_BARE = Envelope()
# Deeper bodies are orjson's to refuse (its limit is 1024 levels): the slow twin answers them.
_FAST_DEPTH = 1000


def accept_body(
    body: bytes, content_type: str | None, max_documents: int, max_depth: int, received_ns: int | None = None
) -> Outcome:
    """A decompressed body → its rows and rejections (hot path; see the module's docstring). Raises
    `bodies.BodyError` for a body that is refused whole."""
    now = received_ns or time.time_ns()
    raws = bodies.raw_documents(body, content_type, max_documents)
    if raws is not None:
        with gc_paused():
            rows = _accept_plain(raws, min(max_depth, _FAST_DEPTH), now)
        if rows is not None:
            return Outcome(rows)
    return accept(bodies.documents(body, content_type, max_documents), max_depth, now)


def _accept_plain(raws: list[Any], max_depth: int, now: int) -> list[tuple[Any, ...]] | None:
    """The rows of documents that are all plainly valid, or None."""
    decode, dates_valid = event_decoder().decode, dates_checker()
    rows = []
    for raw in raws:
        try:
            try:
                event, env, text = decode(raw), _BARE, raw
            except msgspec.ValidationError:
                e = _ENVELOPE.decode(raw)
                env, text = _plain_envelope(e), e.event
                if env is None:
                    return None
                event = decode(text)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return None
        if not dates_valid(event) or _free_form_too_deep(event, max_depth, ""):
            return None
        try:
            rows.append(event_row(event, env, now, text))
        except (ValueError, OverflowError):
            return None
    return rows


def _plain_envelope(e: _FastEnvelope) -> Envelope | None:
    """The envelope when `_envelope` finds nothing to say about it, else None."""
    env = Envelope()
    for k in ENVELOPE_STRINGS:
        v = getattr(e, k)
        if v is None:
            continue
        if type(v) is int:
            v = str(v)
        if len(v) > MAX_FIELD_CHARS:
            return None
        setattr(env, k, v)
    if e.tags is not None:
        if len(e.tags) > 256 or any(len(t) > MAX_FIELD_CHARS for t in e.tags):
            return None
        env.tags = e.tags
    return env


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
