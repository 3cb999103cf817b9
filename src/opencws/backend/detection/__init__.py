"""Detection: rules over stored events raise security signals that people triage.

    rules.py    YAML rule files → compiled rules (errors located, with SECL's caret)
    engine.py   evaluation as events arrive: thresholds and new values, per group; state kept across restarts
    signals.py  signals: samples, status history, webhook state
    db.py       detection.sqlite (WAL) in the data directory
    webhooks.py the persistent, retried webhook queue
    suite.py    the rules' own test cases
    toggles.py  rules an admin disabled (kept across restarts)
    managed.py  rules an admin wrote from the API (files in the data directory)

The intake calls `observe(app, outcome)` once a request's events are stored.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from prometheus_client import CollectorRegistry

from opencws.backend.detection import managed
from opencws.backend.detection.db import Database
from opencws.backend.detection.engine import Detector
from opencws.backend.detection.metrics import DetectionMetrics
from opencws.backend.detection.rules import DetectionRule, RulesError, load_rules
from opencws.backend.detection.signals import Signal, SignalStore
from opencws.backend.detection.toggles import RuleToggles
from opencws.backend.detection.webhooks import WebhookSender
from opencws.backend.settings import Settings

log = logging.getLogger("opencws.backend.detection")

__all__ = ["Detection", "DetectionRule", "RulesError", "Signal", "audit", "load_rules", "observe"]


class Detection:
    """The rules, the evaluator, the signals and the webhook sender of one backend."""

    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        self.data_dir = settings.data_dir
        # RulesError: the backend does not start
        self.rules = load_rules(managed.rule_dirs(settings.detection_rules, settings.data_dir))
        self.manage_lock = threading.Lock()  # one rule change at a time
        self.db = Database(settings.data_dir, settings.fsync)
        self.signals = SignalStore(self.db)
        self.metrics = DetectionMetrics(registry)
        self.sender = None
        if settings.webhook_url:
            self.sender = WebhookSender(
                self.signals, self.metrics, settings.webhook_url, settings.webhook_header,
                timeout=settings.webhook_timeout, max_attempts=settings.webhook_max_attempts,
                backoff=settings.webhook_backoff,
            )  # fmt: skip
        self.detector = Detector(self.rules, self.db, webhook=self.sender is not None, metrics=self.metrics)
        self.toggles = RuleToggles(self.db)
        self.detector.set_disabled(frozenset(self.toggles.disabled()))
        if self.sender is not None:
            self.detector.on_new_signals = lambda _new: self.sender.wake.set()  # type: ignore[union-attr]

    def set_enabled(self, rule_id: str, enabled: bool, by: str) -> bool:
        """Turn a loaded rule on or off (persisted, applied from the next batch); whether it changed."""
        changed = self.toggles.set(rule_id, enabled, by)
        self.detector.set_disabled(frozenset(self.toggles.disabled()))
        return changed

    def put_rule(self, rule_id: str, text: str) -> tuple[DetectionRule, bool]:
        """Create or replace an admin's rule from its YAML text (RulesError: nothing changes; PermissionError:
        the id belongs to an operator's file); the rule and whether it replaced one."""
        with self.manage_lock:
            rule = managed.parse(rule_id, text, self.data_dir)
            old = next((r for r in self.rules if r.id == rule_id), None)
            if old is not None and not managed.is_managed(old, self.data_dir):
                raise PermissionError(
                    f"rule {rule_id} is defined in {old.source}: it cannot be replaced from the API "
                    "(disable it, and write yours under another id)"
                )
            managed.write(rule_id, text, self.data_dir)
            rules = [rule if r.id == rule_id else r for r in self.rules]
            self.detector.replace_rules(rules if old is not None else [*rules, rule], rule_id)
            self.rules = self.detector.rules
            return rule, old is not None

    def delete_rule(self, rule_id: str) -> bool:
        """Delete an admin's rule (PermissionError for an operator's); whether it existed."""
        with self.manage_lock:
            old = next((r for r in self.rules if r.id == rule_id), None)
            if old is None:
                return False
            if not managed.is_managed(old, self.data_dir):
                raise PermissionError(
                    f"rule {rule_id} is defined in {old.source}: it cannot be deleted from the API (disable it)"
                )
            managed.remove(rule_id, self.data_dir)
            self.detector.replace_rules([r for r in self.rules if r.id != rule_id], rule_id)
            self.rules = self.detector.rules
            return True

    def start(self) -> None:
        if self.sender is not None:
            self.sender.start()

    def close(self) -> None:
        if self.sender is not None:
            self.sender.stop()
        self.db.close()


def observe(app: Any, outcome: Any) -> None:
    """The intake's hook, after `outcome.rows` are stored: evaluate them (and write the signals) now."""
    detection: Detection | None = getattr(app.state, "detection", None)
    if detection is None or not outcome.rows:
        return
    try:
        detection.detector.observe(outcome.rows, getattr(outcome, "events", None))
    except Exception:  # the events are stored: the request succeeds; the failure is logged and counted
        log.exception("detection could not evaluate or record %d stored events", len(outcome.rows))
        detection.metrics.errors.inc(len(outcome.rows))


def audit(app: Any, actor: object, action: str, target: str, detail: dict[str, Any]) -> None:
    """Record a change in the audit log when the application has one (`app.state.audit`); `actor` is the
    caller (a principal: the log names a key by its id) or a name."""
    log = getattr(app.state, "audit", None)
    if log is not None:
        log(actor, action, target, detail)
