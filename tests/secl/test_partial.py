"""Partial evaluation for in-kernel filters: could a rule still match, and which values approve events."""

from __future__ import annotations

from pathlib import Path

from opencws.secl import Approver, RuleSet, load_policies

POLICY = """\
macros:
  - id: WRITE
    expression: O_CREAT|O_TRUNC|O_RDWR|O_WRONLY
rules:
  - id: shadow
    expression: open.file.path in ["/etc/shadow", "/etc/gshadow"] && open.flags & WRITE > 0
  - id: cron
    expression: open.file.path =~ "/var/spool/cron/*" && process.uid != 0
  - id: keys
    expression: open.file.name == "authorized_keys" && open.file.path =~ "*/.ssh/*"
  - id: shell
    expression: exec.file.path in ["/bin/sh", "/usr/bin/bash"] || exec.file.name == "zsh"
  - id: anything_by_root
    expression: exec.uid == 0 && exec.file.name != "ls"
"""


def rules(tmp_path: Path, text: str = POLICY) -> RuleSet:
    p = tmp_path / "p.policy"
    p.write_text(text)
    ps = load_policies([p])
    assert ps.errors == []
    return RuleSet(ps.rules)


def test_a_path_no_rule_can_match_is_discardable(tmp_path: Path):
    rs = rules(tmp_path)
    assert not rs.could_match("open", "open.file.path", "/tmp/scratch")
    assert rs.could_match("open", "open.file.path", "/etc/shadow")
    assert rs.could_match("open", "open.file.path", "/var/spool/cron/crontabs/root")
    assert rs.could_match("open", "open.file.path", "/home/u/.ssh/authorized_keys")
    assert not rs.could_match("open", "open.file.path", "/home/u/.ssh/known_hosts")


def test_unknown_fields_could_be_anything(tmp_path: Path):
    rs = rules(tmp_path)
    assert rs.could_match("open", "open.file.name", "authorized_keys")
    assert rs.could_match("open", "open.file.name", "shadow")  # the path is unknown: /etc/shadow is possible
    assert rs.could_match("open", "process.uid", 0)  # other rules may match anyway


def test_several_field_values_at_once(tmp_path: Path):
    rs = rules(tmp_path)
    assert not rs.could_match("open", {"open.file.path": "/etc/shadow", "open.flags": 0})
    assert rs.could_match("open", {"open.file.path": "/etc/shadow", "open.flags": 0o1})
    assert not rs.could_match("open", {"open.file.path": "/var/spool/cron/x", "process.uid": 0})


def test_event_types_without_rules_cannot_match(tmp_path: Path):
    rs = rules(tmp_path)
    assert not rs.could_match("unlink", "unlink.file.path", "/etc/shadow")


def test_negations_keep_three_valued_logic(tmp_path: Path):
    rs = rules(tmp_path)
    assert rs.could_match("exec", "exec.file.name", "cat")  # anything_by_root could still match
    assert rs.could_match("exec", {"exec.file.name": "ls", "exec.file.path": "/bin/sh"})
    assert not rs.could_match("exec", {"exec.file.name": "ls", "exec.file.path": "/bin/ls"})


def test_approvers_are_the_union_when_every_rule_has_some(tmp_path: Path):
    rs = rules(tmp_path)
    assert rs.approvers("open", "open.file.path") == [
        Approver("exact", "/etc/gshadow"),
        Approver("exact", "/etc/shadow"),
        Approver("pattern", "*/.ssh/*"),
        Approver("pattern", "/var/spool/cron/*"),
    ]
    assert rs.approvers("open", "open.flags") is None  # rules cron and keys do not constrain the flags


def test_approvers_for_paths_flags_and_names(tmp_path: Path):
    text = """\
rules:
  - id: a
    expression: open.file.path in ["/etc/shadow", "/etc/gshadow"] && open.flags & O_WRONLY > 0
  - id: b
    expression: open.file.path == "/etc/sudoers" && open.flags & (O_RDWR|O_CREAT) > 0
  - id: c
    expression: exec.file.name == "nc" || exec.file.name == "ncat"
  - id: d
    expression: exec.uid == 0
"""
    rs = rules(tmp_path, text)
    paths = rs.approvers("open", "open.file.path")
    assert paths == [Approver("exact", p) for p in ("/etc/gshadow", "/etc/shadow", "/etc/sudoers")]
    names = rs.approvers("open", "open.file.name")
    assert names == [Approver("exact", n) for n in ("gshadow", "shadow", "sudoers")]
    assert rs.approvers("open", "open.flags") == [Approver("flags", 0o1), Approver("flags", 0o102)]
    assert rs.approvers("exec", "exec.file.name") is None  # rule d has no approver on the name
    assert rs.all_approvers("open") == {
        "open.file.path": paths,
        "open.flags": [Approver("flags", 0o1), Approver("flags", 0o102)],
    }


def test_an_or_without_approvers_on_one_side_has_none(tmp_path: Path):
    text = 'rules:\n  - id: a\n    expression: open.file.path == "/x" || process.uid == 0\n'
    assert rules(tmp_path, text).approvers("open", "open.file.path") is None


def test_negated_comparisons_give_no_approver(tmp_path: Path):
    text = 'rules:\n  - id: a\n    expression: open.file.path != "/x"\n  - id: b\n    expression: open.file.path not in ["/y"]\n'
    assert rules(tmp_path, text).approvers("open", "open.file.path") is None


def test_flag_values_may_be_given_as_names(tmp_path: Path):
    rs = rules(tmp_path)
    assert rs.could_match("open", {"open.file.path": "/etc/shadow", "open.flags": ["O_WRONLY", "O_CREAT"]})
    assert not rs.could_match("open", {"open.file.path": "/etc/shadow", "open.flags": ["O_RDONLY"]})


def test_three_valued_logic_under_negation(tmp_path: Path):
    text = """\
rules:
  - id: not_both
    expression: '!(open.file.path == "/x" && process.uid == 0) && open.flags > 0'
  - id: not_either
    expression: '!(open.file.path == "/y" || process.uid == 0)'
"""
    rs = rules(tmp_path, text)
    not_both, not_either = ([r] for r in rs.rules)
    assert RuleSet(not_both).could_match("open", "open.file.path", "/x")  # uid unknown: could be non-zero
    assert RuleSet(not_both).could_match("open", "open.file.path", "/z")
    assert not RuleSet(not_either).could_match("open", "open.file.path", "/y")  # !(true || ?) is false
    assert RuleSet(not_either).could_match("open", "open.file.path", "/z")


def test_partial_evaluation_is_compiled_once_per_field_set(tmp_path: Path):
    from opencws.secl import partial

    rs = rules(tmp_path)
    partial._PARTIAL_CACHE.clear()
    for i in range(200):
        rs.could_match("open", "open.file.path", f"/tmp/file{i}")
    # one compiled function per open rule (path and the name derived from it bound)
    assert len(partial._PARTIAL_CACHE) == len(rs.rules_for("open"))


def test_a_field_no_rule_of_the_type_looks_at_never_rules_the_type_out(tmp_path: Path):
    from opencws.secl.partial import could_match, matches_whatever

    def pairs(text: str) -> list:
        p = tmp_path / "w.policy"
        p.write_text(text)
        return [(r.compiled, r.macros) for r in load_policies([p]).rules]

    path_only = pairs('rules:\n  - id: a\n    expression: open.file.path == "/x"\n')
    assert matches_whatever(path_only, "open", ["process.file.path"])
    assert all(could_match(path_only, "open", {"process.file.path": exe}) for exe in ("/bin/sh", "/opt/tool"))
    assert not matches_whatever(path_only, "open", ["open.file.path"])
    assert not matches_whatever(path_only, "chmod", ["process.file.path"])  # no rule of that type

    both = pairs('rules:\n  - id: a\n    expression: open.file.path == "/x" && process.file.path == "/bin/sh"\n')
    assert not matches_whatever(both, "open", ["process.file.path"])
    assert not could_match(both, "open", {"process.file.path": "/opt/tool"})

    mixed = pairs('rules:\n  - id: a\n    expression: open.file.path == "/x" && process.file.name == "sh"\n'
                  '  - id: b\n    expression: open.file.path == "/y"\n')
    assert matches_whatever(mixed, "open", ["process.file.path"])  # rule b ignores the executable
