"""Iterator fields (`process.ancestors.*`) and list fields: ==, in, =~ if any value matches; !=, not in, !~
only if none does."""

from __future__ import annotations

import dataclasses

import pytest
from secl_events import NOW, entry, event, exec_event, open_event, process

from opencws.secl import compile_expression

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
