"""`/api/v1/audit`: the audit log, newest first, for admins. It holds user management and failed sign-ins
(names tried, client addresses), which help an attacker; a read user sees each signal's triage history
on the signal itself."""

from __future__ import annotations

import datetime
from typing import Any

from fastapi import APIRouter, Query, Request

from opencws.backend.auth.audit import AuditLog, Entry
from opencws.backend.dependencies import AdminKey

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def _entry(e: Entry) -> dict[str, Any]:
    at = datetime.datetime.fromtimestamp(e.at, datetime.UTC).isoformat(timespec="milliseconds")
    return {"id": e.id, "at": at.replace("+00:00", "Z"), "actor": e.actor, "action": e.action,
            "target": e.target, "detail": e.detail}  # fmt: skip


@router.get("", summary="The audit log: who changed what, when")
def get_audit(
    *,
    _: AdminKey,
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    cursor: int | None = Query(None, ge=1, description="the `next` of the previous page"),
    action: str | None = Query(
        None, max_length=100, description="an action or its prefix: signal., user.add"
    ),
    actor: str | None = Query(None, max_length=200),
    target: str | None = Query(None, max_length=200),
) -> Any:
    log: AuditLog = request.app.state.audit
    entries = log.entries(before=cursor, limit=limit, action=action, actor=actor, target=target)
    nxt = entries[-1].id if len(entries) == limit else None
    return {"entries": [_entry(e) for e in entries], "next": nxt}
