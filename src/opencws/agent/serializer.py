"""CWS events to bytes: the event once, then one envelope per matching rule.

An output line is `{"rule_id", "rule_version", "tags", "policy", "host", "agent_version", "event"}`: what
matched and where, around the CWS event, which stays valid against the schema on its own. The event is
serialized once (frozen parts of it, the process's ancestors and executable, reuse their cached JSON) and
embedded as an `orjson.Fragment` in each envelope.
"""

from __future__ import annotations

from typing import Any

import orjson

from opencws.agent.event import LazyFile
from opencws.model.codec import serialize
from opencws.model.meta import JSON_CACHE
from opencws.probe.records import file_record_key

FILE_BLOCKS_MAX = 4096
_file_blocks: dict[tuple[bytes, str], Any] = {}
"""The JSON of recent `file` blocks by the record bytes they came from and the root their owner names were
looked up in: a file touched again and again is serialized once. Forgotten every second (`forget_files`),
so that renamed users and groups show within a second."""


def serialize_event(event: Any) -> bytes:
    """The CWS event as compact JSON (a `LazyEvent` resolves every block it has as it is written)."""
    f = event.file
    key = None
    if isinstance(f, LazyFile):
        raw = file_record_key(event.kernel)
        if raw is not None:
            key = (raw, f._root)
            cached = _file_blocks.get(key)
            if cached is not None:
                object.__setattr__(f, JSON_CACHE, cached)
                return serialize(event)
    data = serialize(event)
    if key is not None:
        if len(_file_blocks) >= FILE_BLOCKS_MAX:
            _file_blocks.clear()
        _file_blocks[key] = getattr(f, JSON_CACHE)
    return data


def forget_files() -> None:
    _file_blocks.clear()


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
