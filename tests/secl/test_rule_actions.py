"""Rule actions: `set` variables (scopes, inheritance, ttl, size, append, filter), silent rules, actions that
are accepted and not executed, and the load-time checks of all that."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from secl_events import NOW, entry, exec_event, open_event, process

from opencws.model.event import ContainerContext, Event
from opencws.secl import RuleSet, load_policies

SEC = 1_000_000_000


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.policy"
    p.write_text(text)
    return p


def ruleset(tmp_path: Path, text: str) -> RuleSet:
    ps = load_policies([write(tmp_path, text)])
    assert ps.errors == [], [e.format() for e in ps.errors]
    return RuleSet(ps.rules)


def at(e: Event, seconds: float) -> Event:
    return dataclasses.replace(e, date=NOW + int(seconds * SEC))


def child_of(parent: Event, path: str, pid: int, forked: float) -> Event:
    """An exec of `path` by a process forked from `parent`'s process `forked` seconds after NOW."""
    p = parent.process
    assert p is not None and p.executable is not None
    anc = [entry(p.executable.path or "", p.pid or 0, fork_time=p.fork_time), *(p.ancestors or [])]
    proc = dataclasses.replace(process(path, pid=pid), ancestors=anc, parent=anc[0], ppid=p.pid,
                               fork_time=NOW + int(forked * SEC))  # fmt: skip
    return dataclasses.replace(exec_event(path), process=proc, date=NOW + int((forked + 0.5) * SEC))


CORRELATION = """\
rules:
  - id: shell_context
    silent: true
    expression: exec.file.name == "bash" && ${process.ctx} == ""
    actions:
      - set: {name: ctx, scope: process, inherited: true, default_value: "", expression: '"shell_${process.pid}"'}
  - id: curl_in_shell
    expression: exec.file.name == "curl" && ${process.ctx} =~ "shell_*"
"""


def test_a_silent_rule_sets_an_inherited_process_variable_that_descendants_read(tmp_path: Path):
    ps = load_policies([write(tmp_path, CORRELATION)])
    assert ps.errors == []
    rs = RuleSet(ps.rules)
    bash = exec_event("/usr/bin/bash")
    bash = dataclasses.replace(bash, process=dataclasses.replace(bash.process, pid=500, fork_time=NOW - SEC))
    assert rs.match(bash) == []  # silent: no alert, but its action ran
    curl = child_of(bash, "/usr/bin/curl", 501, forked=2)
    assert rs.match(curl) == ["curl_in_shell"]
    lonely = exec_event("/usr/bin/curl")  # not under that shell
    assert rs.match(lonely) == []


def test_an_inherited_value_set_after_the_child_was_forked_is_not_seen(tmp_path: Path):
    rs = RuleSet(load_policies([write(tmp_path, CORRELATION)]).rules)
    bash = exec_event("/usr/bin/bash")
    bash = dataclasses.replace(bash, process=dataclasses.replace(bash.process, pid=600, fork_time=NOW - SEC),
                               date=NOW + 10 * SEC)  # fmt: skip
    rs.match(bash)  # the variable is set at NOW + 10 s
    early = child_of(bash, "/usr/bin/curl", 601, forked=5)  # forked at NOW + 5 s, before it was set
    assert rs.match(early) == []


def test_counters_lists_and_ttl_in_cgroup_scope(tmp_path: Path):
    text = """\
rules:
  - id: cred_read
    silent: true
    expression: open.file.path in ["/root/.aws/credentials", "/root/.ssh/id_rsa", "/etc/shadow"]
    actions:
      - set: {name: kinds, scope: cgroup, field: open.file.name, append: true, ttl: 600000000000}
      - set: {name: count, scope: cgroup, default_value: 0, expression: "${cgroup.count} + 1", ttl: 10m}
  - id: harvesting
    expression: open.file.path != "" && ${cgroup.count} >= 3 && "shadow" in ${cgroup.kinds}
"""
    ps = load_policies([write(tmp_path, text)])
    assert ps.errors == [], [e.format() for e in ps.errors]
    rs = RuleSet(ps.rules)
    c = "a" * 64

    def read(path: str, seconds: float, container: str = c) -> list[str]:
        return rs.match(at(open_event(path, container=container), seconds))

    assert read("/root/.aws/credentials", 0) == []
    assert read("/root/.ssh/id_rsa", 1) == []
    # the silent rule runs first: the rule after it sees the third kind at once
    assert read("/etc/shadow", 2) == ["harvesting"]
    assert read("/etc/hostname", 3) == ["harvesting"]
    assert read("/etc/hostname", 3, container="b" * 64) == []  # another cgroup: its own count
    assert read("/etc/hostname", 3 + 700) == []  # ten minutes later everything expired


def test_list_size_keeps_the_newest_values(tmp_path: Path):
    text = """\
rules:
  - id: remember
    silent: true
    expression: exec.file.name != ""
    actions:
      - set: {name: seen, field: exec.file.name, append: true, size: 2}
  - id: seen_before
    expression: exec.file.name == "probe" && "a" in ${seen}
"""
    rs = ruleset(tmp_path, text)
    for name in ("a", "b", "c"):
        rs.match(exec_event(f"/bin/{name}"))
    assert rs.match(exec_event("/bin/probe")) == []  # "a" left when "c" came
    rs2 = ruleset(tmp_path, text)  # a new rule set starts empty
    rs2.match(exec_event("/bin/a"))
    assert rs2.match(exec_event("/bin/probe")) == ["seen_before"]


def test_an_action_filter_decides_whether_it_runs_and_container_scope_needs_a_container(tmp_path: Path):
    text = """\
rules:
  - id: mark
    expression: exec.file.name == "nsenter"
    actions:
      - filter: process.uid == 0
        set: {name: marked, scope: container, value: true}
  - id: after_mark
    expression: exec.file.name == "sh" && ${container.marked}
"""
    rs = ruleset(tmp_path, text)
    c = "c" * 64
    user = exec_event("/usr/bin/nsenter", container=c, uid=1000)
    assert rs.match(user) == ["mark"]  # the rule fires; its action's filter is false
    assert rs.match(exec_event("/bin/sh", container=c)) == []
    assert rs.match(exec_event("/usr/bin/nsenter", container=c)) == ["mark"]
    assert rs.match(exec_event("/bin/sh", container=c)) == ["after_mark"]
    assert rs.match(exec_event("/bin/sh", container="d" * 64)) == []
    host = exec_event("/usr/bin/nsenter")
    rs.match(host)  # no container: nothing to set
    assert rs.match(exec_event("/bin/sh")) == []


def test_builtin_uuid4_gives_a_new_value_each_time(tmp_path: Path):
    text = """\
rules:
  - id: tag
    silent: true
    expression: exec.file.name != ""
    actions:
      - set: {name: key, scope: process, default_value: "", expression: '"k_${builtins.uuid4}"'}
  - id: tagged
    expression: exec.file.name == "x" && ${process.key} =~ "k_*-*-*-*-*"
"""
    rs = ruleset(tmp_path, text)
    e = exec_event("/bin/x")
    assert rs.match(e) == ["tagged"]


def test_actions_other_than_set_are_accepted_and_listed_as_not_executed(tmp_path: Path):
    text = """\
rules:
  - id: miner
    expression: exec.file.name == "xmrig"
    actions:
      - kill: {signal: SIGKILL}
      - hash: {}
"""
    ps = load_policies([write(tmp_path, text)])
    assert ps.errors == []
    (rule,) = ps.rules
    assert [a.kind for a in rule.not_executed] == ["kill", "hash"]
    assert "does not enforce" in rule.not_executed[0].reason
    assert RuleSet(ps.rules).match(exec_event("/tmp/xmrig")) == ["miner"]


def test_bad_actions_are_errors_of_their_rule(tmp_path: Path):
    text = """\
rules:
  - id: a
    expression: exec.file.name == "a"
    actions:
      - set: {name: v, value: 1}
  - id: b
    expression: exec.file.name == "b"
    actions:
      - set: {name: v, value: "text"}
  - id: c
    expression: exec.file.name == "c"
    actions:
      - set: {name: w, scope: planet, value: 1}
  - id: d
    expression: exec.file.name == "d" && ${nope} == 1
  - id: e
    expression: exec.file.name == "e"
    actions:
      - set: {name: x, value: 1, field: exec.file.name}
  - id: f
    expression: exec.file.name == "f" && ${v} == 1
"""
    ps = load_policies([write(tmp_path, text)])
    by_rule = {e.rule_id: e.message for e in ps.errors}
    assert "is a string here but an integer as set by rule a" in by_rule["b"]
    assert "`scope` must be one of global, process, container, cgroup" in by_rule["c"]
    assert "unknown variable '${nope}'" in by_rule["d"]
    assert "exactly one of `value`, `field` or `expression`" in by_rule["e"]
    assert [r.id for r in ps.rules] == ["a", "f"]


def test_variables_are_unknown_to_partial_evaluation(tmp_path: Path):
    """The kernel filters ask whether a rule could match: a variable may hold anything, so it could."""
    text = """\
rules:
  - id: r
    expression: open.file.path == "/etc/passwd" && ${process.flag}
    actions:
      - set: {name: flag, scope: process, value: true}
"""
    rs = ruleset(tmp_path, text)
    assert rs.could_match("open", "open.file.path", "/etc/passwd")
    assert not rs.could_match("open", "open.file.path", "/etc/hosts")


def test_container_of_the_event_or_of_its_process_is_the_container_scope(tmp_path: Path):
    text = """\
rules:
  - id: set
    silent: true
    expression: exec.file.name == "a"
    actions:
      - set: {name: seen, scope: container, value: true}
  - id: get
    expression: exec.file.name == "b" && ${container.seen}
"""
    rs = ruleset(tmp_path, text)
    c = "e" * 64
    a = exec_event("/bin/a", container=c)
    rs.match(dataclasses.replace(a, container=None))  # only the process says which container
    b = exec_event("/bin/b")
    b = dataclasses.replace(b, container=ContainerContext(id=c))
    assert rs.match(b) == ["get"]


SCOPE_FIELD = """\
rules:
  - id: su_marks_its_shell
    silent: true
    expression: exec.file.name == "su"
    actions:
      - set: {name: elevated, scope: process, value: true, scope_field: process.parent.pid}
  - id: recon_after_su
    expression: exec.file.name == "id" && ${process.elevated}
"""


def test_scope_field_sets_the_variable_of_the_process_it_names(tmp_path: Path):
    """`scope_field: process.parent.pid`: `su` marks the shell that ran it, not itself; the shell's later
    exec of `id` reads it; another shell does not."""
    rs = ruleset(tmp_path, SCOPE_FIELD)
    shell = exec_event("/usr/bin/bash")
    shell = dataclasses.replace(shell, process=dataclasses.replace(shell.process, pid=700, fork_time=NOW - SEC))
    su = child_of(shell, "/usr/bin/su", 701, forked=1)
    assert rs.match(su) == []
    assert rs.match(child_of(su, "/usr/bin/id", 702, forked=2)) == []  # su's own child: su is not marked
    same_shell = dataclasses.replace(shell, process=dataclasses.replace(
        shell.process, executable=dataclasses.replace(shell.process.executable, path="/usr/bin/id", name="id")))
    assert rs.match(same_shell) == ["recon_after_su"]
    other = exec_event("/usr/bin/id")
    other = dataclasses.replace(other, process=dataclasses.replace(other.process, pid=800, fork_time=NOW - SEC))
    assert rs.match(other) == []


def test_scope_field_naming_a_process_outside_the_event_asks_the_process_lookup(tmp_path: Path):
    ps = load_policies([write(tmp_path, SCOPE_FIELD)])
    rs = RuleSet(ps.rules)
    shell = entry("/usr/bin/bash", 900, fork_time=NOW - SEC)
    # the event names its parent's pid (900) but carries no ancestors with its fork time
    su = dataclasses.replace(exec_event("/usr/bin/su"), process=dataclasses.replace(
        process("/usr/bin/su", pid=901), ppid=900, parent=entry("/usr/bin/bash", 900), ancestors=[]))
    probe = dataclasses.replace(exec_event("/usr/bin/id"), process=dataclasses.replace(
        process("/usr/bin/id", pid=900), fork_time=NOW - SEC))  # fmt: skip
    rs.match(su)  # no lookup: the owner cannot be found, nothing is set
    assert rs.match(probe) == []
    ps.variables.store.process_lookup = {900: shell}.get  # the agent's process cache
    rs.match(su)
    assert rs.match(probe) == ["recon_after_su"]


def test_a_bad_scope_field_is_a_rule_error_and_one_of_a_missing_event_type_a_skip(tmp_path: Path):
    ps = load_policies([write(tmp_path, """\
rules:
  - id: not_a_pid
    expression: exec.file.name == "su"
    actions:
      - set: {name: a, scope: process, value: true, scope_field: process.file.path}
  - id: unknown
    expression: exec.file.name == "su"
    actions:
      - set: {name: b, scope: process, value: true, scope_field: process.nope}
  - id: cgroup_write_owner
    expression: exec.file.name == "su"
    actions:
      - set: {name: c, scope: process, value: true, scope_field: cgroup_write.pid}
""")])
    assert sorted(e.rule_id for e in ps.errors) == ["not_a_pid", "unknown"]
    assert any("must be a pid" in e.message for e in ps.errors)
    assert [(s.rule_id, s.group, s.subject) for s in ps.skipped] == [
        ("cgroup_write_owner", "event type not supported", "cgroup_write")]
