"""Detection rules: `GET /api/v1/detection-rules` (the loaded rules, each with whether it is enabled),
`PATCH /api/v1/detection-rules/{id}` (admin: enable or disable one), `PUT` (admin: create or replace a rule
from its YAML text) and `DELETE` (admin: a rule written with PUT). Each change is persisted, applied from
the next batch of events, and audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from opencws.backend.auth.principal import label
from opencws.backend.dependencies import AdminKey, ReadKey
from opencws.backend.detection import Detection, DetectionRule, RulesError, audit, managed
from opencws.backend.detection.managed import MAX_BYTES
from opencws.model.codec import format_timestamp

router = APIRouter(prefix="/api/v1", tags=["detection rules"])


def _detection(request: Request) -> Detection:
    return request.app.state.detection  # type: ignore[no-any-return]


def _rule(
    r: DetectionRule, d: Detection, disabled: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    off = (d.toggles.disabled() if disabled is None else disabled).get(r.id)
    state = None if off is None else {"by": off["by"], "at": format_timestamp(off["at"])}
    editable = managed.is_managed(r, d.data_dir)  # written from the API: replaced or deleted from it
    return {**r.describe(), "enabled": off is None, "disabled": state, "managed": editable}


def _json(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


@router.get("/detection-rules", summary="The loaded detection rules, each with whether it is enabled")
def list_rules(request: Request, _: ReadKey) -> Response:
    d = _detection(request)
    disabled = d.toggles.disabled()
    return _json({"rules": [_rule(r, d, disabled) for r in d.rules]})


def _find(d: Detection, rule_id: str) -> DetectionRule:
    for r in d.rules:
        if r.id == rule_id:
            return r
    raise HTTPException(404, f"no detection rule {rule_id!r} is loaded")


@router.get("/detection-rules/{rule_id}", summary="One detection rule", responses={404: {}})
def get_rule(rule_id: str, request: Request, _: ReadKey) -> Response:
    d = _detection(request)
    r = _find(d, rule_id)
    out = _rule(r, d)
    if out["managed"]:
        out["yaml"] = Path(r.source).read_text(encoding="utf-8")
    return _json(out)


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
    return _json(_rule(_find(d, rule_id), d))


@router.put(
    "/detection-rules/{rule_id}",
    summary="Create or replace a rule from a rule file's YAML text holding it alone (admin)",
    responses={400: {}, 403: {}, 409: {}, 413: {}},
    openapi_extra={"requestBody": {"content": {"application/yaml": {"schema": {"type": "string"}}}}},
)
async def put_rule(rule_id: str, request: Request, who: AdminKey) -> Response:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BYTES:
            raise HTTPException(413, f"a rule file is at most {MAX_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HTTPException(400, f"not UTF-8 text (byte at offset {e.start})") from None
    d = _detection(request)
    try:
        rule, replaced = await run_in_threadpool(d.put_rule, rule_id, text)
    except RulesError as e:
        raise HTTPException(400, str(e)) from None
    except PermissionError as e:
        raise HTTPException(409, str(e)) from None
    action = "rule.replace" if replaced else "rule.create"
    audit(request.app, who, action, rule_id, {"yaml": text})
    return Response(
        orjson.dumps(_rule(rule, d)),
        status_code=200 if replaced else 201,
        media_type="application/json",
    )


@router.delete(
    "/detection-rules/{rule_id}",
    summary="Delete a rule written with PUT (admin)",
    status_code=204,
    responses={403: {}, 404: {}, 409: {}},
)
async def delete_rule(rule_id: str, request: Request, who: AdminKey) -> Response:
    try:
        found = await run_in_threadpool(_detection(request).delete_rule, rule_id)
    except PermissionError as e:
        raise HTTPException(409, str(e)) from None
    if not found:
        raise HTTPException(404, f"no detection rule {rule_id!r} is loaded")
    audit(request.app, who, "rule.delete", rule_id, {})
    return Response(status_code=204)
