"""The test cases of detection rules: each rule lists the event sequences that must raise signals (how many,
with which count, group and message) and those that must not. Each case runs through the real evaluator with
a fresh in-memory state.

    tests:
      - name: five reads within ten minutes raise one signal
        events:                                  # in order; each a CWS event with its envelope
          - extends: [shadow_read]               # the file's `templates`, merged in order, then `event`
            rule_id: credential_shadow_read      # the envelope (optional): rule_id, host
            host: web-1
            at: 0s                               # date: the case's start (2026-01-01T00:00:00Z) + at
            repeat: 5                            # optional: this event N times,
            every: 1m                            #   `every` apart (default 1s)
            event: {process: {pid: 4242}}
        signals: [{count: 5, group: {host: web-1}}]   # or a number; 0 or []: no signal may be raised
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opencws.backend.detection.db import Database
from opencws.backend.detection.engine import Detector
from opencws.backend.detection.rules import DetectionRule, load_file, parse_duration, strip_lines
from opencws.backend.store.rows import Envelope, event_row
from opencws.model.codec import format_timestamp
from opencws.schema.validation import event_validator
from opencws.secl.rulesuite import deep_merge

START = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z
_EVENT_KEYS = {"extends", "rule_id", "host", "at", "repeat", "every", "event"}


@dataclass
class CaseResult:
    rule: str
    name: str
    failures: list[str]


def _events(rule: DetectionRule, case: dict[str, Any], templates: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows = []
    for n, item in enumerate(case.get("events") or []):
        where = f"event #{n + 1}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping")
        unknown = set(item) - _EVENT_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        extends = item.get("extends") or []
        extends = [extends] if isinstance(extends, str) else extends
        merged: Any = {}
        for t in extends:
            if t not in templates:
                raise ValueError(f"{where}: unknown template {t!r}")
            merged = deep_merge(merged, templates[t])
        merged = deep_merge(merged, item.get("event") or {})
        at, every = _duration(item.get("at", 0)), _duration(item.get("every", "1s"))
        env = Envelope(host=str(item.get("host") or ""), rule_id=str(item.get("rule_id") or ""))
        for k in range(int(item.get("repeat", 1))):
            event = {**merged, "date": format_timestamp(START + at + k * every)}
            issues = event_validator().issues(event)
            if issues:
                raise ValueError(f"{where}: not a valid CWS event: {'; '.join(map(str, issues[:3]))}")
            rows.append((event_row(event, env, START), event))
    return rows


def _duration(v: Any) -> int:
    return 0 if v in (0, "0s", "0") else parse_duration(v)


def run_case(rule: DetectionRule, case: dict[str, Any], templates: dict[str, Any]) -> list[str]:
    """The reasons the case fails (empty: it passes)."""
    try:
        pairs = _events(rule, case, templates)
    except (ValueError, TypeError) as e:
        return [f"malformed case: {e}"]
    db = Database(None)
    try:
        detector = Detector([rule], db)
        # One batch: the signals returned are updated in place by the later events that join them.
        signals = detector.observe([p[0] for p in pairs], [p[1] for p in pairs])
    finally:
        db.close()
    want = case.get("signals", 0)
    if isinstance(want, int):
        return (
            []
            if len(signals) == want
            else [f"expected {want} signal(s), got {len(signals)}: {_brief(signals)}"]
        )
    if not isinstance(want, list):
        return ["malformed case: `signals` is a number or a list of expected signals"]
    if len(signals) != len(want):
        return [f"expected {len(want)} signal(s), got {len(signals)}: {_brief(signals)}"]
    failures = []
    for i, (w, s) in enumerate(zip(want, signals, strict=True)):
        if "count" in w and s.count != w["count"]:
            failures.append(f"signal #{i + 1}: count {s.count}, expected {w['count']}")
        for k, v in (w.get("group") or {}).items():
            if s.group.get(k) != v:
                failures.append(f"signal #{i + 1}: group {k} = {s.group.get(k)!r}, expected {v!r}")
        for k in ("message", "title"):
            if k in w and getattr(s, k) != w[k]:
                failures.append(f"signal #{i + 1}: {k} {getattr(s, k)!r}, expected {w[k]!r}")
    return failures


def _brief(signals: list[Any]) -> str:
    return "; ".join(f"{s.group} x{s.count}" for s in signals) or "none"


def run_file(path: str | Path) -> list[CaseResult]:
    rules, templates = load_file(path)
    out = []
    for r in rules:
        for case in r.tests:
            case = strip_lines(case)
            out.append(CaseResult(r.id, str(case.get("name", "?")), run_case(r, case, templates)))
    return out
