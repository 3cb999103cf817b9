"""Rule suites (`*.tests.yaml`): cases read from YAML, malformed files a precise error."""

from __future__ import annotations

import pytest

from opencws.secl.rulesuite import SuiteError, load_suite


def test_a_non_utf8_suite_is_a_suite_error(tmp_path):
    p = tmp_path / "s.tests.yaml"
    p.write_bytes(b"cases:\n  - name: \xfe\n")
    with pytest.raises(SuiteError, match=r"s.tests.yaml:2: cannot read: not UTF-8"):
        load_suite(p)


def test_an_unquoted_timestamp_in_a_suite_is_its_rfc3339_text(tmp_path):
    p = tmp_path / "s.tests.yaml"
    p.write_text(
        "cases:\n  - name: t\n    event: {evt: {name: open}, date: 2025-11-21T17:55:02Z}\n    expect: []\n"
    )
    (case,) = load_suite(p).cases
    assert case.event_json["date"] == "2025-11-21T17:55:02Z"
    assert case.event.date == 1763747702 * 10**9


def test_an_empty_rule_id_in_a_suite_is_malformed(tmp_path):
    p = tmp_path / "s.tests.yaml"
    p.write_text('cases:\n  - name: t\n    event: {evt: {name: open}}\n    expect: ""\n')
    with pytest.raises(SuiteError, match="list of rule ids"):
        load_suite(p)
