"""Detection rules: `GET /api/v1/detection-rules` (the loaded rules, each with whether it is enabled) and
`PATCH /api/v1/detection-rules/{id}` (admin: enable or disable one; persisted, applied to the next batch,
audited)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from opencws.backend.auth.principal import label
from opencws.backend.dependencies import AdminKey, ReadKey
from opencws.backend.detection import Detection, DetectionRule, audit
from opencws.model.codec import format_timestamp

router = APIRouter(prefix="/api/v1", tags=["detection rules"])


def _detection(request: Request) -> Detection:
    return request.app.state.detection  # type: ignore[no-any-return]


def _rule(r: DetectionRule, disabled: dict[str, dict[str, Any]]) -> dict[str, Any]:
    off = disabled.get(r.id)
    state = None if off is None else {"by": off["by"], "at": format_timestamp(off["at"])}
    return {**r.describe(), "enabled": off is None, "disabled": state}


def _json(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


@router.get("/detection-rules", summary="The loaded detection rules, each with whether it is enabled")
def list_rules(request: Request, _: ReadKey) -> Response:
    d = _detection(request)
    disabled = d.toggles.disabled()
    return _json({"rules": [_rule(r, disabled) for r in d.rules]})


def _find(d: Detection, rule_id: str) -> DetectionRule:
    for r in d.rules:
        if r.id == rule_id:
            return r
    raise HTTPException(404, f"no detection rule {rule_id!r} is loaded")


@router.get("/detection-rules/{rule_id}", summary="One detection rule", responses={404: {}})
def get_rule(rule_id: str, request: Request, _: ReadKey) -> Response:
    d = _detection(request)
    return _json(_rule(_find(d, rule_id), d.toggles.disabled()))


class RuleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


@router.patch(
    "/detection-rules/{rule_id}",
    summary="Enable or disable a detection rule (admin; kept across restarts)",
    responses={403: {}, 404: {}},
)
async def change_rule(rule_id: str, change: RuleChange, request: Request, who: AdminKey) -> Response:
    d = _detection(request)
    _find(d, rule_id)
    changed = await run_in_threadpool(d.set_enabled, rule_id, change.enabled, label(who))
    if changed:
        audit(request.app, who, "rule.enable" if change.enabled else "rule.disable", rule_id, {})
    return _json(_rule(_find(d, rule_id), d.toggles.disabled()))
