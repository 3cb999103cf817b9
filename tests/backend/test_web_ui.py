"""The web UI in headless Chromium against a real backend process with real events: each view clicked
through, a screenshot of each (reports/screenshots/), its load time reported in the summary."""

from __future__ import annotations

import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from backend_process import Backend
from ui_harness import CHROMIUM, UI

from opencws.model.codec import parse_timestamp

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is a dev dependency: scripts/setup.sh"
)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    import os

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def ui(browser: Any, ui_backend: Backend, request: pytest.FixtureRequest) -> Iterator[UI]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield UI(page, ui_backend.url, request.node.name)
    context.close()


def signed_in(ui: UI, user: str = "alice", route: str = "events") -> None:
    ui.open(route)
    ui.ready("signin")
    ui.sign_in(user)


def in_range(events: list[dict], t_from: str, t_to: str) -> list[dict]:
    a, b = parse_timestamp(t_from), parse_timestamp(t_to)
    return [d for d in events if a <= parse_timestamp(d["event"]["date"]) < b]


def test_signing_in_opens_the_events_explorer(ui: UI, ui_backend: Backend) -> None:
    ui.open()
    ui.ready("signin")
    ui.shot("signin")
    ui.sign_in("alice")
    ui.ready("events")
    assert ui.page.inner_text("#who").split() == ["alice", "admin"]
    assert ui.page.locator("table.events tbody tr").count() == 50  # one page, not everything
    ui.shot("events")


def test_a_wrong_password_is_refused(ui: UI) -> None:
    ui.open()
    ui.ready("signin")
    ui.sign_in("alice", "not-alices-password")
    ui.page.wait_for_selector("#signin-message .message.error")
    assert ui.page.inner_text("#signin-message") == "wrong user name or password"
    assert ui.page.locator("#top").is_hidden()
    ui.shot("wrong-password")


def test_an_expired_session_sends_back_to_sign_in_and_then_where_one_was(ui: UI, ui_backend: Backend) -> None:
    signed_in(ui, "alice", "rules")
    ui.ready("rules")
    db = sqlite3.connect(ui_backend.data_dir / "auth.sqlite")
    with db:  # the session last used two hours ago (idle limit: one hour)
        assert db.execute(
            "UPDATE sessions SET seen = seen - 7200, created = created - 7200 WHERE user = 'alice'"
        ).rowcount
    db.close()
    ui.page.click('a[data-nav="audit"]')
    ui.ready("signin")
    assert "expired" in ui.page.inner_text("#signin-message")
    ui.shot("expired")
    ui.sign_in("alice")
    ui.ready("audit")


def test_a_bad_secl_expression_is_shown_with_a_caret_at_its_place(ui: UI) -> None:
    signed_in(ui)
    ui.ready("events")
    q = 'process.file.path == "/bin/sh" && evt.nmae == "open"'
    ui.page.fill("#q", q)
    ui.page.click("#search-submit")
    ui.page.wait_for_selector("#q-error:not([hidden])")
    expression, caret = ui.page.inner_text("#q-error pre.caret").split("\n")
    assert expression == q
    assert caret.index("^") == q.index("evt.nmae") and caret.strip() == "^" * len("evt.nmae")
    assert "evt.nmae" in ui.page.inner_text("#q-error .why")
    assert ui.page.evaluate("document.getElementById('q').selectionStart") == q.index("evt.nmae")
    assert ui.page.locator("table.events").count() == 0
    ui.shot("secl-error")


def test_facets_count_the_matches_in_the_time_range_and_filter_on_a_click(
    ui: UI, ui_backend: Backend
) -> None:
    docs = ui_backend.events  # type: ignore[attr-defined]
    t_from, t_to = docs[1000]["event"]["date"], docs[1400]["event"]["date"]
    expected = in_range(docs, t_from, t_to)
    assert len(expected) == 400
    ui.open(f"events?range=custom&from={t_from}&to={t_to}")
    ui.ready("signin")
    ui.sign_in("alice")
    ui.ready("events")
    counts = {
        li.locator(".facet-value").inner_text(): int(li.locator(".count").inner_text().replace(",", ""))
        for li in ui.page.locator('.facet[data-field="evt.name"] li').all()
    }
    assert counts == Counter(d["event"]["evt"]["name"] for d in expected)
    ui.shot("facets")

    ui.page.click('.facet[data-field="evt.name"] .facet-value:text-is("open")')
    ui.page.wait_for_selector('#results[data-pages="1"]')
    assert ui.page.input_value("#q") == 'evt.name == "open"'
    pages = 1
    while ui.page.locator("#more").is_visible():
        ui.page.click("#more")
        pages += 1
        ui.page.wait_for_selector(f'#results[data-pages="{pages}"]')
    types = ui.page.locator("table.events tbody td:nth-child(2)").all_inner_texts()
    opens = [d for d in expected if d["event"]["evt"]["name"] == "open"]
    assert pages == -(-len(opens) // 50) > 1 and types == ["open"] * len(opens)
    times = ui.page.locator("table.events tbody td.time").all_inner_texts()
    assert times == sorted(times, reverse=True)
    assert t_from[:19].replace("T", " ") <= times[-1] and times[0] < t_to[:19].replace("T", " ") + "~"
    assert ui.page.locator('.facet[data-field="evt.name"] li .count').all_inner_texts() == [f"{len(opens):,}"]


def test_an_event_shows_its_json_and_its_process_tree(ui: UI, ui_backend: Backend) -> None:
    docs = ui_backend.events  # type: ignore[attr-defined]
    signed_in(ui)
    ui.ready("events")
    row = ui.page.locator("table.events tbody tr").nth(3)
    row.click()
    ui.page.wait_for_selector("#event-json")
    shown = orjson.loads(ui.page.inner_text("#event-json"))
    assert shown in [d["event"] for d in docs]
    assert row.get_attribute("class") == "selected"
    ui.shot("event-json")

    ui.page.click("#open-tree")
    ui.ready("tree")
    process = shown["process"]
    own = ui.page.locator(".proc.self").first
    assert own.locator(".pid").inner_text() == str(process["pid"])
    assert own.locator(".path").inner_text() == process["executable"]["path"]
    ancestors = ui.page.locator(".proc.ancestor .path").all_inner_texts()
    assert ancestors == [
        a.get("executable", {}).get("path", "") for a in reversed(process.get("ancestors", []))
    ]
    ui.shot("process-tree")


def test_a_read_user_can_search_but_is_refused_a_change(ui: UI) -> None:
    signed_in(ui, "rita")
    ui.ready("events")
    assert ui.page.inner_text("#who").split() == ["rita", "read"]
    # A change sent from the signed-in page, CSRF token and all: refused for the role, clearly.
    answer = ui.page.evaluate(
        """async () => {
          const s = await (await fetch('/api/v1/session')).json();
          const r = await fetch('/api/v1/users', {method: 'POST', headers: {'Content-Type': 'application/json',
            'X-CSRF-Token': s.csrf}, body: JSON.stringify({name: 'mallory', role: 'admin', password: 'x'.repeat(20)})});
          return [r.status, (await r.json()).detail];
        }"""
    )
    assert answer == [403, "your role's rights (read) do not allow this: it needs admin"]
    ui.page.click('a[data-nav="audit"]')
    ui.ready("audit")
    assert ui.page.inner_text("#audit") == "The audit log is shown to admins only."
    ui.shot("read-user-audit")


def test_the_audit_log_shows_who_changed_what(ui: UI, ui_backend: Backend) -> None:
    with ui_backend.client(ui_backend.key("admin", "ops")) as c:
        assert (
            c.post(
                "/api/v1/users", json={"name": "temp-user", "role": "read", "password": "p" * 16}
            ).status_code
            == 201
        )
    signed_in(ui, "alice", "audit?action=user.")
    ui.ready("audit")
    rows = [r.split("\t") for r in ui.page.locator("table.audit tbody tr").all_inner_texts()]
    assert any(
        r[1].startswith("key:") and r[1].endswith("(ops)") and r[2:4] == ["user.add", "temp-user"]
        for r in rows
    )
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r[0]) for r in rows)
    ui.shot("audit")


def api_signals(b: Backend, **params: Any) -> list[dict]:
    with b.client(b.key("read")) as c:
        r = c.get("/api/v1/signals", params={"limit": 50, **params})
        assert r.status_code == 200, r.text
        return r.json()["signals"]


def test_signals_list_filters_then_a_signal_is_triaged_and_its_history_and_the_audit_log_show_it(
    ui: UI, ui_backend: Backend
) -> None:
    high = api_signals(ui_backend, severity="high", status="open")
    assert high, "the ingested events raise signals with the default detection rules"
    signed_in(ui, "alice", "signals")
    ui.ready("signals")
    assert ui.page.locator("table.signals tbody tr").count() == min(len(api_signals(ui_backend)), 50)
    ui.shot("signals")
    ui.page.select_option("#f-severity", "high")
    ui.page.select_option("#f-status", "open")
    ui.page.wait_for_selector('#signals[data-filters="open|high|"]')
    ids = [tr.get_attribute("data-id") for tr in ui.page.locator("table.signals tbody tr").all()]
    assert ids == [s["id"] for s in high]
    assert "severity=high" in ui.page.url and "status=open" in ui.page.url

    target = high[0]
    ui.page.click(f'table.signals tbody tr[data-id="{target["id"]}"] a')
    ui.ready("signal")
    assert ui.page.inner_text("#signal-title").endswith(target["title"])
    assert ui.page.locator("table.events tbody tr").count() == len(target["event_ids"])
    ui.shot("signal")
    ui.page.select_option("#new-status", "under_review")
    ui.page.fill("#status-comment", "looking at the shadow reads on this host")
    ui.page.click("#status-submit")
    ui.page.wait_for_selector("table.history td:text-is('looking at the shadow reads on this host')")
    ui.ready("signal")
    history = [r.split("\t") for r in ui.page.locator("table.history tbody tr").all_inner_texts()]
    assert history[-1][1:] == ["Under review", "alice", "looking at the shadow reads on this host"]
    assert ui.page.inner_text("#signal-status") == "Under review"
    ui.shot("signal-triaged")

    ui.page.click('a[data-nav="audit"]')
    ui.ready("audit")
    rows = [r.split("\t") for r in ui.page.locator("table.audit tbody tr").all_inner_texts()]
    mine = [r for r in rows if r[2] == "signal.status" and r[3] == target["id"]]
    assert mine and mine[0][1] == "alice"
    assert orjson.loads(mine[0][4]) == {
        "status": "under_review",
        "comment": "looking at the shadow reads on this host",
    }


def test_signals_list_filters_by_time_as_the_api_does_and_shows_a_bad_time_precisely(
    ui: UI, ui_backend: Backend
) -> None:
    every = api_signals(ui_backend, limit=1000)
    firsts = sorted(s["first_seen"] for s in every)
    t_from, t_to = firsts[len(firsts) // 3], firsts[2 * len(firsts) // 3]
    expected = [s["id"] for s in api_signals(ui_backend, **{"from": t_from, "to": t_to})]
    assert expected and len(expected) < len(every)
    signed_in(ui, "rita", "signals")
    ui.ready("signals")
    ui.page.fill("#f-from", t_from)
    ui.page.fill("#f-to", t_to)
    ui.page.press("#f-to", "Enter")
    ui.page.wait_for_selector(f'#signals[data-filters="|||{t_from}|{t_to}"]')
    assert [tr.get_attribute("data-id") for tr in ui.page.locator("table.signals tbody tr").all()] == expected
    assert "from=" in ui.page.url and "to=" in ui.page.url
    ui.shot("signals-time-range")
    ui.page.fill("#f-from", "yesterday")
    ui.page.press("#f-from", "Enter")
    alert = ui.page.wait_for_selector("#signals [role=alert]")
    with ui_backend.client(ui_backend.key("read")) as c:
        detail = c.get("/api/v1/signals", params={"from": "yesterday"}).json()["detail"]
    assert alert.inner_text() == detail and "from" in detail


def test_a_read_user_sees_the_triage_controls_disabled_and_the_api_refuses_it(
    ui: UI, ui_backend: Backend
) -> None:
    target = api_signals(ui_backend)[-1]
    signed_in(ui, "rita", f"signals/{target['id']}")
    ui.ready("signal")
    assert ui.page.locator("#status-submit").is_disabled() and ui.page.locator("#new-status").is_disabled()
    assert (
        ui.page.inner_text("#status-message")
        == "Your role (read) can view signals but not change them: an admin can."
    )
    ui.shot("signal-read-user")
    answer = ui.page.evaluate(
        """async (id) => {
          const s = await (await fetch('/api/v1/session')).json();
          const r = await fetch(`/api/v1/signals/${id}/status`, {method: 'POST', headers: {'Content-Type':
            'application/json', 'X-CSRF-Token': s.csrf}, body: JSON.stringify({status: 'archived', comment: 'x'})});
          return [r.status, (await r.json()).detail];
        }""",
        target["id"],
    )
    assert answer == [403, "your role's rights (read) do not allow this: it needs admin"]
    assert api_signals(ui_backend)[-1]["status"] == target["status"]


def test_the_detection_rules_are_listed(ui: UI, ui_backend: Backend) -> None:
    with ui_backend.client(ui_backend.key("read")) as c:
        rules = c.get("/api/v1/detection-rules").json()["rules"]
    signed_in(ui, "rita", "rules")
    ui.ready("rules")
    ids = [tr.get_attribute("data-id") for tr in ui.page.locator("table.rules tbody tr").all()]
    assert ids == [r["id"] for r in rules] and len(ids) > 5
    ui.shot("rules")


def test_an_admin_disables_then_enables_a_rule_and_the_audit_log_shows_both(
    ui: UI, ui_backend: Backend
) -> None:
    rule = "agent_credential_access"
    row = f'table.rules tbody tr[data-id="{rule}"]'
    signed_in(ui, "alice", "rules")
    ui.ready("rules")
    assert ui.page.get_attribute(row, "data-enabled") == "true"
    assert ui.page.locator("#webhook-summary").is_hidden()  # no webhook configured: nothing to report
    ui.page.click(f"{row} button.rule-toggle")
    ui.page.wait_for_selector(f'{row}[data-enabled="false"]')
    ui.ready("rules")
    assert ui.page.inner_text(f"{row} td.rule-state").startswith("disabled\nby alice, ")
    assert ui.page.inner_text(f"{row} button.rule-toggle") == "Enable"
    ui.shot("rules-disabled")
    with ui_backend.client(ui_backend.key("read")) as c:
        assert c.get(f"/api/v1/detection-rules/{rule}").json()["enabled"] is False
    ui.page.click(f"{row} button.rule-toggle")
    ui.page.wait_for_selector(f'{row}[data-enabled="true"]')
    ui.ready("rules")
    ui.page.click('a[data-nav="audit"]')
    ui.ready("audit")
    rows = [r.split("\t") for r in ui.page.locator("table.audit tbody tr").all_inner_texts()]
    mine = [r[1:4] for r in rows if r[3] == rule]
    assert mine[:2] == [["alice", "rule.enable", rule], ["alice", "rule.disable", rule]]


UI_RULE = """\
rules:
  - id: ui_netcat
    title: netcat on {host}
    message: "{process.file.path} ran"
    severity: high
    condition: exec.file.name == "nc"
    group_by: [host]
    threshold: {count: 1, window: 1h}
"""


def test_an_admin_writes_a_rule_sees_its_error_at_its_place_then_saves_and_deletes_it(
    ui: UI, ui_backend: Backend
) -> None:
    signed_in(ui, "alice", "rules")
    ui.ready("rules")
    ui.page.fill("#rule-id", "ui_netcat")
    ui.page.fill("#rule-yaml", UI_RULE.replace('"nc"', "nc =="))
    ui.page.click("#rule-save")
    ui.page.wait_for_selector("#rule-errors:not([hidden])")
    errors = ui.page.inner_text("#rule-errors")
    assert "detection-rules/ui_netcat.yaml:6: rule ui_netcat `condition`:" in errors and "^" in errors
    ui.shot("rule-error")
    ui.page.fill("#rule-yaml", UI_RULE)
    ui.page.click("#rule-save")
    row = 'table.rules tbody tr[data-id="ui_netcat"]'
    ui.page.wait_for_selector(row)
    ui.ready("rules")
    assert "exec.file.name" in ui.page.inner_text(f"{row} td.condition")
    ui.page.click(f"{row} button.rule-edit")
    for _ in range(100):  # the rule's text is fetched, then filled in (wait_for_function: refused by the CSP)
        if ui.page.input_value("#rule-yaml"):
            break
        ui.page.wait_for_timeout(100)
    assert ui.page.input_value("#rule-yaml") == UI_RULE
    ui.shot("rule-written")
    ui.page.click(f"{row} button.rule-delete")
    ui.page.wait_for_selector(row, state="detached")
    ui.ready("rules")
    with ui_backend.client(ui_backend.key("admin")) as c:
        entries = c.get("/api/v1/audit", params={"target": "ui_netcat"}).json()["entries"]
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("alice", "rule.delete"),
        ("alice", "rule.create"),
    ]


def test_a_read_user_sees_the_rule_controls_disabled_with_the_reason(ui: UI) -> None:
    signed_in(ui, "rita", "rules")
    ui.ready("rules")
    buttons = ui.page.locator("table.rules button.rule-toggle")
    assert buttons.count() > 5 and all(b.is_disabled() for b in buttons.all())
    assert (
        ui.page.inner_text("#rules-message")
        == "Your role (read) can view rules but not turn them on or off: an admin can."
    )


def test_a_failing_webhook_shows_on_the_signals_list_the_rules_and_the_signal(
    browser: Any, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    import socket

    import ui_harness

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    config = tmp_path / "backend.yaml"
    config.write_text(
        f"rate_limit: 0\nwebhook_url: http://127.0.0.1:{closed}/hook\n"
        "webhook_max_attempts: 2\nwebhook_backoff: 0.1\nwebhook_timeout: 2\n"
    )
    b = Backend(tmp_path / "data", ["--config", str(config)]).start()
    try:
        ui_harness.add_user(b, "alice", "admin")
        ui_harness.ingest(b, 300)
        with b.client(b.key("read")) as c:
            for _ in range(200):
                (w,) = c.get("/api/v1/webhooks").json()["webhooks"]
                if w["failed"] and not w["pending"]:
                    break
                time.sleep(0.1)
            failed = c.get("/api/v1/signals", params={"limit": 1}).json()["signals"][0]
        assert w["failed"] > 0 and w["last_error"], w
        assert failed["webhook"]["state"] == "failed", failed
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        ui = UI(context.new_page(), b.url, request.node.name)
        ui.page.set_default_timeout(30_000)
        signed_in(ui, "alice", "signals")
        ui.ready("signals")
        summary = ui.page.inner_text("#webhook-summary")
        assert summary.startswith(
            f"Webhook http://127.0.0.1:{closed}/hook: {w['failed']} failed (given up), 0 pending"
        )
        assert w["last_error"] in summary
        ui.shot("signals-webhook-failed")
        ui.page.click('a[data-nav="rules"]')
        ui.ready("rules")
        assert ui.page.locator("#webhook-summary").is_visible()
        ui.open(f"signals/{failed['id']}")
        ui.ready("signal")
        text = ui.page.inner_text("#signal-webhook")
        assert (
            text.startswith("failed (2 attempts)") and f"Given up: {failed['webhook']['last_error']}" in text
        )
        ui.shot("signal-webhook-failed")
        context.close()
    finally:
        b.stop()


def test_an_admin_adds_and_removes_a_user_and_a_read_user_has_no_users_page(
    ui: UI, ui_backend: Backend
) -> None:
    signed_in(ui, "alice", "users")
    ui.ready("users")
    ui.page.fill("#new-user", "bea")
    ui.page.select_option("#new-role", "read")
    ui.page.fill("#new-password", "bea's password, long enough")
    ui.page.click("#add-user button[type=submit]")
    ui.page.wait_for_selector('table.users tr[data-name="bea"]')
    assert ui.page.inner_text("#users-message") == "Added bea (read)."
    ui.shot("users")
    with ui_backend.client(None) as c:
        r = c.post("/api/v1/session", json={"user": "bea", "password": "bea's password, long enough"})
        assert r.status_code == 200 and r.json()["role"] == "read"
        remove = ui.page.locator('table.users tr[data-name="bea"] button.remove')
        remove.click()
        assert remove.inner_text() == "Remove bea for good?" and c.get("/api/v1/session").status_code == 200
        remove.click()
        ui.page.wait_for_selector('table.users tr[data-name="bea"]', state="detached")
        assert c.get("/api/v1/session").status_code == 401  # her session ended with her
    assert ui.page.locator('table.users tr[data-name="alice"] button.remove').is_disabled()  # not oneself
    ui.page.click('a[data-nav="audit"]')
    ui.ready("audit")
    rows = [r.split("\t")[1:4] for r in ui.page.locator("table.audit tbody tr").all_inner_texts()]
    assert ["alice", "user.remove", "bea"] in rows and ["alice", "user.add", "bea"] in rows

    ui.page.click("#signout")
    ui.ready("signin")
    ui.sign_in("rita")
    ui.ready("audit")  # where the page was
    assert ui.page.locator('a[data-nav="users"]').is_hidden()
