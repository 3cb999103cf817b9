"""`opencws rules test`: suite loading errors (exit 2) and the suite format's merge rules."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from opencws.cli import rules_test_cmd
from opencws.secl.rulesuite import SuiteError, deep_merge, load_suite

POLICY = """\
version: 1.0.0
rules:
  - id: shadow_read
    expression: open.file.path == "/etc/shadow"
    description: shadow read
    tags: {technique: T1003.008, tactic: TA0006}
"""

OPEN_SHADOW = """\
      evt: {name: open, category: File Activity, outcome: Success}
      file: {path: /etc/shadow, name: shadow, uid: 0, gid: 42, flags: [O_RDONLY]}
      process: {pid: 4242, uid: 0, gid: 0, comm: cat}
      date: "2026-11-21T14:03:12.418273650Z"
"""


def run_cmd(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    rules_test_cmd.add_arguments(parser)
    return rules_test_cmd.run(parser.parse_args(list(argv)))


def write(tmp_path: Path, text: str, name: str = "x.tests.yaml") -> Path:
    (tmp_path / "p.policy").write_text(POLICY)
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cases: [\n", "invalid YAML"),
        ("- 1\n", "a suite is a mapping"),
        ("policy: p.policy\ncases: []\n", "`cases` must be a non-empty list"),
        ("policy: p.policy\nrulez: 1\ncases: [{name: a, event: {}, expect: []}]\n", "unknown key(s) 'rulez'"),
        ("policy: p.policy\ncases:\n  - event: {}\n    expect: []\n", "case #1: `name` is missing"),
        (
            "policy: p.policy\ncases:\n  - name: a\n    event: {evt: {name: open}}\n",
            "case 'a': `expect` is missing",
        ),
        (
            "policy: p.policy\ncases:\n  - name: a\n    event: {evt: {name: open}}\n    expect: [1]\n",
            "case 'a': `expect` must be a list of rule ids",
        ),
        (
            "policy: p.policy\ncases:\n  - name: a\n    event: {evt: {name: open}}\n    expect: []\n"
            "  - name: a\n    event: {evt: {name: open}}\n    expect: []\n",
            "case 'a': duplicate case name",
        ),
        (
            "policy: p.policy\ncases:\n  - name: a\n    extends: nope\n    expect: []\n",
            "case 'a': unknown template 'nope'",
        ),
        (
            "policy: p.policy\ncases:\n  - name: bad pid\n    event: {process: {pid: x, uid: 0, gid: 0}}\n"
            "    expect: []\n",
            "case 'bad pid': event does not match the CWS event schema",
        ),
        (
            "policy: p.policy\ncases:\n  - name: typo\n    event: {proces: {pid: 1}}\n    expect: []\n",
            "case 'typo': event does not match the CWS event schema",
        ),
        (
            "policy: p.policy\ncases:\n  - name: both\n    event: {evt: {name: open}}\n"
            "    expect: [r]\n    forbid: [r]\n",
            "case 'both': rule(s) r both expected and forbidden",
        ),
        ("cases:\n  - name: a\n    event: {evt: {name: open}}\n    expect: []\n", "no policy"),
        (
            "policy: missing.policy\ncases:\n  - name: a\n    event: {evt: {name: open}}\n    expect: []\n",
            "does not exist",
        ),
    ],
)
def test_malformed_suite_exits_2_naming_file_and_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = write(tmp_path, text)
    assert run_cmd(str(path)) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    assert message in err


def test_missing_path_and_empty_directory_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cmd(str(tmp_path / "nope.yaml")) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert run_cmd(str(tmp_path)) == 2
    assert "no rule test suite" in capsys.readouterr().err


def test_templates_merge_deeply_and_null_removes(tmp_path: Path) -> None:
    text = (
        "policy: p.policy\n"
        "templates:\n"
        "  base:\n" + OPEN_SHADOW.replace("      ", "    ") + "    container: {id: abc}\n"
        "cases:\n"
        "  - name: merged\n"
        "    extends: base\n"
        "    event: {file: {path: /etc/gshadow, name: gshadow}, container: null}\n"
        "    expect: []\n"
    )
    suite = load_suite(write(tmp_path, text))
    (case,) = suite.cases
    assert case.event_json["file"] == {
        "path": "/etc/gshadow", "name": "gshadow", "uid": 0, "gid": 42, "flags": ["O_RDONLY"],
    }  # fmt: skip
    assert "container" not in case.event_json
    assert case.event.file is not None and case.event.file.path == "/etc/gshadow"
    assert suite.policy == tmp_path / "p.policy"


def test_deep_merge_replaces_lists() -> None:
    assert deep_merge({"a": {"b": [1, 2], "c": 1}}, {"a": {"b": [3]}}) == {"a": {"b": [3], "c": 1}}


def test_check_reports_missing_unexpected_and_forbidden(tmp_path: Path) -> None:
    text = (
        f"policy: p.policy\ncases:\n  - name: a\n    event:\n{OPEN_SHADOW}    expect: [x]\n    forbid: [y]\n"
    )
    (case,) = load_suite(write(tmp_path, text)).cases
    assert case.check(["x"]) == []
    assert case.check([]) == ["rule 'x' did not fire"]
    assert case.check(["x", "y"]) == ["rule 'y' fired but is forbidden"]
    assert case.check(["x", "z"]) == ["rule 'z' fired unexpectedly"]
    case.exact = False
    assert case.check(["x", "z"]) == []


def test_load_error_is_a_suite_error(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"x.tests.yaml:1:\d+: invalid YAML"):
        load_suite(write(tmp_path, "{: ["))
