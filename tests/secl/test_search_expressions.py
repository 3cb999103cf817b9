"""Search expressions (`compile_search`, `rules eval --expr`): an expression naming no event type applies to
every event, one naming an event type is false on events of other types, and `event_types` tells which event
types an expression can match. Rules in policies still need an event type."""

from __future__ import annotations

from pathlib import Path

import pytest
from secl_events import bpf_event, event, exec_event, open_event, process

from opencws.model.event import FileEvent
from opencws.secl import (
    EVENT_TYPES,
    SeclError,
    compile_expression,
    compile_search,
    event_types,
    load_policies,
)

CAT_OPEN = open_event("/etc/shadow")  # by /usr/bin/cat, uid 0
CAT_EXEC = exec_event("/usr/bin/cat")
LS_EXEC = exec_event("/usr/bin/ls")
CHMOD = event("chmod", file=FileEvent(path="/etc/shadow", name="shadow"), proc=process("/usr/bin/cat"))


def test_an_expression_without_event_type_applies_to_every_event():
    search = compile_search('process.file.name == "cat" && process.uid == 0')
    assert search.event_type is None and search.event_types is None
    assert search.evaluate(CAT_OPEN) and search.evaluate(CAT_EXEC) and search.evaluate(CHMOD)
    assert not search.evaluate(LS_EXEC)
    assert compile_search("true").evaluate(bpf_event("BPF_MAP_CREATE"))


def test_an_expression_naming_an_event_type_is_false_on_other_types():
    search = compile_search('open.file.path != "/nope"')
    assert search.event_type == "open" and search.event_types == frozenset({"open"})
    assert search.evaluate(CAT_OPEN)
    assert not search.evaluate(CAT_EXEC) and not search.evaluate(CHMOD)
    # The same holds for a rule's own evaluate().
    assert not compile_expression('exec.file.path != ""').evaluate(CAT_OPEN)


def test_several_event_types_each_condition_on_its_own_type():
    search = compile_search('open.file.path == "/etc/shadow" || exec.file.name == "cat"')
    assert search.event_types == frozenset({"open", "exec"})
    assert search.evaluate(CAT_OPEN) and search.evaluate(CAT_EXEC)
    assert not search.evaluate(LS_EXEC) and not search.evaluate(CHMOD)
    # A condition on open fields is false on an exec event, negated or not.
    assert not compile_search('open.file.path != "/x" || exec.file.name == "zzz"').evaluate(LS_EXEC)
    assert compile_search('!(open.file.path == "/x") && exec.file.name == "ls"').evaluate(LS_EXEC)


@pytest.mark.parametrize(
    ("expr", "types"),
    [
        ('process.file.name == "curl" && process.uid == 0', None),
        ('open.file.path == "/etc/shadow" && process.uid == 0', {"open"}),
        ('open.file.path == "/etc/shadow" || exec.file.name == "cat"', {"open", "exec"}),
        ("mkdir.retval == EACCES || rmdir.retval == EACCES || process.uid == 0", {"mkdir", "rmdir"}),
        ('open.file.path == "/etc/shadow" && false', set()),
        ('open.filename == "/etc/shadow"', {"open"}),  # legacy names
    ],
)
def test_event_types_narrow_a_search(expr: str, types: set[str] | None):
    got = event_types(expr)
    assert got == (None if types is None else frozenset(types))
    if got is not None:
        assert got <= set(EVENT_TYPES)


def test_rules_still_need_one_event_type_with_the_same_error(tmp_path: Path):
    with pytest.raises(SeclError, match="the rule names no event type"):
        compile_expression('process.file.name == "curl"')
    with pytest.raises(SeclError, match="names several event types"):
        compile_expression('open.file.path == "/x" || exec.file.name == "y"')
    p = tmp_path / "p.policy"
    p.write_text('rules:\n  - id: no_type\n    expression: process.file.name == "curl"\n')
    (err,) = load_policies([p]).errors
    assert "the rule names no event type" in err.message and err.rule_id == "no_type"


def test_search_errors_are_precise():
    with pytest.raises(SeclError) as exc:
        compile_search('process.file.nme == "cat"')
    assert "unknown field 'process.file.nme'" in exc.value.message and exc.value.column == 1
