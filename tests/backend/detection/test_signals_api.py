"""Signals end to end: a real backend process on 127.0.0.1 ingests events over HTTP, its detection rules
raise signals seen through the API; triage with history; a restart that keeps the windows; a webhook
server that fails first then accepts; a bad rule file that stops the start."""

from __future__ import annotations

import http.server
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from backend_process import Backend
from detection_helpers import SCANS, exec_event

RULES = (
    "rules:\n  - id: test_scan_burst\n"
    + textwrap.indent(SCANS.replace("window: 1m", "window: 1h"), "    ")
    + """\
  - id: test_agent_rule
    title: agent rule on {host}
    message: "{rule_id} matched {process.file.path}"
    severity: low
    condition: {rule_id: [test_rule]}
    group_by: [host]
    threshold: {count: 1, window: 1h}
"""
)


class Hook(http.server.BaseHTTPRequestHandler):
    """Answers 500 to the first `fail` requests, then 204; keeps what it received."""

    fail = 1
    received: list[tuple[dict[str, str], dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((dict(self.headers), orjson.loads(body)))
        if Hook.fail > 0:
            Hook.fail -= 1
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"not now")
            return
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def hook() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def backend(
    tmp_path_factory: pytest.TempPathFactory, hook: http.server.ThreadingHTTPServer
) -> Iterator[Backend]:
    data = tmp_path_factory.mktemp("signals")
    rules = data / "rules"
    rules.mkdir()
    (rules / "test.yaml").write_text(RULES)
    config = data / "backend.yaml"
    port = hook.server_address[1]
    config.write_text(
        f"rate_limit: 0\nwebhook_url: http://127.0.0.1:{port}/hook\nwebhook_header: 'X-Token: s3cr3t'\n"
        "webhook_backoff: 0.3\nwebhook_max_attempts: 3\n"
    )
    b = Backend(data, ["--config", str(config), "--detection-rules", str(rules)]).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def keys(backend: Backend) -> dict[str, str]:
    return {"ingest": backend.key("ingest"), "read": backend.key("read", name="reader"),
            "admin": backend.key("admin", name="alice")}  # fmt: skip


def send(backend: Backend, key: str, events: list[dict], host: str, rule_id: str | None = None) -> None:
    docs = [{"host": host, "event": e, **({"rule_id": rule_id} if rule_id else {})} for e in events]
    with backend.client(key) as c:
        r = c.post("/api/v1/events", content=orjson.dumps(docs))
    assert r.status_code == 200 and r.json()["stored"] == len(events), r.text


def signals(backend: Backend, key: str, **params: Any) -> dict[str, Any]:
    with backend.client(key) as c:
        r = c.get("/api/v1/signals", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def of_host(backend: Backend, key: str, host: str) -> list[dict[str, Any]]:
    return [s for s in signals(backend, key, limit=1000)["signals"] if s["group"].get("host") == host]


def test_three_scans_raise_one_signal_with_its_events(backend: Backend, keys: dict[str, str]) -> None:
    host = f"h-{uuid.uuid4().hex[:8]}"
    send(backend, keys["ingest"], [exec_event(seconds=0), exec_event(seconds=1)], host)
    assert of_host(backend, keys["read"], host) == []
    send(backend, keys["ingest"], [exec_event(seconds=2), exec_event("/usr/bin/ls", seconds=3)], host)
    (s,) = of_host(backend, keys["read"], host)
    assert set(s) == {"id", "rule_id", "title", "message", "severity", "status", "group", "first_seen",
                      "last_seen", "count", "event_ids", "history", "webhook"}  # fmt: skip
    assert (s["rule_id"], s["title"], s["message"], s["severity"], s["status"], s["count"]) == (
        "test_scan_burst",
        f"scans on {host}",
        "/usr/bin/nmap scanned",
        "medium",
        "open",
        3,
    )
    assert (s["first_seen"], s["last_seen"]) == (
        "2026-01-01T00:00:00.000000000Z",
        "2026-01-01T00:00:02.000000000Z",
    )
    assert s["history"] == [] and len(s["event_ids"]) == 3
    with backend.client(keys["read"]) as c:
        one = c.get(f"/api/v1/signals/{s['id']}").json()
        assert c.get("/api/v1/signals/0123456789abcdef").status_code == 404
        assert c.get("/api/v1/signals/not-an-id").status_code == 404
    assert [e["id"] for e in one["events"]] == s["event_ids"]
    assert {e["host"] for e in one["events"]} == {host}
    assert one["events"][0]["event"]["process"]["executable"]["path"] == "/usr/bin/nmap"


def test_the_agent_rule_id_raises_signals(backend: Backend, keys: dict[str, str]) -> None:
    host = f"h-{uuid.uuid4().hex[:8]}"
    send(backend, keys["ingest"], [exec_event("/usr/bin/ls")], host, rule_id="test_rule")
    send(backend, keys["ingest"], [exec_event("/usr/bin/ls")], host, rule_id="other_rule")
    (s,) = of_host(backend, keys["read"], host)
    assert s["message"] == "test_rule matched /usr/bin/ls" and s["severity"] == "low"


def test_triage_keeps_who_when_and_why(backend: Backend, keys: dict[str, str]) -> None:
    host = f"h-{uuid.uuid4().hex[:8]}"
    send(backend, keys["ingest"], [exec_event("/usr/bin/ls")], host, rule_id="test_rule")
    (s,) = of_host(backend, keys["read"], host)
    url = f"/api/v1/signals/{s['id']}/status"
    with backend.client(keys["admin"]) as c:
        r1 = c.post(url, json={"status": "under_review", "comment": "looking"})
        r2 = c.post(url, json={"status": "archived"})
        r3 = c.post(url, json={"status": "open", "comment": "it came back"})
        assert c.post(url, json={"status": "closed"}).status_code == 400
        assert c.post("/api/v1/signals/0123456789abcdef/status", json={"status": "open"}).status_code == 404
    with backend.client(keys["read"]) as c:
        assert c.post(url, json={"status": "archived"}).status_code == 403
    assert r1.status_code == r2.status_code == r3.status_code == 200
    h = r3.json()["history"]
    assert [(x["status"], x["by"], x["comment"]) for x in h] == [
        ("under_review", "alice", "looking"),
        ("archived", "alice", None),
        ("open", "alice", "it came back"),
    ]
    assert all(x["at"].endswith("Z") for x in h) and h[0]["at"] <= h[2]["at"]
    assert r2.json()["status"] == "archived" and r3.json()["status"] == "open"
    assert s["id"] not in {
        x["id"] for x in signals(backend, keys["read"], status="archived", limit=1000)["signals"]
    }


def test_filters_and_pages_newest_first(backend: Backend, keys: dict[str, str]) -> None:
    hosts = [f"p-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for h in hosts:
        send(backend, keys["ingest"], [exec_event("/usr/bin/ls")], h, rule_id="test_rule")
    page1 = signals(backend, keys["read"], rule_id="test_agent_rule", severity="low", limit=2)
    page2 = signals(
        backend, keys["read"], rule_id="test_agent_rule", severity="low", limit=2, cursor=page1["next"]
    )
    got = [s["group"]["host"] for s in page1["signals"] + page2["signals"]]
    assert got[:3] == hosts[::-1] and page1["next"] is not None
    assert signals(backend, keys["read"], severity="critical", rule_id="test_agent_rule")["signals"] == []
    assert (
        signals(backend, keys["read"], rule_id="test_agent_rule", to="2025-01-01T00:00:00Z")["signals"] == []
    )
    with backend.client(keys["read"]) as c:
        assert c.get("/api/v1/signals", params={"status": "nope"}).status_code == 400
        assert c.get("/api/v1/signals", params={"cursor": "x"}).status_code == 400


def test_a_page_that_ends_the_list_has_no_next(backend: Backend, keys: dict[str, str]) -> None:
    """A page of exactly the signals left says there is no next one (no empty page to ask for)."""
    for _ in range(2):
        send(backend, keys["ingest"], [exec_event("/usr/bin/ls")], f"p-{uuid.uuid4().hex[:8]}", rule_id="test_rule")
    total = len(signals(backend, keys["read"], rule_id="test_agent_rule", limit=1000)["signals"])
    assert 2 <= total < 1000
    assert signals(backend, keys["read"], rule_id="test_agent_rule", limit=total)["next"] is None
    assert signals(backend, keys["read"], rule_id="test_agent_rule", limit=total - 1)["next"] is not None


def test_the_loaded_rules_are_listed(backend: Backend, keys: dict[str, str]) -> None:
    with backend.client(keys["read"]) as c:
        rules = {r["id"]: r for r in c.get("/api/v1/detection-rules").json()["rules"]}
    r = rules["test_scan_burst"]
    assert (r["kind"], r["severity"], r["group_by"], r["threshold"]) == (
        "threshold",
        "medium",
        ["host"],
        {"count": 3, "window": "1h"},
    )
    assert r["condition"] == 'exec.file.name == "nmap"' and r["source"].endswith("test.yaml")
    assert rules["new_executable_in_container"]["kind"] == "new_value"  # the shipped rules too


def test_the_webhook_is_retried_until_delivered_and_its_error_shown(
    backend: Backend, keys: dict[str, str]
) -> None:
    Hook.fail, Hook.received[:] = 1, []
    host = f"w-{uuid.uuid4().hex[:8]}"
    send(backend, keys["ingest"], [exec_event("/usr/bin/ls")], host, rule_id="test_rule")
    deadline = time.monotonic() + 20
    seen_error = None
    while time.monotonic() < deadline:
        (s,) = of_host(backend, keys["read"], host)
        if s["webhook"]["last_error"]:
            seen_error = s["webhook"]["last_error"]
        if s["webhook"]["state"] == "delivered":
            break
        time.sleep(0.1)
    assert s["webhook"] == {"state": "delivered", "attempts": 2, "last_error": "HTTP 500: not now"}
    assert seen_error == "HTTP 500: not now"
    mine = [(h, b) for h, b in Hook.received if b["signal"]["id"] == s["id"]]
    assert (
        len(mine) == 2
        and mine[0][0]["X-Token"] == "s3cr3t"
        and mine[1][1]["signal"]["group"] == {"host": host}
    )
    with backend.client(keys["admin"]) as c:
        metrics = c.get("/metrics").text
    assert 'opencws_webhook_deliveries_total{outcome="error"}' in metrics
    assert 'opencws_webhook_deliveries_total{outcome="delivered"}' in metrics


def test_a_webhook_that_keeps_failing_is_given_up_and_says_why(
    backend: Backend, keys: dict[str, str]
) -> None:
    Hook.fail = 10
    host = f"w-{uuid.uuid4().hex[:8]}"
    send(backend, keys["ingest"], [exec_event("/usr/bin/ls")], host, rule_id="test_rule")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        (s,) = of_host(backend, keys["read"], host)
        if s["webhook"]["state"] == "failed":
            break
        time.sleep(0.1)
    Hook.fail = 0
    assert s["webhook"] == {"state": "failed", "attempts": 3, "last_error": "HTTP 500: not now"}
    with backend.client(keys["admin"]) as c:
        assert 'opencws_webhook_deliveries_total{outcome="abandoned"} 1.0' in c.get("/metrics").text
    with backend.client(keys["read"]) as c:
        (w,) = c.get("/api/v1/webhooks").json()["webhooks"]
    assert w["url"].endswith("/hook") and w["failed"] >= 1 and w["last_error"] == "HTTP 500: not now"


def test_a_restart_keeps_the_windows(backend: Backend, keys: dict[str, str]) -> None:
    host = f"r-{uuid.uuid4().hex[:8]}"
    send(backend, keys["ingest"], [exec_event(seconds=0), exec_event(seconds=1)], host)
    backend.stop()
    backend.start()
    send(backend, keys["ingest"], [exec_event(seconds=2)], host)
    (s,) = of_host(backend, keys["read"], host)
    assert s["count"] == 3


def set_enabled(backend: Backend, key: str, rule_id: str, body: Any) -> Any:
    with backend.client(key) as c:
        return c.patch(f"/api/v1/detection-rules/{rule_id}", json=body)


def test_a_disabled_rule_raises_nothing_even_after_a_restart_until_enabled_again(
    backend: Backend, keys: dict[str, str]
) -> None:
    r = set_enabled(backend, keys["read"], "test_agent_rule", {"enabled": False})
    assert r.status_code == 403, r.text
    assert set_enabled(backend, keys["admin"], "no_such_rule", {"enabled": False}).status_code == 404
    assert set_enabled(backend, keys["admin"], "test_agent_rule", {"enabled": "maybe"}).status_code == 422
    r = set_enabled(backend, keys["admin"], "test_agent_rule", {"enabled": False})
    assert r.status_code == 200, r.text
    off = r.json()
    assert off["enabled"] is False and off["disabled"]["by"].endswith("(alice)"), off
    host = f"d-{uuid.uuid4().hex[:8]}"
    send(backend, keys["ingest"], [exec_event("/usr/bin/id", seconds=0)], host, rule_id="test_rule")
    assert of_host(backend, keys["read"], host) == []
    backend.stop()
    backend.start()
    with backend.client(keys["read"]) as c:
        listed = {x["id"]: x for x in c.get("/api/v1/detection-rules").json()["rules"]}
        assert c.get("/api/v1/detection-rules/test_agent_rule").json()["enabled"] is False
    assert listed["test_agent_rule"]["enabled"] is False and listed["test_scan_burst"]["enabled"] is True
    send(backend, keys["ingest"], [exec_event("/usr/bin/id", seconds=1)], host, rule_id="test_rule")
    assert of_host(backend, keys["read"], host) == []
    r = set_enabled(backend, keys["admin"], "test_agent_rule", {"enabled": True})
    assert r.json()["enabled"] is True and r.json()["disabled"] is None
    send(backend, keys["ingest"], [exec_event("/usr/bin/id", seconds=2)], host, rule_id="test_rule")
    (s,) = of_host(backend, keys["read"], host)
    assert (s["rule_id"], s["count"]) == ("test_agent_rule", 1)
    with backend.client(keys["admin"]) as c:
        entries = c.get("/api/v1/audit", params={"action": "rule.", "target": "test_agent_rule"}).json()
    assert [(e["action"], e["target"]) for e in entries["entries"]] == [
        ("rule.enable", "test_agent_rule"),
        ("rule.disable", "test_agent_rule"),
    ]
    assert all(e["actor"].endswith("(alice)") for e in entries["entries"])


API_RULE = """\
rules:
  - id: api_whoami
    title: whoami on {host}
    message: "{process.file.path} ran"
    severity: low
    condition: exec.file.name == "whoami"
    group_by: [host]
    threshold: {count: 1, window: 1h}
"""


def put_rule(backend: Backend, key: str, rule_id: str, text: str) -> Any:
    with backend.client(key) as c:
        return c.put(
            f"/api/v1/detection-rules/{rule_id}", content=text, headers={"Content-Type": "application/yaml"}
        )


def test_a_rule_file_that_is_not_utf8_is_refused_saying_where(backend: Backend, keys: dict[str, str]) -> None:
    body = API_RULE.encode().replace(b"whoami", b"who\xe9mi", 1)
    r = put_rule(backend, keys["admin"], "api_whoami", body)  # type: ignore[arg-type]
    assert r.status_code == 400
    assert r.json()["detail"] == f"not UTF-8 text (byte at offset {body.index(bytes([0xE9]))})"


def whoami_signals(backend: Backend, key: str, host: str) -> list[dict[str, Any]]:
    return [s for s in of_host(backend, key, host) if s["rule_id"] == "api_whoami"]


def test_an_admin_creates_replaces_and_deletes_a_rule_from_yaml_applied_at_once(
    backend: Backend, keys: dict[str, str]
) -> None:
    assert put_rule(backend, keys["read"], "api_whoami", API_RULE).status_code == 403
    bad = put_rule(backend, keys["admin"], "api_whoami", API_RULE.replace('== "whoami"', "== 3"))
    assert bad.status_code == 400
    assert "detection-rules/api_whoami.yaml:6: rule api_whoami `condition`:" in bad.json()["detail"]
    assert "^" in bad.json()["detail"]
    other = put_rule(backend, keys["admin"], "another_id", API_RULE)
    assert (
        other.status_code == 400 and "exactly one rule, with id another_id (found: api_whoami)" in other.text
    )
    taken = put_rule(
        backend, keys["admin"], "test_scan_burst", API_RULE.replace("api_whoami", "test_scan_burst")
    )
    assert (
        taken.status_code == 409 and "test.yaml: it cannot be replaced from the API" in taken.json()["detail"]
    )
    with backend.client(keys["admin"]) as c:
        assert c.delete("/api/v1/detection-rules/test_scan_burst").status_code == 409

    r = put_rule(backend, keys["admin"], "api_whoami", API_RULE)
    assert r.status_code == 201, r.text
    assert r.json()["condition"] == 'exec.file.name == "whoami"' and r.json()["enabled"] is True
    host = f"m-{uuid.uuid4().hex[:8]}"
    send(backend, keys["ingest"], [exec_event("/usr/bin/whoami", seconds=0)], host)
    assert [s["title"] for s in whoami_signals(backend, keys["read"], host)] == [f"whoami on {host}"]

    r = put_rule(backend, keys["admin"], "api_whoami", API_RULE.replace("count: 1", "count: 2"))
    assert r.status_code == 200 and r.json()["threshold"]["count"] == 2
    backend.stop()
    backend.start()  # the rule file in the data directory is loaded again
    host = f"m-{uuid.uuid4().hex[:8]}"
    send(backend, keys["ingest"], [exec_event("/usr/bin/whoami", seconds=0)], host)
    assert whoami_signals(backend, keys["read"], host) == []
    send(backend, keys["ingest"], [exec_event("/usr/bin/whoami", seconds=1)], host)
    assert len(whoami_signals(backend, keys["read"], host)) == 1

    with backend.client(keys["admin"]) as c:
        assert c.delete("/api/v1/detection-rules/api_whoami").status_code == 204
        assert c.delete("/api/v1/detection-rules/api_whoami").status_code == 404
    with backend.client(keys["read"]) as c:
        assert c.get("/api/v1/detection-rules/api_whoami").status_code == 404
    host = f"m-{uuid.uuid4().hex[:8]}"
    send(backend, keys["ingest"], [exec_event("/usr/bin/whoami", seconds=i) for i in range(3)], host)
    assert whoami_signals(backend, keys["read"], host) == []
    with backend.client(keys["admin"]) as c:
        entries = c.get("/api/v1/audit", params={"target": "api_whoami"}).json()["entries"]
    assert [e["action"] for e in entries] == ["rule.delete", "rule.replace", "rule.create"]
    assert "count: 2" in entries[1]["detail"]["yaml"]


def test_a_bad_rule_file_stops_the_start_with_its_place(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bad.yaml").write_text(RULES.replace('exec.file.name == "nmap"', "exec.file.name == 3"))
    with pytest.raises(RuntimeError) as e:
        Backend(tmp_path / "data", ["--detection-rules", str(rules)]).start(timeout=60)
    text = str(e.value)
    assert "exited (2)" in text and "bad.yaml:6: rule test_scan_burst `condition`:" in text
    assert "exec.file.name == 3" in text and "^" in text
