"""The webhook sender against a real HTTP server on 127.0.0.1: a redirect is a failure (never followed), the
secret header's syntax is checked, and a comment's length is bounded."""

from __future__ import annotations

import http.server
import threading
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from opencws.backend.detection.db import Database
from opencws.backend.detection.metrics import DetectionMetrics
from opencws.backend.detection.signals import MAX_COMMENT, Signal, SignalError, SignalStore
from opencws.backend.detection.webhooks import WebhookSender, parse_header
from opencws.backend.settings import SettingsError


class Redirect(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_response(302)
        self.send_header("Location", "/elsewhere")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_redirect_is_an_error_not_followed() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        db = Database(None)
        sender = WebhookSender(SignalStore(db), DetectionMetrics(CollectorRegistry()),
                               f"http://127.0.0.1:{server.server_address[1]}/hook")  # fmt: skip
        with httpx.Client() as client:
            assert sender._post(client, {"id": "x"}) == "HTTP 302: "
    finally:
        server.shutdown()


def test_the_secret_header_reads_name_colon_value() -> None:
    assert parse_header("Authorization: Bearer s3cr3t") == {"Authorization": "Bearer s3cr3t"}
    assert parse_header(None) == {}
    for bad in ("no colon", ": value", "Name:", "X: a\r\nY: b"):
        with pytest.raises(SettingsError, match="webhook_header"):
            parse_header(bad)
    with pytest.raises(SettingsError, match="webhook_url must be an http"):
        WebhookSender(SignalStore(Database(None)), DetectionMetrics(CollectorRegistry()), "ftp://x/")


def test_a_comment_may_be_as_long_as_the_limit_not_longer() -> None:
    store = SignalStore(Database(None))
    with store.db.transaction() as conn:
        store.write(conn, [Signal("ab", "r", "t", "m", "low", {}, 1, 1, 1)], [], webhook=False)
    assert (
        store.set_status("ab", "archived", "me", "x" * MAX_COMMENT).history[0]["comment"] == "x" * MAX_COMMENT
    )
    with pytest.raises(SignalError, match="longer than"):
        store.set_status("ab", "open", "me", "x" * (MAX_COMMENT + 1))
    with pytest.raises(SignalError, match="unknown status"):
        store.set_status("ab", "closed", "me", None)
    assert store.set_status("cd", "open", "me", None) is None
