"""The search and investigation API on a real backend process."""

from __future__ import annotations

import uuid

import orjson
import pytest
from backend_corpus import event_mix
from backend_process import Backend

from opencws.model.codec import event_from_json, format_timestamp, parse_timestamp
from opencws.secl.sql import compile_search


@pytest.fixture(scope="module")
def data(backend: Backend) -> dict:
    """200 events under a mark of their own (their command name), sent by an agent key."""
    mark = "t" + uuid.uuid4().hex[:12]
    events = event_mix(200, seed=99, base_ns=parse_timestamp("2026-11-30T10:00:00Z"))
    for i, e in enumerate(events):
        e["process"]["comm"] = mark
        e["process"]["pid"] = 1000 + i % 20
        e["process"]["ppid"] = 500 + i % 3
    ingest, read = backend.key("ingest"), backend.key("read")
    docs = [{"host": "h-" + mark, "rule_id": f"r{i % 4}", "event": e} for i, e in enumerate(events)]
    with backend.client(ingest) as c:
        assert c.post("/api/v1/events", content=orjson.dumps(docs)).json() == {"stored": 200, "rejected": []}
    return {"mark": mark, "events": events, "read": read, "client": backend.client(read)}


def expected(data: dict, q: str) -> list[dict]:
    s = compile_search(q)
    events = [e for e in data["events"] if s.matches(event_from_json(e))]
    return sorted(events, key=lambda e: parse_timestamp(e["date"]), reverse=True)


def scoped(data: dict, q: str) -> str:
    return f'process.comm == "{data["mark"]}"' + (f" && ({q})" if q else "")


@pytest.mark.parametrize(
    "q",
    ["", 'open.file.path == "/etc/shadow"', 'process.ancestors.file.name == "sshd"',
     'process.args =~ "*install*" || process.file.path =~ "/tmp/*"', 'evt.name in ["unlink", "rename"]'],
)  # fmt: skip
def test_pages_walk_the_matches_newest_first(data: dict, q: str) -> None:
    c, got, cursor = data["client"], [], None
    while True:
        params = {"q": scoped(data, q), "limit": 13, **({"cursor": cursor} if cursor else {})}
        r = c.get("/api/v1/events", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        got += body["events"]
        cursor = body["next"]
        if cursor is None:
            break
    assert [h["event"] for h in got] == expected(data, scoped(data, q))
    assert all(h["host"] == "h-" + data["mark"] and h["rule_id"].startswith("r") for h in got)


def test_post_search_answers_as_get(data: dict) -> None:
    q = scoped(data, 'evt.name == "exec"')
    window = {"from": "2026-11-30T10:00:10Z", "to": "2026-11-30T10:01:00Z"}
    a = data["client"].get("/api/v1/events", params={"q": q, "limit": 5, **window}).json()
    b = data["client"].post("/api/v1/events/search", json={"q": q, "limit": 5, **window}).json()
    assert a == b and len(a["events"]) == 5
    assert all("2026-11-30T10:00:10Z" <= h["date"] < "2026-11-30T10:01:00Z" for h in a["events"])


def test_a_bad_expression_answers_secl_message_and_caret(data: dict) -> None:
    r = data["client"].get("/api/v1/events", params={"q": 'process.comm == "a" &&'})
    assert r.status_code == 400
    d = r.json()["detail"]
    assert d["message"] == "unexpected end of expression: an operand is missing"
    assert d["caret"] == " " * 22 + "^"


@pytest.mark.parametrize(
    "params",
    [
        {"q": 'process.comm == "x\' OR 1=1 --"'},
        {"q": 'process.comm == "\\"); DROP TABLE opencws.events_local; --"'},
        {"q": 'process.comm == "{p0:String}" || process.file.path =~ "/%_\'\\\\*"'},
        {"q": "1; DROP TABLE events"},
        {"q": "process.comm == 'x'"},
        {"from": "2026-01-01' OR '1'='1"},
        {"to": "yesterday"},
        {"from": "2026-12-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        {"limit": "1; DROP"},
        {"limit": "0"},
        {"limit": "100000"},
        {"cursor": "' OR 1=1 --"},
        {"cursor": "MTox"},
        {"cursor": "LTE6YWJj"},
        {"q": "(" * 300 + 'process.comm == "zz"' + ")" * 300},
        {"q": "!" * 5000 + 'process.comm == "zz"'},
        {"q": "x" * 20000},
    ],
)
def test_hostile_parameters_are_refused_or_harmless(data: dict, params: dict) -> None:
    r = data["client"].get("/api/v1/events", params=params)
    assert r.status_code in (200, 400, 422), r.text
    if r.status_code == 200:
        assert r.json()["events"] == []
    assert data["client"].get("/api/v1/events", params={"q": scoped(data, ""), "limit": 1}).status_code == 200


def test_facets_and_timeseries_share_the_filter(data: dict) -> None:
    q = scoped(data, 'evt.name != "exec"')
    matches = expected(data, q)
    r = data["client"].get("/api/v1/facets", params={"q": q, "field": "evt.name"}).json()
    counts: dict[str, int] = {}
    for e in matches:
        counts[e["evt"]["name"]] = counts.get(e["evt"]["name"], 0) + 1
    assert {v["value"]: v["count"] for v in r["values"]} == counts and r["complete"]
    ts = data["client"].get("/api/v1/timeseries", params={"q": q, "interval": "1m"}).json()
    assert sum(b["count"] for b in ts["buckets"]) == len(matches)
    assert ts["buckets"][0]["start"] == "2026-11-30T10:00:00.000000000Z"
    assert data["client"].get("/api/v1/facets", params={"field": "process.nope"}).status_code == 400
    assert data["client"].get("/api/v1/timeseries", params={"interval": "1 hour"}).status_code == 400


def test_one_event_and_its_process_tree(data: dict) -> None:
    hits = data["client"].get("/api/v1/events", params={"q": scoped(data, ""), "limit": 200}).json()["events"]
    hit = hits[100]
    assert data["client"].get(f"/api/v1/events/{hit['id']}").json() == hit
    assert data["client"].get("/api/v1/events/ffff").status_code == 404
    assert data["client"].get("/api/v1/events/..%2Fetc").status_code == 404
    tree = data["client"].get(f"/api/v1/events/{hit['id']}/tree", params={"window": "1d"}).json()
    pid, ppid = hit["event"]["process"]["pid"], hit["event"]["process"]["ppid"]
    same = [h for h in hits if h["event"]["process"]["pid"] == pid]
    assert tree["process"]["pid"] == pid
    assert sorted(e["id"] for e in tree["process"]["events"]) == sorted(h["id"] for h in same)
    assert tree["ancestors"] == [
        {k: v for k, v in (("pid", a.get("pid")), ("ppid", a.get("ppid")), ("comm", a.get("comm")),
                           ("path", (a.get("executable") or {}).get("path")), ("args", a.get("args"))) if v is not None}
        for a in hit["event"]["process"].get("ancestors", [])
    ]  # fmt: skip
    siblings = {h["event"]["process"]["pid"] for h in hits if h["event"]["process"]["ppid"] == ppid} - {
        pid,
        ppid,
    }
    assert {s["pid"] for s in tree["siblings"]} == siblings
    assert tree["children"] == []


def test_metrics_count_the_intake(data: dict) -> None:
    text = data["client"].get("/metrics").text
    assert 'opencws_intake_events_total{outcome="stored"}' in text
    assert "opencws_search_seconds_count" in text


def test_dates_are_rfc3339_with_nanoseconds(data: dict) -> None:
    hit = data["client"].get("/api/v1/events", params={"q": scoped(data, ""), "limit": 1}).json()["events"][0]
    assert hit["date"] == format_timestamp(parse_timestamp(hit["event"]["date"]))


def test_envelope_filters_narrow_searches_facets_and_counts(data: dict) -> None:
    c, host = data["client"], "h-" + data["mark"]
    q = scoped(data, "")
    r2 = c.get("/api/v1/events", params={"q": q, "host": host, "rule_id": "r2", "limit": 1000}).json()["events"]
    assert len(r2) == 50 and {h["rule_id"] for h in r2} == {"r2"}
    assert c.get("/api/v1/events", params={"q": q, "host": "other' OR 1=1"}).json()["events"] == []
    facet = c.get("/api/v1/facets", params={"q": q, "field": "evt.name", "rule_id": "r2"}).json()
    assert sum(v["count"] for v in facet["values"]) == 50
    body = c.post("/api/v1/events/search", json={"q": q, "host": host, "rule_id": "r1", "limit": 1000}).json()
    assert len(body["events"]) == 50


def test_events_are_found_by_their_trace_and_span_ids_and_show_them(backend: Backend) -> None:
    """`dd.trace_id` / `dd.span_id` (search fields: the ids' decimal text); one id's digits are a prefix of
    another's, which the SQL prefilter lets through and the evaluator refuses."""
    mark = "d" + uuid.uuid4().hex[:12]
    events = event_mix(5, seed=7, base_ns=parse_timestamp("2026-11-30T11:00:00Z"))
    for e in events:
        e["process"]["comm"] = mark
        e.pop("dd", None)
    long_id, prefix_id = 2**64 - 1, (2**64 - 1) // 10
    events[0]["dd"] = {"span_id": 11, "trace_id": long_id}
    events[1]["dd"] = {"span_id": 12, "trace_id": long_id}
    events[2]["dd"] = {"span_id": 13, "trace_id": prefix_id}
    with backend.client(backend.key("ingest")) as c:
        r = c.post("/api/v1/events", content=orjson.dumps([{"host": "h", "event": e} for e in events]))
        assert r.json()["stored"] == 5
    with backend.client(backend.key("read")) as c:
        def search(q: str) -> list[dict]:
            r = c.get("/api/v1/events", params={"q": f'process.comm == "{mark}" && {q}', "limit": 50})
            assert r.status_code == 200, r.text
            return [h["event"] for h in r.json()["events"]]

        assert [e["dd"] for e in search(f'dd.trace_id == "{long_id}"')] == [events[1]["dd"], events[0]["dd"]]
        assert [e["dd"]["span_id"] for e in search(f'dd.trace_id == "{prefix_id}"')] == [13]
        assert [e["dd"]["trace_id"] for e in search('dd.span_id == "12"')] == [long_id]
        assert len(search('dd.trace_id == ""')) == 2  # the events without dd
