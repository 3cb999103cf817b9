"""What the search and signals routers answer alike: a stored event as the API shows it, a JSON response
(written by `opencws.model.jsontext`, which keeps non-UTF-8 names), a date parameter, and a store failure as 503."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import HTTPException, Response

from opencws.backend.store import Hit, StoreError
from opencws.model import jsontext
from opencws.model.codec import format_timestamp, parse_timestamp

_ENVELOPE = ("host", "rule_id", "rule_version", "policy", "agent_version")


def json_response(content: Any, status: int = 200) -> Response:
    return Response(jsontext.dumps(content), status_code=status, media_type="application/json")


def hit_json(h: Hit) -> dict[str, Any]:
    """A stored event with its id, date and the envelope fields it was sent with."""
    out: dict[str, Any] = {"id": h.id, "date": format_timestamp(h.date), "event": orjson.Fragment(h.event)}
    for k in _ENVELOPE:
        v = getattr(h, k)
        if v:
            out[k] = v
    if h.tags:
        out["tags"] = h.tags
    return out


def time_param(value: str | None, name: str, default: int) -> int:
    """An RFC 3339 query parameter in nanoseconds (`default` when absent); 400 naming it when it is not one."""
    if value is None or value == "":
        return default
    try:
        return parse_timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise HTTPException(400, f"'{name}': not an RFC 3339 date-time (2026-12-01T10:00:00Z)") from None


def store_call(fn: Any, *args: Any, **kw: Any) -> Any:
    """`fn(*args, **kw)`, a store failure answered 503 with its reason."""
    try:
        return fn(*args, **kw)
    except StoreError as e:
        raise HTTPException(503, f"the store failed: {e}") from None
