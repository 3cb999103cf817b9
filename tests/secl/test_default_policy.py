"""The default policy's file and its rule test suite, checked without the rule engine."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
import yaml

from opencws.secl.rulesuite import find_suites, load_suite

POLICIES = Path(__file__).resolve().parents[2] / "src" / "opencws" / "secl" / "policies"
DEFAULT = POLICIES / "default.policy"
SUITE = POLICIES / "default.tests.yaml"
TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")
TACTIC = re.compile(r"^TA\d{4}$")
EVENT_TYPES = {
    "exec", "open", "chmod", "chown", "mkdir", "rmdir", "rename", "unlink", "utimes", "link", "setxattr",
    "removexattr", "setuid", "setgid", "capset", "selinux", "bpf", "mount", "umount",
}  # fmt: skip


@pytest.fixture(scope="module")
def policy() -> dict:
    return yaml.safe_load(DEFAULT.read_text())


def test_at_least_40_rules_each_described_and_tagged_with_mitre(policy: dict) -> None:
    rules = policy["rules"]
    assert len(rules) >= 40
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids)), "duplicate rule ids"
    for r in rules:
        assert set(r) <= {"id", "version", "expression", "description", "tags", "disabled"}, r["id"]
        assert len(r["description"]) >= 30, f"{r['id']}: description too short"
        assert TECHNIQUE.match(r["tags"]["technique"]), r["id"]
        assert TACTIC.match(r["tags"]["tactic"]), r["id"]


def test_covers_the_tactics_of_the_issue(policy: dict) -> None:
    tactics = {r["tags"]["tactic"] for r in policy["rules"]}
    # credential access, persistence, privilege escalation, defense evasion, execution, discovery
    assert {"TA0006", "TA0003", "TA0004", "TA0005", "TA0002", "TA0007"} <= tactics


def test_macros_are_described(policy: dict) -> None:
    for m in policy["macros"]:
        assert m.get("description"), m["id"]
        assert ("values" in m) != ("expression" in m), m["id"]


def test_every_rule_has_a_firing_and_a_quiet_case(policy: dict) -> None:
    suite = load_suite(SUITE)
    fires = {r for c in suite.cases for r in c.expect}
    quiet = {r for c in suite.cases for r in c.forbid}
    ids = {r["id"] for r in policy["rules"]}
    assert ids - fires == set(), "rules without a case where they fire"
    assert ids - quiet == set(), "rules without a benign case that forbids them"
    assert (fires | quiet) - ids == set(), "cases naming rules that do not exist"


def test_suite_events_use_the_probe_event_types() -> None:
    suite = load_suite(SUITE)
    assert suite.policy == DEFAULT
    used = {c.event_json["evt"]["name"] for c in suite.cases}
    assert used <= EVENT_TYPES
    assert len(used) >= 15


def test_suite_events_are_valid_against_the_reference_schema(spec_dir: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((spec_dir / "cws-event.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    for case in load_suite(SUITE).cases:
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(case.event_json)
        ]
        assert errors == [], f"{case.name}: {errors}"


def test_suite_events_are_consistent() -> None:
    """process.parent is ancestors[0]; the top-level container id is the process's; dates are nanoseconds."""
    for case in load_suite(SUITE).cases:
        ev = case.event_json
        proc = ev["process"]
        ancestors = proc.get("ancestors", [])
        if ancestors:
            assert proc["parent"] == ancestors[0], case.name
            assert proc.get("ppid") == ancestors[0]["pid"], case.name
            for child, parent in itertools.pairwise(ancestors):
                assert child["ppid"] == parent["pid"], case.name
        if "container" in ev:
            assert proc["container"] == ev["container"], case.name
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$", ev["date"]), case.name


def test_directory_search_finds_the_suite() -> None:
    assert find_suites([POLICIES]) == [SUITE]
