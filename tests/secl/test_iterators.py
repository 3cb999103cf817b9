"""Iterator fields (`process.ancestors.*`) and list fields: ==, in, =~ if any value matches; !=, not in, !~
only if none does."""

from __future__ import annotations

import dataclasses

import pytest
from secl_events import NOW, entry, event, exec_event, open_event, process

from opencws.secl import SeclError, compile_expression
from opencws.secl.parser import parse

# cat ← bash ← sshd ← init
EVENT = open_event("/etc/shadow")
CHAIN = exec_event(
    "/usr/bin/cat", ancestors=[("/usr/bin/bash", 300), ("/usr/sbin/sshd", 200), ("/sbin/init", 1)]
)
ORPHAN = exec_event("/usr/bin/cat", ancestors=[])


def ev(expr: str, event=CHAIN) -> bool:
    return compile_expression(expr).evaluate(event)


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ('process.ancestors.file.path == "/usr/sbin/sshd"', True),
        ('process.ancestors.file.path == "/usr/bin/cat"', False),  # never the process itself
        ('process.ancestors.file.path != "/usr/sbin/sshd"', False),  # one ancestor is sshd
        ('process.ancestors.file.path != "/usr/bin/python3"', True),  # none is python3
        ('process.ancestors.file.name in ["sshd", "nginx"]', True),
        ('process.ancestors.file.name not in ["sshd", "nginx"]', False),
        ('process.ancestors.file.name not in ["nginx", "httpd"]', True),
        ('process.ancestors.file.name =~ "ssh*"', True),
        ('process.ancestors.file.name !~ "ssh*"', False),
        ('process.ancestors.file.name !~ "php*"', True),
        ("process.ancestors.pid == 1", True),
        ("process.ancestors.pid > 250", True),
        ("process.ancestors.pid > 1000", False),
        ('process.ancestors.name == "bash"', True),  # legacy alias of process.ancestors.comm
        ('process.ancestors.comm == "sshd"', True),
    ],
)
def test_ancestor_semantics(cond: str, expected: bool):
    assert ev(f'exec.file.name == "cat" && {cond}') is expected


def test_without_ancestors_equality_is_false_and_inequality_true():
    assert not ev('exec.file.name == "cat" && process.ancestors.file.name == "bash"', ORPHAN)
    assert ev('exec.file.name == "cat" && process.ancestors.file.name != "bash"', ORPHAN)
    assert ev('exec.file.name == "cat" && process.ancestors.file.name not in ["bash"]', ORPHAN)


def test_parent_is_the_nearest_ancestor():
    assert ev(
        'exec.file.name == "cat" && process.parent.file.path == "/usr/bin/bash" && process.parent.pid == 300'
    )


def test_list_fields_have_the_same_semantics():
    e = exec_event("/usr/bin/bash", ["-i", "-l"])
    assert ev('exec.argv == "-l"', e)
    assert not ev('exec.argv != "-l"', e)
    assert ev('exec.argv != "-c"', e)
    assert ev('exec.argv not in ["-c", "--norc"]', e)
    assert ev('exec.argv =~ "-*"', e)
    assert not ev('exec.argv !~ "-*"', e)


def test_compat_style_exclusion_of_package_manager_ancestors():
    expr = 'open.file.path == "/etc/shadow" && process.ancestors.file.path not in ["/usr/bin/dpkg", "/usr/bin/apt"]'
    assert compile_expression(expr).evaluate(EVENT)
    from secl_events import event, process

    from opencws.model.event import FileEvent

    via_dpkg = event(
        "open",
        file=FileEvent(path="/etc/shadow", name="shadow"),
        proc=process("/usr/bin/cp", ancestors=[("/bin/sh", 50), ("/usr/bin/dpkg", 40), ("/sbin/init", 1)]),
    )
    assert not compile_expression(expr).evaluate(via_dpkg)


def test_parent_falls_back_to_the_nearest_ancestor():
    import dataclasses

    e = exec_event("/usr/bin/cat", ancestors=[("/usr/bin/bash", 300), ("/sbin/init", 1)])
    e = dataclasses.replace(e, process=dataclasses.replace(e.process, parent=None))
    assert ev('exec.file.name == "cat" && process.parent.file.name == "bash"', e)


def test_a_duration_compared_with_an_iterator_date_is_the_age_of_each_ancestor():
    old = dataclasses.replace(entry("/usr/sbin/sshd", 200), exec_time=NOW - 3600 * 10**9)
    young = dataclasses.replace(entry("/usr/bin/bash", 300), exec_time=NOW - 10**9)
    proc = dataclasses.replace(process("/usr/bin/curl"), parent=young, ancestors=[young, old])
    e = event("exec", proc=proc)
    assert ev('exec.file.name == "curl" && process.ancestors.created_at > 5s', e)  # sshd: one hour
    assert ev('exec.file.name == "curl" && process.ancestors.created_at < 5s', e)  # bash: one second
    assert not ev('exec.file.name == "curl" && process.ancestors.created_at > 2h', e)
    orphan = event("exec", proc=dataclasses.replace(proc, parent=None, ancestors=[]))
    assert not ev('exec.file.name == "curl" && process.ancestors.created_at > 5s', orphan)


@pytest.mark.parametrize("expr", ["process.ancestors.file.name == exec.file.name",
                                  "exec.file.name == process.ancestors.file.name"])
def test_an_iterator_compared_with_another_field_holds_if_any_value_equals_it(expr: str):
    same = exec_event("/usr/bin/bash", ancestors=[("/usr/bin/bash", 300), ("/sbin/init", 1)])
    other = exec_event("/usr/bin/cat", ancestors=[("/usr/bin/bash", 300), ("/sbin/init", 1)])
    assert ev(expr, same) and not ev(expr, other)
    negated = expr.replace("==", "!=")
    assert not ev(negated, same) and ev(negated, other)


# --- Iterator syntax: `[_]` (7.33: each use independent) and registers (`[A]`: the same ancestor) -------------


def test_underscore_is_the_iterator_and_each_use_is_independent():
    assert ev('exec.file.name == "cat" && process.ancestors[_].file.name == "sshd"')
    # sshd is pid 200, bash is 300: two different ancestors satisfy the two conditions.
    assert ev(
        'exec.file.name == "cat" && process.ancestors[_].file.name == "sshd" && process.ancestors[_].pid == 300'
    )
    assert not ev('exec.file.name == "cat" && process.ancestors[_].file.name != "sshd"')


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ('process.ancestors[A].file.name == "sshd" && process.ancestors[A].pid == 200', True),
        ('process.ancestors[A].file.name == "sshd" && process.ancestors[A].pid == 300', False),
        ('process.ancestors[A].name == "bash" && process.ancestors[A].uid == 0', True),  # legacy name
        (
            'process.ancestors[A].file.name == "sshd" && (process.ancestors[A].pid == 1 || process.ancestors[A].pid == 200)',
            True,
        ),
        (
            '!(process.ancestors[A].file.name == "sshd" && process.ancestors[A].pid == 200)',
            False,
        ),  # no such ancestor
        ('!(process.ancestors[A].file.name == "sshd" && process.ancestors[A].pid == 300)', True),
        (
            'process.ancestors[A].comm == "bash" && process.ancestors[B].comm == "init" && process.ancestors[A].pid > process.ancestors[B].pid',
            True,
        ),
        (
            'process.ancestors[A].comm == "bash" && process.ancestors[B].comm == "init" && process.ancestors[A].pid < process.ancestors[B].pid',
            False,
        ),
        (
            'process.ancestors[B].comm == "init" && process.ancestors[A].comm == "bash"'
            " && process.ancestors[A].pid > process.ancestors[B].pid",
            True,
        ),
        ('exec.pid == 4242 && process.ancestors[B].comm == "init" && process.ancestors[B].pid == 1', True),
        ('exec.pid == 1 && process.ancestors[B].comm == "init" && process.ancestors[B].pid == 1', False),
        ('200 in process.ancestors[A].pid && process.ancestors[A].comm == "sshd"', True),
        (
            'process.ancestors[A].file.path in ["/usr/sbin/sshd", "/x"] && process.ancestors[A].pid - 100 == 100',
            True,
        ),
        (
            'process.ancestors[A].comm == "sshd" && process.ancestors.comm == "bash"',
            True,
        ),  # plain stays "any"
    ],
)
def test_a_register_binds_every_condition_to_the_same_ancestor(cond: str, expected: bool):
    assert ev(f'exec.file.name == "cat" && {cond}') is expected


def test_a_register_over_no_ancestors_is_false():
    assert not ev('exec.file.name == "cat" && process.ancestors[A].pid != 5', ORPHAN)
    # The register is quantified at the smallest condition holding all its uses: here `... || true` is true.
    assert ev('exec.file.name == "cat" && (process.ancestors[A].pid == 5 || true)', ORPHAN)


def test_a_register_on_a_list_field_of_each_ancestor():
    from secl_events import event, process

    from opencws.model.event import ProcessCacheEntry

    git = ProcessCacheEntry(pid=50, comm="git", args=["clone", "--recursive", "https://x"])
    import dataclasses

    e = event("exec", proc=process("/bin/sh", ancestors=[]))
    ancestors = [git, ProcessCacheEntry(pid=1, comm="init", args=["clone"])]
    e = dataclasses.replace(e, process=dataclasses.replace(e.process, ancestors=ancestors))
    expr = (
        'exec.comm == "sh" && process.ancestors[A].comm == "git" && process.ancestors[A].argv in ["clone"]'
        ' && process.ancestors[A].args_flags in ["recursive"]'
    )
    assert compile_expression(expr).evaluate(e)
    assert not compile_expression(expr.replace('"git"', '"init"')).evaluate(e)


def test_registers_in_macros_are_shared_with_the_rule():
    from opencws.secl.compiler import Macro

    body = 'process.ancestors[A].file.name == "sshd"'
    macros = {"from_sshd": Macro("from_sshd", body, parse(body).node)}
    rule = compile_expression(
        'exec.file.name == "cat" && from_sshd && process.ancestors[A].pid == 200', macros
    )
    assert rule.evaluate(CHAIN)
    rule = compile_expression(
        'exec.file.name == "cat" && from_sshd && process.ancestors[A].pid == 300', macros
    )
    assert not rule.evaluate(CHAIN)


def test_generated_code_and_closures_agree_with_registers():
    expr = 'exec.file.name == "cat" && process.ancestors[A].comm == "sshd" && process.ancestors[A].pid == 200'
    rule = compile_expression(expr)
    for e in (CHAIN, ORPHAN, EVENT):
        assert rule.fn(e) == rule.closure(e)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ('process.ancestors[].file.name == "x"', "empty register '[]'"),
        (
            'exec.file[A].name == "x"',
            "'[A]' can only follow an iterator (process.ancestors), not 'exec.file'",
        ),
        ('process.ancestors.file[A].name == "x"', "can only follow an iterator"),
        ('process.ancestors[A].nope == "x"', "unknown field 'process.ancestors.nope'"),
    ],
)
def test_register_errors(expr: str, message: str):
    with pytest.raises(SeclError) as exc:
        compile_expression(f'exec.file.name == "cat" && {expr}')
    assert message in exc.value.message


def test_a_rule_set_gives_the_same_answers_with_registers():
    from opencws.secl import Rule, RuleSet

    exprs = {
        "same": 'exec.file.name == "cat" && process.ancestors[A].comm == "sshd" && process.ancestors[A].pid == 200',
        "other": 'exec.file.name == "cat" && process.ancestors[A].comm == "sshd" && process.ancestors[A].pid == 300',
    }
    rules = []
    for rid, expr in exprs.items():
        c = compile_expression(expr)
        rules.append(Rule(rid, expr, event_type=c.event_type, compiled=c))
    rs = RuleSet(rules)
    assert rs.match(CHAIN) == rs.match_all(CHAIN) == ["same"]


def test_partial_evaluation_keeps_the_other_conditions_of_a_register_rule(tmp_path):
    from opencws.secl import RuleSet, load_policies

    p = tmp_path / "p.policy"
    p.write_text(
        "rules:\n  - id: r\n    expression: >-\n"
        '      open.file.path == "/etc/shadow" && process.ancestors[A].comm == "sshd" && process.ancestors[A].uid == 0\n'
    )
    ps = load_policies([p])
    assert not ps.errors
    rs = RuleSet(ps.rules)
    assert not rs.could_match("open", "open.file.path", "/tmp/x")
    assert rs.could_match("open", "open.file.path", "/etc/shadow")
    assert [a.value for a in rs.approvers("open", "open.file.path") or []] == ["/etc/shadow"]


def test_todays_datadog_register_rule_loads(compat_dir):
    from opencws.secl import load_policies

    ps = load_policies([compat_dir / "datadog-default-1.69.3.policy"])
    assert "git_cve_2025_48384" in {r.id for r in ps.rules}
