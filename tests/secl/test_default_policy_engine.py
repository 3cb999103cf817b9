"""The default policy through the rule engine and `opencws rules test`."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest

from opencws.bench.secl_bench import realistic_mix
from opencws.cli.main import main
from opencws.secl import RuleSet, load_policies
from opencws.secl.rulesuite import load_suite

POLICIES = Path(__file__).resolve().parents[2] / "src" / "opencws" / "secl" / "policies"
DEFAULT = POLICIES / "default.policy"
SUITE = POLICIES / "default.tests.yaml"


def test_default_policy_loads_without_errors_or_warnings() -> None:
    ps = load_policies([DEFAULT])
    assert [e.format() for e in ps.errors] == []
    assert [w.format() for w in ps.warnings] == []
    assert len(ps.rules) >= 40
    for rule in ps.rules:
        assert rule.description, rule.id
        assert rule.tags.get("technique", "").startswith("T"), rule.id
        assert rule.tags.get("tactic", "").startswith("TA"), rule.id


def test_rules_check_accepts_the_policy_directory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(POLICIES)]) == 0
    assert "0 errors" in capsys.readouterr().out


def test_default_suite_passes_with_full_coverage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(POLICIES), "--coverage"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    n = len(load_suite(SUITE).cases)
    assert out == [f"{n} passed, 0 failed"]


def test_each_case_matches_through_the_ruleset_directly() -> None:
    ruleset = RuleSet(load_policies([DEFAULT]).rules)
    for case in load_suite(SUITE).cases:
        fired = ruleset.match(case.event)
        assert case.check(fired) == [], case.name


def test_failing_cases_are_reported_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(DEFAULT, tmp_path / "default.policy")
    text = SUITE.read_text()
    # Claim that a malicious case is quiet and that a benign one fires.
    broken = text.replace(
        "    expect: [credential_shadow_read]\n", "    expect: []\n    forbid: [credential_shadow_read]\n", 1
    ).replace(
        "    expect: []\n    forbid: [credential_shadow_read]\n\n  - name: hard link",
        "    expect: [credential_shadow_read]\n\n  - name: hard link",
    )
    suite = tmp_path / "broken.tests.yaml"
    suite.write_text(broken)
    assert main(["rules", "test", str(suite)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f"{len(load_suite(SUITE).cases) - 2} passed, 2 failed"
    assert (
        f"FAIL {suite}: root shell reads /etc/shadow with cat: rule 'credential_shadow_read' fired but is forbidden"
        in out
    )
    assert (
        f"FAIL {suite}: sudo reads /etc/shadow to check alice's password: rule 'credential_shadow_read' did not fire"
        in out
    )


def test_unexpected_rule_and_unknown_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.policy").write_text(
        "version: 1.0.0\nrules:\n"
        '  - id: any_open\n    expression: open.file.path != ""\n    description: d\n'
        '  - id: shadow\n    expression: open.file.path == "/etc/shadow"\n    description: d\n'
    )
    (tmp_path / "s.tests.yaml").write_text(
        "policy: p.policy\ncases:\n"
        "  - name: exact\n    event:\n"
        "      evt: {name: open}\n      file: {path: /etc/shadow, uid: 0, gid: 0}\n"
        "      process: {pid: 7, uid: 0, gid: 0}\n"
        "    expect: [shadow, nope]\n"
    )
    assert main(["rules", "test", str(tmp_path)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [
        f"FAIL {tmp_path / 's.tests.yaml'}: exact: rule 'nope' is not in the policy; rule 'nope' did not fire; "
        "rule 'any_open' fired unexpectedly",
        "0 passed, 1 failed",
    ]


def test_policy_option_overrides_the_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s.tests.yaml").write_text(
        "policy: does-not-matter.policy\ncases:\n"
        "  - name: ls\n    event:\n"
        "      evt: {name: exec}\n      process: {pid: 7, uid: 1000, gid: 1000, executable: {path: /usr/bin/ls, "
        "uid: 0, gid: 0}}\n"
        "    expect: []\n"
    )
    assert main(["rules", "test", "--policy", str(DEFAULT), str(tmp_path / "s.tests.yaml")]) == 0
    assert capsys.readouterr().out.strip() == "1 passed, 0 failed"


def test_malformed_suite_through_main_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.tests.yaml"
    bad.write_text("policy: x.policy\ncases:\n  - name: no expectation\n    event: {evt: {name: open}}\n")
    assert main(["rules", "test", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: case 'no expectation': `expect` is missing" in err


DOCS = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def test_docs_list_every_rule_with_its_technique() -> None:
    text = DOCS.read_text()
    for rule in load_policies([DEFAULT]).rules:
        assert f"| `{rule.id}` | {rule.event_type} |" in text, rule.id
        row = next(line for line in text.splitlines() if line.startswith(f"| `{rule.id}` |"))
        assert row.endswith(f"| {rule.tags['technique']} |"), rule.id


def test_docs_example_suite_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = DOCS.read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    suite = tmp_path / "example.tests.yaml"
    suite.write_text(example.replace("policy: my.policy", f"policy: {DEFAULT}"))
    assert main(["rules", "test", str(suite)]) == 0
    assert capsys.readouterr().out.strip() == "1 passed, 0 failed"


def _variants(event: Any) -> list[Any]:
    """The event, and copies whose paths could not be resolved (only the names are known)."""
    out = [event]
    f = event.file
    if f is not None and f.path:
        out.append(
            dataclasses.replace(event, file=dataclasses.replace(f, path=None, path_resolution_error="x"))
        )
    p = event.process
    if p is not None and p.executable is not None and p.executable.path:
        exe = dataclasses.replace(p.executable, path=None, path_resolution_error="x")
        out.append(dataclasses.replace(event, process=dataclasses.replace(p, executable=exe)))
    return out


def test_ruleset_match_equals_evaluating_every_rule() -> None:
    """Whatever indexing RuleSet does, its result is that of evaluating each rule of the event's type."""
    rules = load_policies([DEFAULT]).rules
    ruleset = RuleSet(rules)
    events = [c.event for c in load_suite(SUITE).cases] + realistic_mix(3000, seed=17)
    checked = 0
    for base in events:
        for event in _variants(base):
            name = event.evt.name if event.evt is not None else None
            expected = [r.id for r in rules if r.event_type == name and r.evaluate(event)]
            where = event.file or (event.process.executable if event.process else None)
            assert ruleset.match(event) == expected, (
                f"{name} event of {where.name if where else None!r} (path {where.path if where else None!r}): "
                "RuleSet.match differs from evaluating each rule (an index or gate that is not a necessary "
                "condition of its rule?)"
            )
            checked += 1
    assert checked > 6000


def test_policy_load_errors_are_printed_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p.policy").write_text(
        "version: 1.0.0\nrules:\n"
        '  - id: good\n    expression: open.file.path == "/etc/shadow"\n    description: d\n'
        "  - id: bad\n    expression: open.file.pathh == 1\n    description: d\n"
    )
    (tmp_path / "s.tests.yaml").write_text(
        "policy: p.policy\ncases:\n"
        "  - name: shadow\n    event:\n"
        "      evt: {name: open}\n      file: {path: /etc/shadow, uid: 0, gid: 0}\n"
        "      process: {pid: 7, uid: 0, gid: 0}\n"
        "    expect: [good]\n"
    )
    assert main(["rules", "test", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == "1 passed, 0 failed"
    assert "policy error" in captured.err and "bad" in captured.err and "open.file.pathh" in captured.err


def test_the_container_age_guard_keeps_the_first_minute_of_a_container_quiet() -> None:
    """Package managers and compilers in a container that started seconds ago (an entrypoint, a classic
    `docker build` step) are expected; the same in a container running for ten minutes is reported. The
    agent dates containers (`container.created_at`, not in the CWS event); a JSON event has no date."""
    from opencws.model.event import ContainerContext

    ruleset = RuleSet(load_policies([DEFAULT]).rules)
    by_name = {c.name: c for c in load_suite(SUITE).cases}
    case = next(c for c in by_name.values() if c.expect == ["c2_container_package_manager"])
    ev = case.event
    cid = ev.container.id

    def aged(seconds: int) -> Any:
        ctx = ContainerContext(id=cid, created_at=ev.date - seconds * 1_000_000_000)
        return dataclasses.replace(ev, container=ctx, process=dataclasses.replace(ev.process, container=ctx))

    assert ruleset.match(aged(5)) == []
    assert ruleset.match(aged(600)) == ["c2_container_package_manager"]
    assert ruleset.match(ev) == ["c2_container_package_manager"]  # undated: settled
