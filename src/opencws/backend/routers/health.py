"""`GET /healthz` (open: readiness) and `GET /metrics` (Prometheus, for `read` or `admin` keys)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from opencws.backend.dependencies import MetricsDep, OperatorKey

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Readiness: 200 once the store is open")
def healthz(request: Request) -> JSONResponse:
    if getattr(request.app.state, "store", None) is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(_: OperatorKey, m: MetricsDep) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
