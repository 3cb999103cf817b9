"""The OpenAPI description: served to any valid key (not to anyone), and published as docs/openapi.json."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from backend_process import Backend

from opencws.backend.routers.spec import published

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_published_description_is_current() -> None:
    assert PUBLISHED.read_bytes() == published(), (
        "docs/openapi.json is stale: python -m opencws.backend.routers.spec > docs/openapi.json"
    )


@pytest.mark.parametrize("scope", ["ingest", "read", "admin"])
def test_any_valid_key_reads_the_description(backend: Backend, scope: str) -> None:
    with backend.client(backend.key(scope)) as c:
        r = c.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == orjson.loads(PUBLISHED.read_bytes())
    assert "/api/v1/events" in r.json()["paths"] and "/openapi.json" not in r.json()["paths"]


def test_an_unknown_key_does_not(backend: Backend) -> None:
    with backend.client("ocws_not_a_key") as c:
        assert c.get("/openapi.json").status_code == 401
