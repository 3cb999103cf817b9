"""A policy of the user's own extends or replaces the shipped policy's macros (`combine: merge|override`)."""

from __future__ import annotations

from pathlib import Path

from secl_events import exec_event

from opencws.secl import RuleSet, load_policies
from opencws.secl.policies import DEFAULT_POLICY

SHIPPED = """\
macros:
  - id: web_servers
    description: web servers
    values: [nginx, apache2]
  - id: not_from_deploy
    expression: process.ancestors.file.name != "deployer"
rules:
  - id: shell_from_web
    expression: exec.file.name == "bash" && process.ancestors.file.name in web_servers && not_from_deploy
"""


def _load(tmp_path: Path, local: str):
    (tmp_path / "10-shipped.policy").write_text(SHIPPED)
    (tmp_path / "90-local.policy").write_text(local)
    return load_policies([tmp_path])


def _shell_under(parents: list[str]) -> object:
    chain = [(f"/usr/sbin/{p}", 100 - i) for i, p in enumerate(parents)]
    return exec_event("/usr/bin/bash", ["-c", "id"], ancestors=[*chain, ("/sbin/init", 1)])


def test_merge_adds_the_users_values_to_a_list_macro(tmp_path: Path) -> None:
    ps = _load(tmp_path, "macros:\n  - id: web_servers\n    combine: merge\n    values: [node]\n")
    assert ps.errors == [] and ps.warnings == []
    rules = RuleSet(ps.rules)
    assert list(rules.match(_shell_under(["node"]))) == ["shell_from_web"]
    assert list(rules.match(_shell_under(["nginx"]))) == ["shell_from_web"]
    assert ps.macros["web_servers"].description == "web servers"


def test_override_replaces_a_macro_so_an_exclusion_can_be_added(tmp_path: Path) -> None:
    local = (
        "macros:\n  - id: not_from_deploy\n    combine: override\n"
        '    expression: process.ancestors.file.name not in ["deployer", "ansible-playbook"]\n'
    )
    ps = _load(tmp_path, local)
    assert ps.errors == []
    rules = RuleSet(ps.rules)
    assert list(rules.match(_shell_under(["ansible-playbook", "nginx"]))) == []
    assert list(rules.match(_shell_under(["nginx"]))) == ["shell_from_web"]


def test_a_macro_defined_twice_without_combine_is_an_error_that_names_the_way_out(tmp_path: Path) -> None:
    ps = _load(tmp_path, "macros:\n  - id: web_servers\n    values: [node]\n")
    assert len(ps.errors) == 1
    assert "duplicate macro id 'web_servers'" in ps.errors[0].message
    assert "combine: merge" in ps.errors[0].message
    # The shipped definition keeps working.
    assert list(RuleSet(ps.rules).match(_shell_under(["nginx"]))) == ["shell_from_web"]


def test_merge_onto_an_expression_macro_or_an_unknown_combine_is_an_error(tmp_path: Path) -> None:
    ps = _load(tmp_path, "macros:\n  - id: not_from_deploy\n    combine: merge\n    values: [x]\n")
    assert ["is not a list" in e.message for e in ps.errors] == [True]
    ps = _load(tmp_path, "macros:\n  - id: web_servers\n    combine: append\n    values: [x]\n")
    assert ["`combine` must be 'merge' or 'override'" in e.message for e in ps.errors] == [True]


def test_the_shipped_policy_takes_a_local_exclusion(tmp_path: Path) -> None:
    local = tmp_path / "zz-local.policy"
    local.write_text("macros:\n  - id: web_servers\n    combine: merge\n    values: [node]\n")
    ps = load_policies([DEFAULT_POLICY, local])
    assert ps.errors == []
    assert "node" in ps.macros["web_servers"].text
