"""RuleSet: bucketing by event type and the gate prefilter give exactly the result of evaluating every rule."""

from __future__ import annotations

from pathlib import Path

from secl_events import exec_event, file_event, open_event

from opencws.model.event import File
from opencws.secl import RuleSet, load_policies

POLICY = """\
rules:
  - id: exact_path
    expression: open.file.path in ["/etc/shadow", "/etc/gshadow"]
  - id: by_name
    expression: open.file.name == "authorized_keys" && open.flags & O_WRONLY > 0
  - id: glob_inner_star
    expression: open.file.path =~ "/home/*/.ssh/id_*"
  - id: glob_leading_star
    expression: open.file.path =~ "*/.aws/credentials"
  - id: prefix_and_flags
    expression: open.file.path =~ "/var/log/*" && open.flags & O_TRUNC > 0
  - id: no_gate
    expression: open.file.uid == 1234
  - id: either_field
    expression: open.file.path == "/tmp/a" || process.file.name == "evil"
  - id: negated
    expression: open.file.path != "/etc/passwd" && process.uid == 999
  - id: exec_name
    expression: exec.file.name in ["nc", "ncat"] || exec.comm == "socat"
  - id: exec_args
    expression: exec.args =~ "*stratum+tcp://*"
"""


def ruleset(tmp_path: Path) -> RuleSet:
    p = tmp_path / "p.policy"
    p.write_text(POLICY)
    ps = load_policies([p])
    assert ps.errors == []
    return RuleSet(ps.rules)


def events() -> list:
    from secl_events import event, process

    out = [
        open_event(p, f)
        for p in (
            "/etc/shadow", "/etc/gshadow", "/etc/passwd", "/home/u/.ssh/id_rsa", "/home/u/.ssh/known_hosts",
            "/root/.aws/credentials", "/home/u/.aws/credentials", "/var/log/syslog", "/var/logs", "/tmp/a",
            "/home/u/.ssh/authorized_keys", "/authorized_keys", "relative/authorized_keys", "",
        )
        for f in (["O_RDONLY"], ["O_WRONLY", "O_TRUNC"])
    ]  # fmt: skip
    out.append(event("open", file=None, proc=process("/usr/bin/evil")))
    out.append(event("open", proc=process(uid=999)))
    out.append(file_event("open", "/srv/x", dest=File(uid=1234)))
    from opencws.model.event import FileEvent

    unresolved = FileEvent(
        path="keys", name="authorized_keys", path_resolution_error="dentry missing", flags=["O_WRONLY"]
    )
    out.append(event("open", file=unresolved))
    bad_uid = event("open", file=None, proc=process("/usr/bin/cat", uid=999))
    out.append(bad_uid)
    out += [exec_event(p, a) for p in ("/usr/bin/nc", "/bin/ncat", "/usr/bin/socat", "/usr/bin/ls")
            for a in ([], ["-o", "stratum+tcp://pool:3333"])]  # fmt: skip
    return out


def test_gated_matching_equals_evaluating_every_rule(tmp_path: Path):
    rs = ruleset(tmp_path)
    for e in events():
        assert rs.match(e) == rs.match_all(e), (e.evt.name, e.file and e.file.path)


def test_matching_with_the_type_given_equals_matching_by_the_events_evt(tmp_path: Path):
    rs = ruleset(tmp_path)
    for e in events():
        assert rs.match(e, e.evt.name) == rs.match(e), (e.evt.name, e.file and e.file.path)


def test_the_matcher_of_a_type_matches_as_match_does_and_a_type_without_rules_has_none(tmp_path: Path):
    rs = ruleset(tmp_path)
    for e in events():
        assert rs.matcher(e.evt.name)(e) == rs.match(e), (e.evt.name, e.file and e.file.path)
    assert rs.matcher("chmod") is None and rs.match(events()[0], "chmod") == []


def test_matches_come_in_rule_order(tmp_path: Path):
    rs = ruleset(tmp_path)
    e = open_event("/tmp/a", ["O_WRONLY"], proc=None)
    assert rs.match(e) == rs.match_all(e)
    assert rs.match(open_event("/etc/shadow")) == ["exact_path"]
    assert rs.match(open_event("/home/u/.ssh/authorized_keys", ["O_WRONLY"])) == ["by_name"]
    assert rs.match(exec_event("/usr/bin/xmrig", ["--url", "stratum+tcp://pool"])) == ["exec_args"]


def test_rules_of_other_event_types_are_not_evaluated(tmp_path: Path):
    rs = ruleset(tmp_path)
    assert rs.event_types == ["exec", "open"]
    assert rs.match(file_event("unlink", "/etc/shadow")) == []


def test_default_and_compat_policies_match_like_full_evaluation(compat_dir: Path):
    from opencws.bench.secl_bench import realistic_mix

    compat = compat_dir / "datadog-default-1.4.3.policy"
    default = Path(__file__).resolve().parents[2] / "src" / "opencws" / "secl" / "policies" / "default.policy"
    mix = realistic_mix(3000)
    for path in (default, compat):
        if not path.exists():
            continue
        rs = RuleSet(load_policies([path]).rules)
        for e in mix:
            assert rs.match(e) == rs.match_all(e)


def test_generated_code_agrees_with_the_closures(compat_dir: Path):
    from opencws.bench.secl_bench import realistic_mix

    compat = compat_dir / "datadog-default-1.4.3.policy"
    default = Path(__file__).resolve().parents[2] / "src" / "opencws" / "secl" / "policies" / "default.policy"
    mix = realistic_mix(2000, matching=0.2)
    generated = 0
    for path in (default, compat):
        if not path.exists():
            continue
        for rule in load_policies([path]).rules:
            c = rule.compiled
            assert c is not None and c.closure is not None
            generated += c.fn is not c.closure
            for e in mix:
                if e.evt.name == c.event_type:
                    assert bool(c.fn(e)) == bool(c.closure(e)), (rule.id, e)
    assert generated > 0
