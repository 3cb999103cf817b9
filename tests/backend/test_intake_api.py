"""`POST /api/v1/events` on a real backend process: formats, envelope, rejections, limits, hostile bodies."""

from __future__ import annotations

import gzip
import itertools
import uuid
from pathlib import Path

import orjson
import pytest
import zstandard
from backend_corpus import event_mix
from backend_process import Backend
from zstd_frames import rle_bomb

from opencws.model import jsontext

_marks = itertools.count(1)


def marked(n: int) -> tuple[str, list[dict]]:
    """`n` valid events carrying a path of their own (to find them again)."""
    mark = f"/mark/{uuid.uuid4().hex}"
    events = event_mix(n, seed=next(_marks))
    for i, e in enumerate(events):
        e["process"]["executable"]["path"] = f"{mark}/{i}"
    return mark, events


def found(backend: Backend, key: str, mark: str) -> list[dict]:
    with backend.client(key) as c:
        r = c.get("/api/v1/events", params={"q": f'process.file.path =~ "{mark}/*"', "limit": 1000})
    assert r.status_code == 200, r.text
    return r.json()["events"]


@pytest.fixture(scope="module")
def keys(backend: Backend) -> dict[str, str]:
    return {"ingest": backend.key("ingest"), "read": backend.key("read"), "admin": backend.key("admin")}


def post(backend: Backend, key: str | None, body: bytes, **headers: str):
    with backend.client(key) as c:
        return c.post("/api/v1/events", content=body, headers=headers)


def test_healthz_alone_is_open(backend: Backend) -> None:
    with backend.client(None) as c:
        assert c.get("/healthz").status_code == 200
        for method, path in [("POST", "/api/v1/events"), ("GET", "/api/v1/events"), ("GET", "/metrics"),
                             ("GET", "/api/v1/facets?field=evt.name"), ("GET", "/api/v1/keys"),
                             ("GET", "/openapi.json")]:  # fmt: skip
            r = c.request(method, path)
            assert r.status_code == 401, (path, r.text)
            assert r.headers["www-authenticate"] == "Bearer"


def test_one_event_an_array_and_json_lines_are_stored(backend: Backend, keys: dict[str, str]) -> None:
    mark, events = marked(7)
    r1 = post(backend, keys["ingest"], orjson.dumps(events[0]), **{"Content-Type": "application/json"})
    r2 = post(backend, keys["ingest"], orjson.dumps(events[1:4]))
    lines = b"\n".join(orjson.dumps(e) for e in events[4:]) + b"\n"
    r3 = post(backend, keys["ingest"], lines, **{"Content-Type": "application/x-ndjson"})
    assert [r.json() for r in (r1, r2, r3)] == [
        {"stored": 1, "rejected": []},
        {"stored": 3, "rejected": []},
        {"stored": 3, "rejected": []},
    ]
    got = found(backend, keys["read"], mark)
    assert sorted(orjson.dumps(h["event"]) for h in got) == sorted(orjson.dumps(e) for e in events)


def test_json_lines_are_recognised_without_their_content_type(backend: Backend, keys: dict[str, str]) -> None:
    _, events = marked(3)
    r = post(backend, keys["ingest"], b"\n".join(orjson.dumps(e) for e in events))
    assert r.json() == {"stored": 3, "rejected": []}


def test_gzip_bodies_are_accepted(backend: Backend, keys: dict[str, str]) -> None:
    mark, events = marked(50)
    r = post(backend, keys["ingest"], gzip.compress(orjson.dumps(events)), **{"Content-Encoding": "gzip"})
    assert r.json() == {"stored": 50, "rejected": []}
    assert len(found(backend, keys["read"], mark)) == 50


def test_zstd_bodies_are_accepted_as_json_lines_arrays_and_several_frames(
    backend: Backend, keys: dict[str, str]
) -> None:
    mark, events = marked(60)
    zstd = zstandard.ZstdCompressor(level=3)
    lines = b"".join(orjson.dumps(e) + b"\n" for e in events[:20])
    r1 = post(backend, keys["ingest"], zstd.compress(lines),
              **{"Content-Encoding": "zstd", "Content-Type": "application/x-ndjson"})
    r2 = post(backend, keys["ingest"], zstd.compress(orjson.dumps(events[20:40])), **{"Content-Encoding": "ZSTD"})
    more = b"".join(orjson.dumps(e) + b"\n" for e in events[40:])
    frames = zstd.compress(more[: len(more) // 3]) + zstd.compress(more[len(more) // 3 :])  # cut mid-line
    r3 = post(backend, keys["ingest"], frames, **{"Content-Encoding": "zstd", "Content-Type": "application/x-ndjson"})
    assert [r.json() for r in (r1, r2, r3)] == [{"stored": 20, "rejected": []}] * 3
    got = found(backend, keys["read"], mark)
    assert sorted(orjson.dumps(h["event"]) for h in got) == sorted(orjson.dumps(e) for e in events)


def _peak_rss_kib(backend: Backend) -> int:
    assert backend.proc is not None
    status = Path(f"/proc/{backend.proc.pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0])


def test_a_zstd_bomb_is_refused_without_the_backend_allocating_it(backend: Backend, keys: dict[str, str]) -> None:
    stated = rle_bomb(50 << 20, stated=True)  # 1.6 KB that state 50 MiB
    r = post(backend, keys["ingest"], stated, **{"Content-Encoding": "zstd"})
    assert r.status_code == 413
    assert r.json()["detail"] == ("the body is larger than 4194304 bytes once decompressed (its zstd frames "
                                  "state 52428800 bytes at least)")
    before = _peak_rss_kib(backend)
    unstated = rle_bomb(2 << 30, stated=False)  # 64 KB of 2 GiB that state no size: decoded until the limit
    r = post(backend, keys["ingest"], unstated, **{"Content-Encoding": "zstd"})
    assert r.status_code == 413
    assert r.json()["detail"] == "the body is larger than 4194304 bytes once decompressed"
    grown = (_peak_rss_kib(backend) - before) // 1024
    assert grown < 256, f"the backend's peak RSS grew by {grown} MiB on a 2 GiB bomb (limit: 4 MiB)"


def test_the_agents_envelope_is_kept_with_the_event(backend: Backend, keys: dict[str, str]) -> None:
    mark, events = marked(1)
    env = {"rule_id": "shadow_read", "rule_version": "1.2", "tags": ["team:sec"], "policy": "default",
           "host": "web-1", "agent_version": "0.1.0", "event": events[0]}  # fmt: skip
    assert post(backend, keys["ingest"], orjson.dumps(env)).json() == {"stored": 1, "rejected": []}
    (hit,) = found(backend, keys["read"], mark)
    assert hit["event"] == events[0]
    assert {k: hit[k] for k in env if k != "event"} == {k: v for k, v in env.items() if k != "event"}


def test_invalid_events_are_answered_with_their_index_and_reasons(
    backend: Backend, keys: dict[str, str]
) -> None:
    mark, events = marked(3)
    bad_type = dict(events[1], process=dict(events[1]["process"], pid="12"))
    bad_env = {"host": 7, "event": events[0], "extra": 1}
    docs = [events[0], bad_type, 42, bad_env, {"event": "nope"}, events[2]]
    r = post(backend, keys["ingest"], orjson.dumps(docs))
    assert r.status_code == 200
    body = r.json()
    assert body["stored"] == 2
    rejected = {x["index"]: x["errors"] for x in body["rejected"]}
    assert rejected[1] == ["/process/pid: expected integer, got string '12'"]
    assert rejected[2] == ["expected a JSON object (an event or an envelope)"]
    assert sorted(rejected[3]) == sorted(
        [
            "/extra: unknown envelope property (expected agent_version, event, host, policy, rule_id, rule_version, tags)",
            "/host: expected string, got int",
        ]
    )
    assert rejected[4] == ["/event: expected an object (a CWS event)"]
    assert len(found(backend, keys["read"], mark)) == 2


def test_an_unknown_property_in_an_enveloped_event_is_located(backend: Backend, keys: dict[str, str]) -> None:
    _, events = marked(1)
    r = post(backend, keys["ingest"], orjson.dumps({"event": dict(events[0], bogus=1)}))
    assert r.json()["rejected"] == [
        {"index": 0, "errors": ["/event/bogus: unknown property 'bogus' (not allowed by the schema)"]}
    ]


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"x" * 1_048_577, {}, 413, "larger than 1048576 bytes"),
        (gzip.compress(b" " * 5_000_000), {"Content-Encoding": "gzip"}, 413, "larger than 4194304 bytes once decompressed"),
        (b"\x1f\x8b\x08\x00garbage", {"Content-Encoding": "gzip"}, 400, "invalid gzip body"),
        (gzip.compress(b"{}")[:-6], {"Content-Encoding": "gzip"}, 400, "invalid gzip body"),
        (b"{}", {"Content-Encoding": "br"}, 415, "unsupported Content-Encoding 'br' (accepted: zstd, gzip, x-gzip, identity)"),
        (zstandard.ZstdCompressor().compress(b"{}")[:-2], {"Content-Encoding": "zstd"}, 400, "invalid zstd body: truncated: frame 1"),
        (zstandard.ZstdCompressor().compress(b"{}") + b"{}", {"Content-Encoding": "zstd"}, 400, "invalid zstd body: 2 bytes after frame 1"),
        (gzip.compress(b"{}"), {"Content-Encoding": "zstd"}, 400, "invalid zstd body: not a zstd frame (it starts with 1f 8b"),
        (b"\x28\xb5\x2f\xfd\x00\x58" + (1 | 2 << 1 | 8 << 3).to_bytes(3, "little") + b"\xff" * 8, {"Content-Encoding": "zstd"}, 400, "invalid zstd body: "),
        (b"{}", {"Content-Type": "text/xml"}, 415, "unsupported Content-Type 'text/xml'"),
        (b'{"evt": ', {}, 400, "malformed JSON"),
        (b'[{"evt": {}}, ', {}, 400, "malformed JSON array"),
        (b'{"process": {"comm": "\xff\xfe"}}', {}, 400, "malformed JSON"),
        (b"[" + b"{}," * 5000 + b"{}]", {}, 413, "more than 5000 events in one request"),
        (b"[" * 2000 + b"]" * 2000, {}, 400, "malformed JSON array"),
    ],
)  # fmt: skip
def test_hostile_bodies_are_refused_precisely(
    backend: Backend, keys: dict[str, str], body: bytes, headers: dict, status: int, message: str
) -> None:
    r = post(backend, keys["ingest"], body, **headers)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


def test_a_body_streamed_without_length_is_cut_at_the_limit(backend: Backend, keys: dict[str, str]) -> None:
    def chunks():
        for _ in range(300):
            yield b"x" * 8192

    with backend.client(keys["ingest"]) as c:
        r = c.post("/api/v1/events", content=chunks())
    assert r.status_code == 413


def test_deep_nesting_and_bad_lines_are_rejected_per_event(backend: Backend, keys: dict[str, str]) -> None:
    _, events = marked(20)
    events = [e for e in events if "credentials" in e["process"]]
    deep: dict = {}
    cur = deep
    for _ in range(40):
        cur["x"] = {}
        cur = cur["x"]
    # The one free-form part of the schema holds anything, but not too deep; elsewhere the schema refuses.
    free_form = orjson.loads(orjson.dumps(events[1]))
    free_form["process"]["credentials"]["destination"] = deep
    enveloped = {"event": orjson.loads(orjson.dumps(free_form))}
    ok_depth = orjson.loads(orjson.dumps(events[2]))
    ok_depth["process"]["credentials"]["destination"] = deep["x"]["x"]["x"]["x"]["x"]["x"]["x"]["x"]["x"]
    lines = [orjson.dumps(events[0]), orjson.dumps(free_form), b'{"process": {"comm": "\xff"}}', b"[1, 2",
             orjson.dumps(dict(events[0], deep=deep)), orjson.dumps(enveloped), orjson.dumps(ok_depth)]  # fmt: skip
    r = post(backend, keys["ingest"], b"\n".join(lines), **{"Content-Type": "application/x-ndjson"})
    body = r.json()
    assert body["stored"] == 2
    errors = {x["index"]: x["errors"] for x in body["rejected"]}
    assert errors[1] == ["/process/credentials/destination: nested deeper than 32 levels"]
    assert errors[2][0].startswith("line 3: malformed JSON")
    assert errors[3][0].startswith("line 4: malformed JSON")
    assert errors[4] == ["/deep: unknown property 'deep' (not allowed by the schema)"]
    assert errors[5] == ["/event/process/credentials/destination: nested deeper than 32 levels"]


def test_scopes_bound_what_a_key_may_do(backend: Backend, keys: dict[str, str]) -> None:
    _, events = marked(1)
    with backend.client(keys["ingest"]) as c:
        assert c.get("/api/v1/events").status_code == 403  # a leaked agent key reads nothing
        assert c.get("/api/v1/events/abc/tree").status_code == 403
        assert c.get("/metrics").status_code == 403
        assert c.get("/api/v1/keys").status_code == 403
    assert post(backend, keys["read"], orjson.dumps(events[0])).status_code == 403
    with backend.client(keys["admin"]) as c:
        assert c.get("/api/v1/keys").status_code == 200


def test_keys_created_and_revoked_by_the_cli_take_effect_at_once(backend: Backend) -> None:
    import subprocess
    import sys

    def cli(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "opencws.cli.main", "backend", "keys", *args,
                              "--data-dir", str(backend.data_dir)], capture_output=True, text=True, check=True)  # fmt: skip
        return out.stdout

    key = cli("create", "--scope", "read", "--name", "analyst").strip().splitlines()[-1]
    assert key.startswith("ocws_")
    with backend.client(key) as c:
        assert c.get("/api/v1/events", params={"limit": 1}).status_code == 200
        listing = cli("list")
        assert "analyst" in listing and key.split("_")[2] not in listing
        cli("revoke", key)
        r = c.get("/api/v1/events", params={"limit": 1})
        assert r.status_code == 401 and r.json()["detail"] == "invalid or revoked API key"
    with backend.client(key[:-1] + ("A" if key[-1] != "A" else "B")) as c:
        assert c.get("/api/v1/events").status_code == 401


def test_a_retried_batch_with_its_idempotency_key_is_stored_once(backend: Backend, keys: dict[str, str]) -> None:
    mark, events = marked(5)
    body = orjson.dumps([*events, {"bad": 1}])
    first = post(backend, keys["ingest"], body, **{"Idempotency-Key": f"batch-{mark}"})
    again = post(backend, keys["ingest"], body, **{"Idempotency-Key": f"batch-{mark}"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and first.json()["stored"] == 5
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert len(found(backend, keys["read"], mark)) == 5
    # The key is per API key: another agent's batch with the same key is its own.
    other = backend.key("ingest")
    assert post(backend, other, body, **{"Idempotency-Key": f"batch-{mark}"}).json()["stored"] == 5
    assert len(found(backend, keys["read"], mark)) == 10
    assert post(backend, keys["ingest"], body, **{"Idempotency-Key": "x" * 200}).status_code == 422


def test_names_that_are_not_utf8_are_stored_and_returned_as_sent(backend: Backend, keys: dict[str, str]) -> None:
    """The agent writes each byte of a non-UTF-8 name as a `\\udcXX` escape (opencws.model.jsontext)."""
    mark, events = marked(3)
    events[0]["process"]["comm"] = "caf\udce9"
    events[1]["file"] = {**events[1].get("file", {}), "path": "/tmp/\udcff\udcfe", "uid": 0, "gid": 0}
    events[1]["evt"]["name"] = "open"
    body = jsontext.dumps([events[0], {"host": "h\u00e9", "event": events[1]}, events[2]])
    assert b"\\udce9" in body and b"\\udcff" in body
    r = post(backend, keys["ingest"], body)
    assert r.json() == {"stored": 3, "rejected": []}
    with backend.client(keys["read"]) as c:
        r = c.get("/api/v1/events", params={"q": f'process.file.path =~ "{mark}/*"', "limit": 10})
        assert r.status_code == 200 and b"\\udce9" in r.content
        got = jsontext.loads(r.content)["events"]
        assert sorted(jsontext.dumps(h["event"]) for h in got) == sorted(jsontext.dumps(e) for e in events)
        q = f'process.file.path == "{mark}/0"'
        facet = c.get("/api/v1/facets", params={"q": q, "field": "process.comm"})
        assert facet.status_code == 200, facet.text
        assert jsontext.loads(facet.content)["values"] == [{"value": "caf\udce9", "count": 1}]
        tree = c.get(f"/api/v1/events/{got[0]['id']}/tree")
        assert tree.status_code == 200, tree.text


def test_an_unreadable_body_is_still_malformed_json(backend: Backend, keys: dict[str, str]) -> None:
    r = post(backend, keys["ingest"], b'[{"evt": {"name": "a\\udc80"}}, ')
    assert r.status_code == 400 and "malformed JSON array" in r.json()["detail"]


def test_each_request_is_counted_by_route_and_status(backend: Backend, keys: dict[str, str]) -> None:
    def counts() -> dict[tuple[str, str], float]:
        with backend.client(keys["read"]) as c:
            text = c.get("/metrics").text
        out = {}
        for line in text.splitlines():
            if line.startswith("opencws_http_requests_total{"):
                labels, value = line[len("opencws_http_requests_total{") :].split("} ")
                parts = dict(p.split("=", 1) for p in labels.split(","))
                out[(parts["route"].strip('"'), parts["status"].strip('"'))] = float(value)
        return out

    before = counts()
    _, events = marked(2)
    for e in events:
        assert post(backend, keys["ingest"], orjson.dumps(e)).status_code == 200
    assert post(backend, "ocws_nope_nope", orjson.dumps(events[0])).status_code == 401
    with backend.client(keys["read"]) as c:
        assert c.get("/api/v1/nowhere").status_code == 404
    after = counts()

    def added(route: str, status: str) -> float:
        return after.get((route, status), 0) - before.get((route, status), 0)

    assert added("/api/v1/events", "200") == 2 and added("/api/v1/events", "401") == 1
    assert added("unmatched", "404") == 1
    assert added("/metrics", "200") == 1  # the first read of the counts, counted once answered
