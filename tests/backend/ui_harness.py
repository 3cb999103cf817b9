"""The web UI under test: a backend process with users and real events, Debian's chromium driven by
Playwright, a screenshot of each view in `reports/screenshots/`, and each view's load time as the page
measured it (from the route change to its data on the page). The terminal summary lists both."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from backend_corpus import event_mix
from backend_process import Backend

from opencws.model.codec import format_timestamp

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("OPENCWS_SCREENSHOTS", ROOT / "reports" / "screenshots"))
CHROMIUM = "/usr/bin/chromium"
PASSWORDS = {"alice": "alice-admin-password", "rita": "rita-read-password"}
HOSTS = ("web-1", "db-1")
# Envelope rule ids: the default detection rules raise signals on the first two (agent_credential_access,
# agent_execution_and_c2), not on the third.
RULE_IDS = ("credential_shadow_read", "exec_from_tmp", "other_rule")

# Filled during the session, printed by the conftest's terminal summary.
timings: list[tuple[str, str, float]] = []  # (test, view, ms)
screenshots: list[Path] = []


def add_user(b: Backend, name: str, role: str) -> None:
    from opencws.backend.auth.users import UserStore

    users = UserStore(str(b.data_dir))
    try:
        users.add(name, role, PASSWORDS[name])
    finally:
        users.close()


def ingest(b: Backend, n: int, *, seed: int = 5) -> list[dict[str, Any]]:
    """`n` varied events over the last hour, sent over HTTP with an agent's key; the envelopes as sent."""
    base = time.time_ns() - 3600 * 1_000_000_000
    events = event_mix(n, seed=seed, base_ns=base)
    step = 3600 * 1_000_000_000 // max(n, 1)
    for i, e in enumerate(events):
        e["date"] = format_timestamp(base + i * step)
    docs = [{"host": HOSTS[i % 2], "rule_id": RULE_IDS[i % 3], "event": e} for i, e in enumerate(events)]
    with b.client(b.key("ingest", "test agent")) as c:
        for i in range(0, n, 2000):
            r = c.post("/api/v1/events", content=orjson.dumps(docs[i : i + 2000]))
            assert r.status_code == 200 and not r.json()["rejected"], r.text
    return docs


def prefill(data_dir: Path, n: int, t_from: int, t_to: int) -> None:
    """`n` events dated evenly in [t_from, t_to) (ns) written straight into the embedded store before the
    backend opens it: the rows intake makes (`row_of_dict`), without HTTP and validation, so that the views
    can be timed over 1,000,000 stored events (OPENCWS_UI_EVENTS) in minutes."""
    from opencws.backend.store import open_store
    from opencws.backend.store.rows import Envelope, row_of_dict

    pool = event_mix(2000, seed=11)
    envelopes = [Envelope(host=h, rule_id="other_rule") for h in ("web-1", "db-1", "web-2", "db-2")]
    step = (t_to - t_from) // n
    store = open_store(None, str(data_dir))
    try:
        for start in range(0, n, 20_000):
            rows = []
            for i in range(start, min(n, start + 20_000)):
                e = dict(pool[i % len(pool)])
                e["date"] = format_timestamp(t_from + i * step)
                rows.append(row_of_dict(e, envelopes[i % 4], time.time_ns()))
            assert store.insert(rows) == len(rows)
    finally:
        store.close()


@dataclass
class UI:
    """One browser context (its own cookies) on the UI."""

    page: Any
    base: str
    test: str
    shots: list[Path] = field(default_factory=list)

    def open(self, route: str = "events") -> None:
        self.page.goto(f"{self.base}/#/{route}")

    def sign_in(self, user: str, password: str | None = None) -> None:
        self.page.fill("#signin-user", user)
        self.page.fill("#signin-password", PASSWORDS[user] if password is None else password)
        self.page.click("#signin-submit")

    def ready(self, view: str, timeout: float = 30_000) -> float:
        """Waits for `view` to have its data on the page; its load time (ms) as the page measured it."""
        self.page.wait_for_selector(f'main[data-view="{view}"][data-ready="1"]', timeout=timeout)
        if view == "signin":
            return 0.0
        ms = float(self.page.evaluate("window.opencwsTimings[window.opencwsTimings.length - 1].ms"))
        timings.append((self.test, view, ms))
        return ms

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.test}--{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        screenshots.append(path)
        return path
