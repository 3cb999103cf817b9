"""The webhook: every new signal is POSTed (its API form, JSON) to the configured URL, from a persistent
queue (the signals' `webhook_*` columns): a failed attempt is retried with exponential backoff, across
restarts, until `webhook_max_attempts`; then the signal's webhook is `failed`. Each error is kept on its
signal (the API shows it) and counted in metrics."""

from __future__ import annotations

import logging
import threading
import time

import httpx

from opencws.backend.detection.metrics import DetectionMetrics
from opencws.backend.detection.signals import SignalStore
from opencws.backend.settings import SettingsError

log = logging.getLogger("opencws.backend.webhooks")
MAX_DELAY = 600.0


def parse_header(text: str | None) -> dict[str, str]:
    """`Name: value` → {Name: value} (the secret header sent with every delivery)."""
    if not text:
        return {}
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or not value.strip() or any(c in text for c in "\r\n"):
        raise SettingsError(
            "webhook_header must read 'Name: value' (one line), e.g. 'Authorization: Bearer s3cr3t'"
        )
    return {name.strip(): value.strip()}


class WebhookSender:
    def __init__(self, signals: SignalStore, metrics: DetectionMetrics, url: str, header: str | None = None,
                 *, timeout: float = 10.0, max_attempts: int = 8, backoff: float = 2.0) -> None:  # fmt: skip
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"webhook_url must be an http:// or https:// URL, got {url!r}")
        self.signals, self.metrics, self.url = signals, metrics, url
        self.headers = {"Content-Type": "application/json", **parse_header(header)}
        self.timeout, self.max_attempts, self.backoff = timeout, max_attempts, backoff
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.thread.join(timeout=self.timeout + 5)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            while not self.stopping.is_set():
                try:
                    self._pass(client)
                    nxt = self.signals.next_delivery()
                except Exception:  # the database closing under us at shutdown, or a bug: keep the thread
                    log.exception("webhook pass failed")
                    nxt = None
                wait = 30.0 if nxt is None else max(0.0, min(30.0, nxt - time.time()))
                self.wake.wait(wait)
                self.wake.clear()

    def _pass(self, client: httpx.Client) -> None:
        while not self.stopping.is_set():
            due = self.signals.due_deliveries(time.time())
            self.metrics.webhook_pending.set(self.signals.webhook_summary()["pending"])
            if not due:
                return
            for s in due:
                if self.stopping.is_set():
                    return
                attempts = (s.webhook or {}).get("attempts", 0) + 1
                error = self._post(client, s.to_api())
                if error is None:
                    self.signals.delivered(s.id, attempts)
                    self.metrics.webhooks.labels("delivered").inc()
                    continue
                give_up = attempts >= self.max_attempts
                retry = None if give_up else time.time() + min(MAX_DELAY, self.backoff * 2 ** (attempts - 1))
                self.signals.failed(s.id, attempts, error, retry)
                self.metrics.webhooks.labels("abandoned" if give_up else "error").inc()
                log.warning("webhook for signal %s, attempt %d: %s%s", s.id, attempts, error,
                            " (given up)" if give_up else "")  # fmt: skip

    def _post(self, client: httpx.Client, payload: dict) -> str | None:  # type: ignore[type-arg]
        try:
            r = client.post(self.url, json={"signal": payload}, headers=self.headers)
        except httpx.HTTPError as e:
            return f"{type(e).__name__}: {e}"
        if 200 <= r.status_code < 300:
            return None
        return f"HTTP {r.status_code}: {r.text[:200]}"
