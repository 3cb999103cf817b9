"""Property-based tests of the HTTP API against its own OpenAPI description: every operation, called with
parameters drawn from their declared types (and hostile text), answers a documented status and JSON,
never a server error. In-process (TestClient) over the session's embedded engine, for speed."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from backend_corpus import event_mix
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opencws.backend.main import create_app
from opencws.backend.settings import Settings
from opencws.backend.store import Store

HOSTILE = st.sampled_from([
    "' OR 1=1 --", '"; DROP TABLE events; --', "{p0:String}", "%s%s%n", "\x00", "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    'process.comm == "x"', 'open.file.path =~ "/etc/*"', "((((", "evt.name in [", "1" * 300, "../../etc/passwd",
    "2026-12-01T00:00:00Z", "9999-99-99T99:99:99Z", "-1", "0", "NaN",
])  # fmt: skip


def _value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    types = [s.get("type") for s in schema.get("anyOf", [schema])]
    out: list[st.SearchStrategy[Any]] = [HOSTILE, st.text(max_size=50)]
    if "integer" in types:
        out.append(st.integers(min_value=-(2**63), max_value=2**64))
    return st.one_of(out)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, chdb_engine) -> Any:
    store = Store(chdb_engine, database="api_properties")
    store.create()
    app = create_app(Settings(data_dir=str(tmp_path_factory.mktemp("api")), rate_limit=0), store=store)
    with TestClient(app, raise_server_exceptions=False) as client:
        key = app.state.keys.create("all", ("ingest", "read", "admin"))[1]
        client.headers["Authorization"] = f"Bearer {key}"
        r = client.post("/api/v1/events", content=orjson.dumps(event_mix(50)))
        assert r.json()["stored"] == 50
        ids = [h["id"] for h in client.get("/api/v1/events", params={"limit": 5}).json()["events"]]
        yield client, app.openapi(), ids


OPERATIONS = [
    ("get", "/api/v1/events"), ("post", "/api/v1/events/search"), ("get", "/api/v1/events/{event_id}"),
    ("get", "/api/v1/events/{event_id}/tree"), ("get", "/api/v1/facets"), ("get", "/api/v1/timeseries"),
    ("post", "/api/v1/events"), ("get", "/api/v1/keys"), ("get", "/metrics"), ("get", "/healthz"),
]  # fmt: skip


def test_every_operation_is_described_in_openapi(api: Any) -> None:
    _, spec, _ = api
    described = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert set(OPERATIONS) <= described
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_operations_answer_documented_statuses_for_any_parameters(
    api: Any, method: str, path: str, data: Any
) -> None:
    client, spec, ids = api
    op = spec["paths"][path][method]
    params, url = {}, path
    for p in op.get("parameters", []):
        if p["in"] == "query" and (p.get("required") or data.draw(st.booleans())):
            params[p["name"]] = data.draw(_value(p["schema"]))
        elif p["in"] == "path":
            value = data.draw(
                st.one_of(
                    st.sampled_from(ids), HOSTILE.filter(lambda s: s and "/" not in s and s not in "..")
                )
            )
            url = url.replace("{" + p["name"] + "}", quote(value, safe=""))
    kwargs: dict[str, Any] = {"params": params}
    if method == "post":
        body = data.draw(st.one_of(
            st.fixed_dictionaries({}, optional={"q": _value({"type": "string"}), "limit": _value({"type": "integer"}),
                                                "from": _value({"type": "string"}), "cursor": _value({"type": "string"})}),
            st.binary(max_size=200),
        ))  # fmt: skip
        kwargs["content"] = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = client.request(method.upper(), url, **kwargs)
    documented = {int(s) for s in op["responses"] if s.isdigit()} | {400, 404, 422}
    assert r.status_code < 500, r.text
    assert r.status_code in documented, (r.status_code, r.text)
    if r.headers.get("content-type", "").startswith("application/json"):
        r.json()
