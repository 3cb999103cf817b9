"""The shipped detection rules' own cases (each rule's `tests`), and the case runner failing when it should."""

from __future__ import annotations

from pathlib import Path

import pytest
from detection_helpers import rule_file

from opencws.backend.detection.rules import DEFAULT_DIR
from opencws.backend.detection.suite import run_file

CASES = [(f.name, c) for f in sorted(DEFAULT_DIR.glob("*.yaml")) for c in run_file(f)]


@pytest.mark.parametrize(("file", "case"), CASES, ids=[f"{c.rule}: {c.name}" for _, c in CASES])
def test_shipped_rule_case(file: str, case) -> None:  # type: ignore[no-untyped-def]
    assert case.failures == []


def test_every_shipped_rule_has_a_case_raising_a_signal_and_one_raising_none() -> None:
    from opencws.backend.detection.rules import load_rules

    for r in load_rules():
        wants = [c.get("signals", 0) for c in r.tests]
        assert any(w not in (0, []) for w in wants), r.id
        assert any(w in (0, []) for w in wants), r.id


def test_a_case_whose_expectation_is_wrong_fails_with_the_reason(tmp_path: Path) -> None:
    f = rule_file(tmp_path, """\
        templates:
          nmap: {evt: {name: exec, category: Process Activity, outcome: Success},
                 process: {pid: 1, ppid: 0, uid: 0, gid: 0, executable: {path: /usr/bin/nmap, uid: 0, gid: 0}}}
        rules:
          - id: scans
            title: scans
            message: "{process.file.path} on {host}"
            severity: low
            condition: exec.file.path == "/usr/bin/nmap"
            group_by: [host]
            threshold: {count: 2, window: 1m}
            tests:
              - name: too few
                events: [{extends: nmap, host: h}]
                signals: 1
              - name: wrong count and message
                events: [{extends: nmap, host: h, repeat: 3, every: 1s}]
                signals: [{count: 2, message: "x", group: {host: g}}]
              - name: unknown template
                events: [{extends: nope}]
                signals: 0
              - name: invalid event
                events: [{extends: nmap, event: {process: {pid: "one"}}}]
                signals: 0
    """)  # fmt: skip
    results = {c.name: c.failures for c in run_file(f)}
    assert results["too few"] == ["expected 1 signal(s), got 0: none"]
    assert results["wrong count and message"] == [
        "signal #1: count 3, expected 2",
        "signal #1: group host = 'h', expected 'g'",
        "signal #1: message '/usr/bin/nmap on h', expected 'x'",
    ]
    assert results["unknown template"] == ["malformed case: event #1: unknown template 'nope'"]
    assert results["invalid event"][0].startswith("malformed case: event #1: not a valid CWS event: ")
