"""`POST /api/v1/events`: events in (one object, an array or JSON lines; zstd or gzip), stored before the answer."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from opencws.backend import bodies, detection, nowait
from opencws.backend.dependencies import IngestKey, MetricsDep, SettingsDep, StoreDep
from opencws.backend.idempotency import MAX_KEY_CHARS, IdempotencyStore
from opencws.backend.intake import accept_body
from opencws.backend.keys import Key
from opencws.backend.metrics import Metrics
from opencws.backend.settings import Settings
from opencws.backend.store import Store, StoreError

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
        "One JSON object, a JSON array or JSON lines (`application/x-ndjson`), optionally compressed: "
        "`Content-Encoding: zstd` (RFC 8878; several frames are one stream; a window of at most 8 MiB, as RFC "
        "9659 says) or `gzip` (several members are one stream); `identity` or no header: as is. Any other "
        "coding is a 415 that lists these; a body cut short, corrupt or followed by bytes that are not a frame "
        "is a 400; more than `max_decompressed_bytes` once decompressed is a 413 (never decoded past it). "
        "Each document is a CWS event or the agent's envelope "
        '`{"rule_id", "rule_version", "tags", "policy", "host", "agent_version", "event"}`. Valid events are '
        "stored before the answer; each invalid one is listed with its index and every reason. Needs the "
        "`ingest` scope."
    ),
    responses={400: {}, 401: {}, 403: {}, 409: {}, 413: {}, 415: {}, 429: {}, 503: {}},
)
async def post_events(
    request: Request,
    key: IngestKey,
    settings: SettingsDep,
    store: StoreDep,
    metrics: MetricsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=MAX_KEY_CHARS,
            description="the same key on a retry returns the first answer instead of storing the events again",
        ),
    ] = None,
) -> Any:
    batches: IdempotencyStore = request.app.state.batches
    if idempotency_key is None:
        return await _intake(request, key, settings, store, metrics, batches, None)
    # Claimed before the lookup, with no await between the test and the claim: a retry that came while the
    # first was being stored, and looked while it was not yet answered, must not store it too once it is.
    flight = (key.id, idempotency_key)
    if flight in _in_flight:
        raise HTTPException(409, "a request with this Idempotency-Key is still being stored")
    _in_flight.add(flight)
    try:
        # Before the body is read: a batch already stored gets its answer back, whatever the limits say now.
        previous = await nowait.read(batches.get, key.id, idempotency_key)
        if previous is not None:
            return Response(previous, media_type="application/json", headers={"Idempotent-Replayed": "true"})
        return await _intake(request, key, settings, store, metrics, batches, idempotency_key)
    finally:
        _in_flight.discard(flight)


_in_flight: set[tuple[str, str]] = set()


async def _intake(
    request: Request,
    key: Key,
    settings: Settings,
    store: Store,
    metrics: Metrics,
    batches: IdempotencyStore,
    idempotency_key: str | None,
) -> IntakeAnswer:
    raw = await _read(request, settings.max_body_bytes)

    def work() -> IntakeAnswer:
        try:
            body = bodies.decompress(
                raw, request.headers.get("content-encoding"), settings.max_decompressed_bytes
            )
            outcome = accept_body(
                body, request.headers.get("content-type"), settings.max_events_per_request, settings.max_depth,
                store=store,
            )  # fmt: skip
        except bodies.BodyError as e:
            raise HTTPException(e.status, e.message) from None
        start = time.perf_counter()
        answer = IntakeAnswer(stored=len(outcome.rows), rejected=[Rejection(**r) for r in outcome.rejected])
        text = answer.model_dump_json().encode()
        # The answer goes into the journal with the rows (one write): a crash before it is recorded below
        # leaves it to the next start, and the batch's retry is answered, not stored again.
        receipt = batches.receipt(key.id, idempotency_key, text) if idempotency_key is not None else b""
        try:
            stored = store.insert(outcome.rows, outcome.contexts, outcome.encoded, receipt)
        except StoreError as e:
            raise HTTPException(503, f"the events could not be stored (none is acknowledged): {e}") from None
        if idempotency_key is not None:
            batches.put(key.id, idempotency_key, text)
        outcome.stored()
        metrics.insert_seconds.observe(time.perf_counter() - start)
        metrics.events.labels("stored").inc(stored)
        metrics.events.labels("rejected").inc(len(outcome.rejected))
        detection.observe(request.app, outcome)  # signals from the stored events, before the answer
        return answer

    return await run_in_threadpool(work)
