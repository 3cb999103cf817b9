"""`POST /api/v1/events`: events in (one object, an array or JSON lines; gzip), stored before the answer."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from opencws.backend import bodies
from opencws.backend.dependencies import IngestKey, MetricsDep, SettingsDep, StoreDep
from opencws.backend.intake import accept
from opencws.backend.store import StoreError

router = APIRouter(prefix="/api/v1", tags=["intake"])


class Rejection(BaseModel):
    index: int
    errors: list[str]


class IntakeAnswer(BaseModel):
    stored: int
    rejected: list[Rejection]


async def _read(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HTTPException(400, "invalid Content-Length")
        if int(length) > limit:
            raise HTTPException(413, f"the body is larger than {limit} bytes")
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise HTTPException(413, f"the body is larger than {limit} bytes")
    return bytes(buf)


@router.post(
    "/events",
    response_model=IntakeAnswer,
    summary="Send CWS events",
    description=(
        "One JSON object, a JSON array or JSON lines (`application/x-ndjson`), optionally gzip-compressed "
        "(`Content-Encoding: gzip`). Each document is a CWS event or the agent's envelope "
        '`{"rule_id", "rule_version", "tags", "policy", "host", "agent_version", "event"}`. Valid events are '
        "stored before the answer; each invalid one is listed with its index and every reason. Needs the "
        "`ingest` scope."
    ),
    responses={400: {}, 401: {}, 403: {}, 413: {}, 415: {}, 429: {}, 503: {}},
)
async def post_events(
    request: Request,
    _: IngestKey,
    settings: SettingsDep,
    store: StoreDep,
    metrics: MetricsDep,
) -> IntakeAnswer:
    raw = await _read(request, settings.max_body_bytes)

    def work() -> IntakeAnswer:
        try:
            body = bodies.decompress(
                raw, request.headers.get("content-encoding"), settings.max_decompressed_bytes
            )
            docs = bodies.documents(
                body, request.headers.get("content-type"), settings.max_events_per_request
            )
        except bodies.BodyError as e:
            raise HTTPException(e.status, e.message) from None
        outcome = accept(docs, settings.max_depth)
        start = time.perf_counter()
        try:
            stored = store.insert(outcome.rows)
        except StoreError as e:
            raise HTTPException(503, f"the events could not be stored (none is acknowledged): {e}") from None
        metrics.insert_seconds.observe(time.perf_counter() - start)
        metrics.events.labels("stored").inc(stored)
        metrics.events.labels("rejected").inc(len(outcome.rejected))
        return IntakeAnswer(stored=stored, rejected=[Rejection(**r) for r in outcome.rejected])

    return await run_in_threadpool(work)
