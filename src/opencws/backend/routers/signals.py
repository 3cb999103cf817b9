"""Signals: `/api/v1/signals` (list, one with its events, status changes) and `/api/v1/webhooks` (the
deliveries). The rules themselves: `detection_rules.py`."""

from __future__ import annotations

import re
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from opencws.backend.dependencies import AdminKey, ReadKey, StoreDep
from opencws.backend.detection import Detection, audit
from opencws.backend.detection.rules import SEVERITIES
from opencws.backend.detection.signals import MAX_COMMENT, STATUSES, SignalError
from opencws.backend.routers.answers import hit_json, json_response, store_call, time_param
from opencws.backend.store import Store

router = APIRouter(prefix="/api/v1", tags=["signals"])
_ID = re.compile(r"^[0-9a-f]{1,64}$")



def _detection(request: Request) -> Detection:
    return request.app.state.detection  # type: ignore[no-any-return]


def _cursor(text: str | None) -> int | None:
    if not text:
        return None
    if not text.isdigit() or len(text) > 19:
        raise HTTPException(400, "invalid cursor: use the 'next' value of a previous page")
    return int(text)


@router.get("/signals", summary="Signals, newest first", responses={400: {}})
def list_signals(
    *,
    request: Request,
    status: Annotated[str | None, Query(description=" | ".join(STATUSES))] = None,
    rule_id: Annotated[str | None, Query(max_length=200)] = None,
    severity: Annotated[str | None, Query(description=" | ".join(SEVERITIES))] = None,
    from_: Annotated[
        str | None, Query(alias="from", max_length=64, description="RFC 3339: last seen at or after")
    ] = None,
    to: Annotated[str | None, Query(max_length=64, description="RFC 3339: first seen before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    _: ReadKey,
) -> Response:
    if status and status not in STATUSES:
        raise HTTPException(400, f"unknown status {status!r}: choose among {', '.join(STATUSES)}")
    if severity and severity not in SEVERITIES:
        raise HTTPException(400, f"unknown severity {severity!r}: choose among {', '.join(SEVERITIES)}")
    t_from = time_param(from_, "from", 0) if from_ else None
    t_to = time_param(to, "to", 0) if to else None
    found, nxt = _detection(request).signals.list(
        status=status, rule_id=rule_id, severity=severity, t_from=t_from, t_to=t_to, limit=limit,
        cursor=_cursor(cursor),
    )  # fmt: skip
    return json_response({"signals": [s.to_api() for s in found], "next": str(nxt) if nxt is not None else None})


def _events(store: Store, samples: list[list[Any]]) -> list[dict[str, Any]]:
    """The sample events, in the signal's order (one query; events the retention dropped are left out)."""
    return [hit_json(h) for h in store_call(store.get_many, [(d, i) for d, i in samples])]


@router.get("/signals/{signal_id}", summary="One signal with its sample events", responses={404: {}})
def get_signal(signal_id: str, request: Request, _: ReadKey, store: StoreDep) -> Response:
    s = _detection(request).signals.get(signal_id) if _ID.match(signal_id) else None
    if s is None:
        raise HTTPException(404, "no such signal")
    return json_response({**s.to_api(), "events": _events(store, s.samples)})


class StatusChange(BaseModel):
    status: str = Field(..., max_length=32, description=" | ".join(STATUSES))
    comment: str | None = Field(None, max_length=MAX_COMMENT)


@router.post(
    "/signals/{signal_id}/status", summary="Change a signal's status", responses={400: {}, 403: {}, 404: {}}
)
async def set_status(signal_id: str, change: StatusChange, request: Request, key: AdminKey) -> Response:
    d = _detection(request)
    actor = key.name or key.id  # a key created without a name is named by its id
    try:
        s = await run_in_threadpool(
            d.signals.set_status,
            signal_id if _ID.match(signal_id) else "",
            change.status,
            actor,
            change.comment,
        )
    except SignalError as e:
        raise HTTPException(400, str(e)) from None
    if s is None:
        raise HTTPException(404, "no such signal")
    audit(
        request.app,
        key,  # the principal: the audit log tells a key (key:ID (name)) from a user
        "signal.status",
        signal_id,
        {"status": change.status, "comment": change.comment},
    )
    return json_response(s.to_api())


@router.get("/webhooks", summary="The webhook's deliveries: counts by state and the last error")
def list_webhooks(request: Request, _: ReadKey) -> Response:
    d = _detection(request)
    if d.sender is None:
        return json_response({"webhooks": []})
    url = httpx.URL(d.sender.url)
    shown = str(url.copy_with(query=None, userinfo=b""))  # no secrets in a query string or credentials
    return json_response({"webhooks": [{"url": shown, **d.signals.webhook_summary()}]})
