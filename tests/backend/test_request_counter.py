"""The request counter (`metrics.RequestCounter`, plain ASGI) counts what was answered, failures included."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from opencws.backend.metrics import Metrics, RequestCounter


def _app() -> FastAPI:
    app = FastAPI()
    app.state.metrics = Metrics()
    app.add_middleware(RequestCounter)

    @app.get("/ok/{n}")
    def ok(n: int) -> dict[str, int]:
        return {"n": n}

    @app.get("/broken")
    def broken() -> None:
        raise RuntimeError("a defect")

    return app


def test_answers_are_counted_by_route_template_and_status_and_a_failure_as_500() -> None:
    app = _app()
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/ok/1").status_code == 200 and client.get("/ok/2").status_code == 200
        assert client.get("/ok/x").status_code == 422
        assert client.get("/broken").status_code == 500
        assert client.get("/nowhere").status_code == 404
    counts = {
        (s.labels["route"], s.labels["status"]): s.value
        for metric in app.state.metrics.registry.collect() if metric.name == "opencws_http_requests"
        for s in metric.samples if s.name.endswith("_total")
    }  # fmt: skip
    assert counts == {("/ok/{n}", "200"): 2, ("/ok/{n}", "422"): 1, ("/broken", "500"): 1, ("unmatched", "404"): 1}
