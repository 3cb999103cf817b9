"""A policy of the user's own changes or turns off a shipped rule: a later definition of the same id with
`combine: override` (the keys `override_options.fields` names; the expression when it names none) or
`disabled: true`. Any other redefinition is a duplicate."""

from __future__ import annotations

from pathlib import Path

from secl_events import exec_event

from opencws.secl import RuleSet, load_policies

SHIPPED = """\
rules:
  - id: shell_from_web
    expression: exec.file.name == "bash" && process.ancestors.file.name == "nginx"
    tags: {severity: high}
    every: 10s
  - id: recon
    expression: exec.file.name == "id"
"""


def _load(tmp_path: Path, local: str):
    (tmp_path / "10-shipped.policy").write_text(SHIPPED)
    (tmp_path / "90-local.policy").write_text(local)
    return load_policies([tmp_path])


def _exec(path: str, parent: str = "/usr/sbin/nginx") -> object:
    return exec_event(path, [], ancestors=[(parent, 100), ("/sbin/init", 1)])


def test_override_replaces_the_expression_and_keeps_the_rest(tmp_path: Path) -> None:
    ps = _load(tmp_path, """\
rules:
  - id: shell_from_web
    combine: override
    expression: exec.file.name == "bash" && process.ancestors.file.name in ["nginx", "node"]
""")
    assert ps.errors == [], [e.format() for e in ps.errors]
    (rule,) = [r for r in ps.rules if r.id == "shell_from_web"]
    assert rule.tags == {"severity": "high"} and rule.every == 10 * 10**9
    rules = RuleSet(ps.rules)
    assert list(rules.match(_exec("/usr/bin/bash", "/usr/bin/node"))) == ["shell_from_web"]
    assert [r.id for r in ps.rules] == ["shell_from_web", "recon"]  # one rule, where it was first defined


def test_override_options_name_what_is_replaced(tmp_path: Path) -> None:
    ps = _load(tmp_path, """\
rules:
  - id: shell_from_web
    combine: override
    override_options: {fields: [tags, every]}
    expression: exec.file.name == "never"
    tags: {severity: low}
    every: 1m
""")
    assert ps.errors == []
    (rule,) = [r for r in ps.rules if r.id == "shell_from_web"]
    assert rule.tags == {"severity": "low"} and rule.every == 60 * 10**9
    assert "process.ancestors.file.name" in rule.expression  # the expression was not named: kept
    everything = _load(tmp_path, """\
rules:
  - id: shell_from_web
    combine: override
    override_options: {fields: [all]}
    expression: exec.file.name == "zsh"
""")
    (rule,) = [r for r in everything.rules if r.id == "shell_from_web"]
    assert rule.expression == 'exec.file.name == "zsh"' and rule.tags == {} and rule.every is None


def test_a_later_disabled_definition_turns_the_rule_off(tmp_path: Path) -> None:
    ps = _load(tmp_path, "rules:\n  - id: recon\n    disabled: true\n")
    assert ps.errors == []
    assert [r.id for r in ps.rules if not r.disabled and r.compiled is not None] == ["shell_from_web"]
    assert list(RuleSet([r for r in ps.rules if r.compiled is not None]).match(_exec("/usr/bin/id"))) == []


def test_other_redefinitions_are_errors_and_the_first_definition_stays(tmp_path: Path) -> None:
    ps = _load(tmp_path, """\
rules:
  - id: recon
    expression: exec.file.name == "whoami"
  - id: shell_from_web
    combine: merge
    expression: exec.file.name == "sh"
  - id: shell_from_web
    combine: override
    override_options: {fields: [silent]}
    expression: exec.file.name == "sh"
""")
    msgs = [e.message for e in ps.errors]
    assert len(msgs) == 3
    assert "duplicate rule id 'recon'" in msgs[0] and "10-shipped.policy:6" in msgs[0]
    assert "`combine` of a rule must be 'override'" in msgs[1]
    assert "cannot override silent" in msgs[2]
    rules = RuleSet(ps.rules)
    assert list(rules.match(_exec("/usr/bin/id"))) == ["recon"]


def test_the_documented_local_policy_changes_shipped_rules(tmp_path: Path) -> None:
    """docs/policy.md's example over the shipped default policy."""
    from opencws.secl.policies import DEFAULT_POLICY

    local = tmp_path / "local.policy"
    local.write_text("""\
rules:
  - id: discovery_network_scanner
    disabled: true
  - id: exec_shell_from_web_server
    combine: override
    override_options: {fields: [every]}
    every: 1m
""")
    ps = load_policies([DEFAULT_POLICY, local])
    assert ps.errors == [], [e.format() for e in ps.errors]
    by_id = {r.id: r for r in ps.rules}
    assert "discovery_network_scanner" not in by_id
    assert by_id["exec_shell_from_web_server"].every == 60 * 10**9
