"""Variables: `${field}` is expanded in strings and is an operand; only a closed `${...}` is a variable (an
unclosed `${` is plain text); a string inside a list literal is taken literally, as Datadog does."""

from __future__ import annotations

import pytest
from secl_events import open_event

from opencws.secl import SeclError, compile_expression

PID = 4242  # the pid of the builders' process


def ev(expr: str, path: str) -> bool:
    return compile_expression(expr).evaluate(open_event(path))


def test_closed_variables_are_expanded_in_strings():
    assert ev('open.file.path == "/proc/${process.pid}/maps"', f"/proc/{PID}/maps")
    assert ev('open.file.path == "/proc/${process.pid}/${process.comm}"', f"/proc/{PID}/cat")
    assert not ev('open.file.path == "/proc/${process.pid}/maps"', "/proc/1/maps")


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("/proc/${process.pid}/maps/${str", f"/proc/{PID}/maps/${{str"),
        ("/proc/${pid/maps/${str", "/proc/${pid/maps/${str"),
        ("/tmp/${", "/tmp/${"),
    ],
)
def test_an_unclosed_variable_is_plain_text(value: str, path: str):
    expr = f'open.file.path == "{value}"'
    assert ev(expr, path)
    assert not ev(expr, "/tmp/other")


def test_an_unclosed_variable_in_a_pattern_is_plain_text():
    assert ev('open.file.path =~ "/tmp/${x*"', "/tmp/${xyz")
    with pytest.raises(SeclError, match="not expanded inside patterns"):
        compile_expression('open.file.path == ~"/proc/${process.pid}/*"')


def test_a_variable_is_an_operand_on_either_side():
    assert ev("open.file.uid == ${process.uid}", "/x")
    assert ev(f'${{process.pid}} in [1, {PID}] && open.file.path != ""', "/x")


def test_a_variable_inside_a_list_literal_is_taken_literally_with_a_warning():
    rule = compile_expression('open.file.path in ["/proc/${process.pid}/maps", "/etc/shadow"]')
    assert rule.evaluate(open_event("/proc/${process.pid}/maps"))  # Datadog's meaning: as written
    assert not rule.evaluate(open_event(f"/proc/{PID}/maps"))
    (w,) = rule.warnings
    assert "'${process.pid}' is not expanded inside a list" in w.message
    assert w.expression[w.pos : w.end] == "${process.pid}"


def test_a_bare_variable_is_not_a_list_item():
    with pytest.raises(SeclError, match="expected a literal value in the array"):
        compile_expression("open.file.uid in [${process.uid}, 0]")


def test_an_unknown_variable_in_a_string_points_at_it():
    with pytest.raises(SeclError) as exc:
        compile_expression('open.file.path == "/a/${process.nope}/b"')
    e = exc.value
    assert (
        "unknown variable '${process.nope}'" in e.message and e.expression[e.pos : e.end] == "${process.nope}"
    )


def test_a_macro_s_warning_is_reported_once_with_the_macro(tmp_path):
    from opencws.secl import load_policies

    p = tmp_path / "p.policy"
    p.write_text(
        "macros:\n  - id: maps\n    values: ['/proc/${process.pid}/maps']\n"
        "rules:\n  - id: r1\n    expression: open.file.path in maps\n"
        "  - id: r2\n    expression: open.file.path in maps && open.retval == -EACCES\n"
    )
    ps = load_policies([p])
    assert not ps.errors
    found = [(w.kind, w.rule_id, w.message.split(":")[0]) for w in ps.warnings]
    assert found == [
        (
            "macro",
            "maps",
            "'${process.pid}' is not expanded inside a list (as in Datadog, a list holds literal values)",
        ),
        ("rule", "r2", "'-EACCES' is 13"),
    ]
