"""Policy files: Datadog's .policy YAML, directories in name order, bad rules skipped, duplicate ids."""

from __future__ import annotations

from pathlib import Path

from secl_events import exec_event, file_event, open_event, selinux_event

from opencws.model.event import File
from opencws.secl import RuleSet, load_policies

GOOD = """\
version: 1.0.0
macros:
  - id: SHELLS
    description: shells
    expression: '["/bin/sh", "/usr/bin/bash"]'
  - id: SECRETS
    values: ["/etc/shadow", "/etc/gshadow", '~"/etc/ssh/*_key"', 'r"^/etc/secret-[0-9]+$"']
rules:
  - id: shell_exec
    version: 1.0.0
    description: a shell was executed
    expression: exec.file.path in SHELLS
    tags:
      technique: T1059
      severity: low
  - id: secret_open
    description: a secret was opened
    expression: |-
      open.file.path in SECRETS
        && process.file.name != "sshd"
  - id: off
    disabled: true
    expression: open.file.path == "/x"
"""

BAD = """\
rules:
  - id: broken
    expression: |-
      open.file.path == "/etc/shadow"
        && open.file.pth == "/x"
  - id: still_fine
    expression: unlink.file.path == "/etc/shadow"
  - id: shell_exec
    expression: exec.file.path == "/bin/sh"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_a_policy_loads_rules_macros_tags_and_skips_disabled(tmp_path: Path):
    ps = load_policies([write(tmp_path, "a.policy", GOOD)])
    assert ps.errors == []
    assert [r.id for r in ps.rules] == ["shell_exec", "secret_open"]
    shell = ps.rules[0]
    assert shell.tags == {"technique": "T1059", "severity": "low"}
    assert shell.event_type == "exec" and shell.description == "a shell was executed"
    assert shell.source == str(tmp_path / "a.policy") and shell.version == "1.0.0"
    assert set(ps.macros) == {"SHELLS", "SECRETS"}
    rs = RuleSet(ps.rules)
    assert rs.match(exec_event("/usr/bin/bash")) == ["shell_exec"]
    assert rs.match(open_event("/etc/gshadow")) == ["secret_open"]
    assert rs.match(open_event("/etc/ssh/ssh_host_rsa_key")) == ["secret_open"]
    assert rs.match(open_event("/etc/secret-42")) == ["secret_open"]  # a regex item is a regex, not a string
    assert rs.match(open_event("/etc/secret-x")) == rs.match(open_event('r"^/etc/secret-[0-9]+$"')) == []
    assert rs.match(open_event("/x")) == []


def test_a_bad_rule_is_reported_with_location_and_the_others_keep_working(tmp_path: Path):
    write(tmp_path, "a.policy", GOOD)
    write(tmp_path, "b.policy", BAD)
    ps = load_policies([tmp_path])
    messages = [e.format() for e in ps.errors]
    assert len(ps.errors) == 2, messages
    broken = ps.errors[0]
    assert broken.rule_id == "broken" and broken.file == str(tmp_path / "b.policy")
    assert (broken.line, broken.column) == (2, 6)
    assert broken.file_line == 5
    assert broken.format().startswith(
        f"{tmp_path / 'b.policy'}:5, rule broken, line 2, column 6: unknown field"
    )
    assert "unknown field 'open.file.pth'" in broken.message
    assert "^^^^^^^^^^^^^" in messages[0]
    dup = ps.errors[1]
    assert "duplicate rule id 'shell_exec'" in dup.message
    assert [r.id for r in ps.rules] == ["shell_exec", "secret_open", "still_fine"]
    assert RuleSet(ps.rules).match(file_event("unlink", "/etc/shadow")) == ["still_fine"]


def test_a_directory_loads_policies_in_name_order_with_macros_first(tmp_path: Path):
    write(
        tmp_path,
        "20-rules.policy",
        "rules:\n  - id: uses_later_macro\n    expression: exec.file.path in TOOLS\n",
    )
    write(tmp_path, "30-macros.policy", "macros:\n  - id: TOOLS\n    expression: '[\"/usr/bin/nc\"]'\n")
    write(tmp_path, "10-first.policy", 'rules:\n  - id: first\n    expression: exec.file.name == "nc"\n')
    write(tmp_path, "ignored.yaml", "rules: [oops")
    ps = load_policies([tmp_path])
    assert ps.errors == []
    assert [r.id for r in ps.rules] == ["first", "uses_later_macro"]
    assert [Path(p.path).name for p in ps.policies] == [
        "10-first.policy",
        "20-rules.policy",
        "30-macros.policy",
    ]
    assert RuleSet(ps.rules).match(exec_event("/usr/bin/nc")) == ["first", "uses_later_macro"]


def test_duplicate_macro_and_bad_macro_are_errors(tmp_path: Path):
    text = """\
macros:
  - id: M
    expression: '["a"]'
  - id: M
    expression: '["b"]'
  - id: CYCLE
    expression: CYCLE && exec.file.name == "x"
  - id: BROKEN
    expression: exec.file.path == "unterminated
rules:
  - id: r
    expression: exec.file.name in M
  - id: uses_broken
    expression: BROKEN
"""
    ps = load_policies([write(tmp_path, "m.policy", text)])
    msgs = [e.message for e in ps.errors]
    assert any("duplicate macro id 'M'" in m for m in msgs)
    assert any("cyclic macro: CYCLE → CYCLE" in m for m in msgs)
    assert any("unterminated string" in m for m in msgs)
    assert any("macro 'BROKEN' has an error" in m for m in msgs)
    assert [r.id for r in ps.rules] == ["r"]


def test_malformed_yaml_and_missing_files_are_errors_not_exceptions(tmp_path: Path):
    ps = load_policies([write(tmp_path, "x.policy", "rules: [\n  - id: a"), tmp_path / "missing.policy"])
    assert len(ps.errors) == 2
    assert "invalid YAML" in ps.errors[0].message
    assert "no such file" in ps.errors[1].message


def test_rules_without_id_or_expression_are_errors(tmp_path: Path):
    text = "rules:\n  - expression: exec.file.name == \"a\"\n  - id: noexpr\n  - id: 'bad id'\n    expression: x\n"
    ps = load_policies([write(tmp_path, "x.policy", text)])
    assert len(ps.errors) == 3 and ps.rules == []


def test_mixed_logic_without_parentheses_is_a_warning(tmp_path: Path):
    text = 'rules:\n  - id: w\n    expression: exec.file.name == "a" && exec.uid == 0 || exec.uid == 1\n'
    ps = load_policies([write(tmp_path, "w.policy", text)])
    assert ps.errors == [] and len(ps.warnings) == 1
    assert "mixed without parentheses" in ps.warnings[0].message


def test_compat_policy_loads_and_type_checks_every_macro_and_rule(compat_dir: Path):
    path = compat_dir / "datadog-default-1.4.3.policy"
    if not path.exists():
        import pytest

        pytest.skip(f"{path} is absent")
    ps = load_policies([path])
    assert [e.format() for e in ps.errors] == []
    import yaml

    doc = yaml.safe_load(path.read_text())
    assert {r.id for r in ps.rules} == {r["id"] for r in doc["rules"]}
    assert set(ps.macros) == {m["id"] for m in doc["macros"]}


def test_compat_policy_rules_have_their_meaning(compat_dir: Path):
    path = compat_dir / "datadog-default-1.4.3.policy"
    if not path.exists():
        import pytest

        pytest.skip(f"{path} is absent")
    rs = RuleSet(load_policies([path]).rules)
    assert "credential_modified_open" in rs.match(open_event("/etc/shadow", ["O_WRONLY"]))
    assert "credential_modified_open" not in rs.match(open_event("/etc/shadow", ["O_RDONLY"]))
    nested = exec_event("/usr/bin/bash", ["-i"], container="f" * 64)
    assert "interactive_shell_in_container" in rs.match(nested)
    db_shell = exec_event("/usr/bin/bash", ancestors=[("/usr/sbin/mysqld", 10), ("/sbin/init", 1)])
    assert "database_shell_execution" in rs.match(db_shell)
    web = exec_event("/usr/bin/curl", ancestors=[("/usr/bin/php-fpm7", 10), ("/sbin/init", 1)])
    assert "potential_web_shell" in rs.match(web)
    assert rs.match(selinux_event(status="permissive")) == ["selinux_disable_enforcement"]
    chmod = file_event("chmod", "/etc/shadow", dest=File(mode=0o777))
    assert "credential_modified_chmod" in rs.match(chmod)
    quiet = exec_event("/usr/bin/ls", ["-la"])
    assert rs.match(quiet) == []


def test_unknown_and_unsupported_keys_are_warnings(tmp_path: Path):
    text = """\
rules:
  - id: typo
    expresion: open.file.path == "/x"
  - id: with_filters
    expression: open.file.path == "/x"
    filters: ['os == "linux"']
    every: 10s
    group_id: g
"""
    ps = load_policies([write(tmp_path, "k.policy", text)])
    assert [e.rule_id for e in ps.errors] == ["typo"]  # no expression
    msgs = [w.format() for w in ps.warnings]
    assert any("unknown key 'expresion'" in m and ":3," in m for m in msgs), msgs
    assert any("'group_id' is not supported" in m for m in msgs), msgs
    assert not any("'filters'" in m or "'every'" in m for m in msgs), msgs  # supported
    assert [r.id for r in ps.rules] == ["with_filters"]
    assert ps.rules[0].every == 10 * 10**9


def _check(tmp_path, text: bytes | str, name: str = "p.policy"):
    from opencws.secl import load_policies

    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return load_policies([p])


def test_a_non_utf8_policy_is_a_file_error(tmp_path):
    ps = _check(tmp_path, b'rules:\n  - id: r\n    expression: open.file.path == "/\xff"\n')
    (e,) = ps.errors
    assert "not UTF-8" in e.message and "0xff" in e.message
    assert e.file_line == 3


def test_duplicate_ids_are_rule_and_macro_errors_naming_the_first_definition(tmp_path):
    ps = _check(
        tmp_path,
        'macros:\n  - id: m\n    expression: open.file.name == "x"\n'
        '  - id: m\n    expression: open.file.name == "y"\n'
        'rules:\n  - id: r_dup\n    expression: open.file.path == "/a"\n'
        '  - id: r_dup\n    expression: open.file.path == "/b"\n',
    )
    macro_err, rule_err = ps.errors
    assert macro_err.kind == "macro" and macro_err.message.endswith("p.policy:2)")
    assert rule_err.kind == "rule" and rule_err.location().endswith("rule r_dup")
    assert rule_err.message.endswith("p.policy:7)") and rule_err.file_line == 9
