"""A value `in` a multi-valued field (an iterator or a list field): true when any value equals (or, for a
pattern or a regex on the left, matches) it; `not in`: when none does."""

from __future__ import annotations

import pytest
from secl_events import bpf_event, exec_event

from opencws.secl import SeclError, compile_expression

# cat ← bash(300) ← sshd(200) ← init(1), run as `ls -l -a --color=auto`
CHAIN = exec_event(
    "/usr/bin/ls",
    ["-ll", "-a", "--color=auto"],
    ancestors=[("/usr/bin/bash", 300), ("/usr/sbin/sshd", 200), ("/sbin/init", 1)],
)
ORPHAN = exec_event("/usr/bin/ls", [], ancestors=[])


def ev(cond: str, event=CHAIN) -> bool:
    return compile_expression(f'exec.file.name == "ls" && {cond}').evaluate(event)


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ("10 in process.ancestors.pid", False),
        ("200 in process.ancestors.pid", True),
        ("200 not in process.ancestors.pid", False),
        ("10 not in process.ancestors.pid", True),
        ('"-ll" in exec.argv', True),
        ('"-x" in exec.argv', False),
        ('"-x" not in exec.argv', True),
        ('~"ba*" in process.ancestors.comm', True),
        ('~"zs*" in process.ancestors.comm', False),
        ('~"ba*" not in process.ancestors.comm', False),
        ('r"^s+h" in process.ancestors.comm', True),
        ('r"^zz" not in process.ancestors.comm', True),
        ('"color" in exec.args_options', False),
        ('~"color=*" in exec.args_options', True),
        ('"/usr/sbin/sshd" in process.ancestors.file.path', True),
        ("process.pid in process.ancestors.pid", False),
        ("process.ppid in process.ancestors.pid", True),
        ('"sshd" in ${process.ancestors.comm}', True),
    ],
)
def test_any_value(cond: str, expected: bool):
    assert ev(cond) is expected


def test_no_values_is_false_and_not_in_true():
    assert not ev("1 in process.ancestors.pid", ORPHAN)
    assert ev("1 not in process.ancestors.pid", ORPHAN)
    assert not ev('~"*" in exec.argv', ORPHAN)


def test_helpers_in_a_bpf_event():
    e = bpf_event("BPF_PROG_LOAD", prog_type="BPF_PROG_TYPE_KPROBE", helpers=["BPF_OVERRIDE_RETURN"])
    assert compile_expression("BPF_OVERRIDE_RETURN in bpf.prog.helpers").evaluate(e)
    assert not compile_expression("BPF_SEND_SIGNAL in bpf.prog.helpers").evaluate(e)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ('"x" in exec.file.name', "'exec.file.name' is not a list"),
        ('"x" in ${process.pid}', r"'\$\{process.pid\}' does not"),
        ("exec.argv in exec.envs", "cannot compare two lists"),
        ("1 in exec.argv", "type mismatch"),
        ('"bin/sh" in process.ancestors.file.path', "must be absolute"),
    ],
)
def test_errors(expr: str, message: str):
    with pytest.raises(SeclError, match=message):
        compile_expression(expr)
