"""`opencws rules check` and `opencws rules eval` through the CLI entry point, with their exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opencws.cli.main import main

POLICY = """\
rules:
  - id: shadow_open
    expression: open.file.path == "/etc/shadow"
  - id: any_open_by_root
    expression: open.file.path != "" && process.uid == 0
"""

BROKEN = """\
rules:
  - id: ok
    expression: open.file.path == "/etc/shadow"
  - id: typo
    expression: open.file.path == "/etc/shadow" && open.file.nme == "x"
"""

EVENT = {
    "evt": {"name": "open", "category": "File Activity", "outcome": "Success"},
    "file": {"path": "/etc/shadow", "name": "shadow", "uid": 0, "gid": 0, "flags": ["O_CREAT", "O_RDWR"]},
    "process": {
        "pid": 4242,
        "uid": 0,
        "gid": 0,
        "comm": "vi",
        "executable": {"path": "/usr/bin/vi", "name": "vi", "uid": 0, "gid": 0},
        "args": ["/etc/shadow"],
        "ancestors": [
            {
                "pid": 100,
                "uid": 0,
                "gid": 0,
                "executable": {"path": "/usr/bin/bash", "name": "bash", "uid": 0, "gid": 0},
            },
            {
                "pid": 1,
                "uid": 0,
                "gid": 0,
                "executable": {"path": "/sbin/init", "name": "init", "uid": 0, "gid": 0},
            },
        ],
    },
    "date": "2026-11-21T17:55:02.123456789Z",
}


@pytest.fixture
def event_file(tmp_path: Path) -> Path:
    p = tmp_path / "event.json"
    p.write_text(json.dumps(EVENT))
    return p


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_check_reports_rules_loaded_and_exits_0(tmp_path: Path, capsys):
    p = write(tmp_path, "good.policy", POLICY)
    assert main(["rules", "check", str(p)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{p}: 2 rules loaded, 0 skipped, 0 errors"]


def test_check_prints_each_error_with_caret_and_exits_1(tmp_path: Path, capsys):
    p = write(tmp_path, "bad.policy", BROKEN)
    assert main(["rules", "check", str(p)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"{p}: 1 rule loaded, 0 skipped, 1 error"
    assert f"error: {p}:5, rule typo, line 1, column 36: unknown field 'open.file.nme'" in lines[1]
    assert lines[2].strip() == 'open.file.path == "/etc/shadow" && open.file.nme == "x"'
    assert lines[3].index("^") - lines[2].index("o") == 35


def test_check_counts_per_policy_in_a_directory(tmp_path: Path, capsys):
    write(tmp_path, "a.policy", POLICY)
    write(tmp_path, "b.policy", BROKEN.replace("id: ok", "id: ok2"))
    assert main(["rules", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "a.policy: 2 rules loaded, 0 skipped, 0 errors" in out
    assert "b.policy: 1 rule loaded, 0 skipped, 1 error" in out


def test_check_warns_about_mixed_logic(tmp_path: Path, capsys):
    p = write(
        tmp_path,
        "w.policy",
        'rules:\n  - id: w\n    expression: open.file.name == "a" && open.flags > 0 || open.flags == 1\n',
    )
    assert main(["rules", "check", str(p)]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "mixed without parentheses" in out


def test_check_compat_policy(compat_dir: Path, capsys):
    p = compat_dir / "datadog-default-1.4.3.policy"
    if not p.exists():
        pytest.skip(f"{p} is absent")
    assert main(["rules", "check", str(p)]) == 0
    assert capsys.readouterr().out.startswith(f"{p}: 79 rules loaded, 0 skipped, 0 errors")


def test_eval_expression_prints_true_or_false(event_file: Path, capsys):
    assert (
        main(["rules", "eval", "--expr", 'open.file.path == "/etc/shadow"', "--event", str(event_file)]) == 0
    )
    assert capsys.readouterr().out == "true\n"
    expr = 'open.flags & O_CREAT > 0 && process.ancestors.file.name == "bash" && process.file.name == "vi"'
    assert main(["rules", "eval", "--expr", expr, "--event", str(event_file)]) == 0
    assert capsys.readouterr().out == "true\n"
    assert (
        main(["rules", "eval", "--expr", 'open.file.path == "/etc/passwd"', "--event", str(event_file)]) == 0
    )
    assert capsys.readouterr().out == "false\n"


def test_eval_expression_of_another_event_type_is_false(event_file: Path, capsys):
    assert main(["rules", "eval", "--expr", 'exec.file.path != ""', "--event", str(event_file)]) == 0
    assert capsys.readouterr().out == "false\n"


def test_eval_bad_expression_exits_2_with_the_error(event_file: Path, capsys):
    assert main(["rules", "eval", "--expr", 'open.file.path == "/etc', "--event", str(event_file)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unterminated string" in captured.err and "^" in captured.err


def test_eval_bad_event_exits_2(tmp_path: Path, capsys):
    bad = write(tmp_path, "bad.json", '{"evt": {"name": "open"}, "nope": 1}')
    assert main(["rules", "eval", "--expr", 'open.file.path == "/x"', "--event", str(bad)]) == 2
    assert "not a CWS event" in capsys.readouterr().err


def test_eval_policy_prints_matching_rule_ids(tmp_path: Path, event_file: Path, capsys):
    p = write(tmp_path, "good.policy", POLICY)
    assert main(["rules", "eval", "--policy", str(p), "--event", str(event_file)]) == 0
    assert capsys.readouterr().out.splitlines() == ["shadow_open", "any_open_by_root"]


def test_rules_without_subcommand_is_a_usage_error(capsys):
    assert main(["rules"]) == 2


def test_eval_an_array_of_events_prints_a_line_per_event(tmp_path: Path, capsys):
    other = dict(EVENT, file=dict(EVENT["file"], path="/etc/hosts", name="hosts"))
    f = write(tmp_path, "events.json", json.dumps([EVENT, other]))
    assert main(["rules", "eval", "--expr", 'open.file.name == "shadow"', "--event", str(f)]) == 0
    assert capsys.readouterr().out == "true\nfalse\n"
    p = write(tmp_path, "good.policy", POLICY)
    assert main(["rules", "eval", "--policy", str(p), "--event", str(f)]) == 0
    assert capsys.readouterr().out == "shadow_open any_open_by_root\nany_open_by_root\n"


def test_check_an_empty_directory_is_an_error(tmp_path: Path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["rules", "check", str(tmp_path / "empty")]) == 1
    assert "no *.policy file" in capsys.readouterr().out


def _eval(args: list[str]) -> int:
    from opencws.cli.main import main

    return main(["rules", "eval", *args])


def test_eval_with_a_missing_policy_is_a_usage_error(tmp_path, capsys):
    ev_file = tmp_path / "e.json"
    ev_file.write_text('{"evt": {"name": "open"}}')
    assert _eval(["--policy", str(tmp_path / "nope.policy"), "--event", str(ev_file)]) == 2
    assert "no such file or directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("patch", "pointer"),
    [
        ({"date": 12345}, "/date"),
        ({"process": {"pid": "x"}}, "/process/pid"),
        ({"process": {"args": "abc"}}, "/process/args"),
        ({"bpf": {"cmd": 5}}, "/bpf/cmd"),
    ],
)
def test_eval_rejects_events_that_do_not_match_the_schema(tmp_path, capsys, patch, pointer):
    import json

    doc = {"evt": {"name": "open", "category": "File Activity", "outcome": "Success"}, **patch}
    ev_file = tmp_path / "e.json"
    ev_file.write_text(json.dumps(doc))
    assert _eval(["--expr", 'open.file.path == "/x"', "--event", str(ev_file)]) == 2
    err = capsys.readouterr().err
    assert "not a CWS event" in err and pointer in err


def test_the_test_subcommand_is_registered_directly():
    import inspect

    from opencws.cli import rules_cmd

    source = inspect.getsource(rules_cmd)
    assert "ImportError" not in source and "rules_test_cmd.run" in source
