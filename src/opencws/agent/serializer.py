"""CWS events to bytes: the event once, then one envelope per matching rule.

An output line is `{"rule_id", "rule_version", "tags", "policy", "host", "agent_version", "event"}`: what
matched and where, around the CWS event, which stays valid against the schema on its own. The event is
serialized once (frozen parts of it, the process's ancestors and executable, reuse their cached JSON) and
embedded as an `orjson.Fragment` in each envelope.
"""

from __future__ import annotations

from typing import Any

import orjson

from opencws.model.codec import serialize


def serialize_event(event: Any) -> bytes:
    """The CWS event as compact JSON (a `LazyEvent` resolves every block it has as it is written)."""
    return serialize(event)


def envelope(rule: Any, host: str, agent_version: str, event_json: bytes) -> bytes:
    return orjson.dumps({
        "rule_id": rule.id,
        "rule_version": rule.version,
        "tags": rule.tags,
        "policy": rule.policy,
        "host": host,
        "agent_version": agent_version,
        "event": orjson.Fragment(event_json),
    })
