"""Accepting events: each document is a bare CWS event or the agent's envelope around one; each is checked
(envelope fields, nesting depth, the CWS event schema) and becomes a row, or a rejection with its index
and every reason."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from opencws.backend.bodies import Document, depth_exceeds
from opencws.backend.store.rows import Envelope, event_row
from opencws.schema.validation import event_validator

# The agent's envelope: {"rule_id", "rule_version", "tags", "policy", "host", "agent_version", "event"}.
ENVELOPE_STRINGS = ("rule_id", "rule_version", "policy", "host", "agent_version")
ENVELOPE_KEYS = frozenset((*ENVELOPE_STRINGS, "tags", "event"))
MAX_FIELD_CHARS = 1024


@dataclass
class Outcome:
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # the parsed event of each row (detection)
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


def _free_form_too_deep(event: dict[str, Any], limit: int, prefix: str) -> list[str]:
    """The schema fixes the shape of every part of a valid event but one: the free-form
    `credentials.destination` of a process entry. Its nesting is bounded here (so that every consumer of
    a stored event may recurse safely); the rest needs no walk."""
    p = event.get("process")
    if not p:
        return []
    entries = [("/process", p)]
    if p.get("parent"):
        entries.append(("/process/parent", p["parent"]))
    entries += [(f"/process/ancestors/{i}", a) for i, a in enumerate(p.get("ancestors") or ())]
    errors = []
    for where, entry in entries:
        dest = (entry.get("credentials") or {}).get("destination")
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
        if not errors:
            if validator.is_valid(event):
                errors = _free_form_too_deep(event, max_depth, prefix)
            else:
                errors = [
                    f"{prefix}{i.pointer}: {i.reason}" if i.pointer or prefix else f"/: {i.reason}"
                    for i in validator.issues(event)
                ]
        if errors:
            out.rejected.append({"index": doc.index, "errors": errors})
            continue
        try:
            out.rows.append(event_row(event, env, now))
            out.events.append(event)
        except (ValueError, OverflowError) as e:  # a date the schema's format check let through
            out.rejected.append({"index": doc.index, "errors": [f"{prefix}/date: {e}"]})
    return out
