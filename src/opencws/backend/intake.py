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
        if depth_exceeds(value, max_depth):
            out.rejected.append({"index": doc.index, "errors": [f"nested deeper than {max_depth} levels"]})
            continue
        if "event" in value:
            env, errors = _envelope(value)
            event, prefix = value["event"], "/event"
        else:
            env, errors, event, prefix = Envelope(), [], value, ""
        if not errors and not validator.is_valid(event):
            errors = [
                f"{prefix}{i.pointer}: {i.reason}" if i.pointer or prefix else f"/: {i.reason}"
                for i in validator.issues(event)
            ]
        if errors:
            out.rejected.append({"index": doc.index, "errors": errors})
            continue
        try:
            out.rows.append(event_row(event, env, now))
        except (ValueError, OverflowError) as e:  # a date the schema's format check let through
            out.rejected.append({"index": doc.index, "errors": [f"{prefix}/date: {e}"]})
    return out
