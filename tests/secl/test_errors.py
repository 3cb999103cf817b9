"""Type checking and load-time errors: each a precise message with line, column and caret."""

from __future__ import annotations

import pytest
from secl_events import open_event

from opencws.secl import SeclError, compile_expression


def error_of(expr: str) -> SeclError:
    with pytest.raises(SeclError) as exc:
        compile_expression(expr)
    return exc.value


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ('open.file.name == "a" AND open.flags > 0', "found 'AND'"),
        ('open.file.name == "a" OR open.flags > 0', "found 'OR'"),
        ('open.file.name IN ["a"]', "found 'IN'"),
        ('open.file.name NOT IN ["a"]', "found 'NOT'"),
        ('NOT (open.file.name == "a")', "unexpected '('"),
        ('open.file.name == "a" && open.file.in_upper_layer == TRUE', "TRUE"),
        ('open.file.name == "a" && open.file.in_upper_layer == False', "False"),
    ],
)
def test_keywords_in_another_case_are_errors_as_in_datadog(expr: str, message: str):
    assert message in error_of(expr).message
    assert compile_expression(expr.replace("AND", "and").replace("OR", "or").replace("NOT", "not")
                              .replace("IN", "in").replace("TRUE", "true").replace("False", "false"))


@pytest.mark.parametrize(
    ("expr", "message", "column"),
    [
        ('open.file.pth == "/x"', "unknown field 'open.file.pth' (did you mean 'open.file.path'?)", 1),
        ("open.file.path == 1", "type mismatch: 'open.file.path' is a string but this is an integer", 19),
        ('open.file.mode == "x"', "type mismatch: 'open.file.mode' is an integer but this is a string", 19),
        ('open.file.path > "/x"', "'>' compares integers, but 'open.file.path' is a string", 1),
        ('open.file.mode =~ "1*"', "'=~' matches strings, but 'open.file.mode' is an integer", 1),
        (
            'open.file.mode in ["a"]',
            "type mismatch: 'open.file.mode' is an integer but the list holds strings",
            19,
        ),
        ('open.file.path in ["/a", 1]', "array mixes strings and integers", 26),
        ('open.file.path == "/x" && open.file.mode', "'&&' needs a boolean condition", 27),
        ("!open.file.path", "'!' needs a boolean condition", 2),
        ('-open.file.path == "x"', "'-' needs an integer", 2),
        ("open.file.path & 1 == 0", "'&' needs integers", 1),
        ('open.file.path == "etc/passwd"', "invalid path 'etc/passwd'", 19),
        ('open.file.path in ["/etc/passwd", "shadow"]', "invalid path 'shadow'", 19),
        ('open.file.path =~ "etc/*"', "invalid path pattern 'etc/*'", 19),
        ('open.file.path =~ r"(x"', "invalid regular expression", 21),
        ('open.file.path == "/x" && exec.file.path == "/y"', "several event types", 27),
        ('process.file.path == "/bin/sh"', "names no event type", 1),
        ("open.file.mode", "a rule must be a boolean condition", 1),
        ("ptrace.request == 1", "'ptrace' events are not supported", 1),
        ("open.flags & O_NOPE > 0", "unknown macro or constant 'O_NOPE'", 14),
        ("open.flags in ${process.pid}", "a variable cannot be used as a list", 15),
        ('open.file.path == "${process.nope}"', "unknown variable", 20),
        ("process.pid == ${process.ancestors.pid} && open.flags > 0", "several values", 16),
    ],
)
def test_type_errors_are_precise(expr: str, message: str, column: int):
    e = error_of(expr)
    assert message in e.message
    assert (e.line, e.column) == (1, column)
    assert e.caret.index("^") == column - 1


def test_error_format_names_file_rule_line_column_with_caret():
    e = error_of('open.file.path == "/x"\n&& open.file.pth == "/y"')
    e.located(file="p.policy", rule_id="my_rule")
    text = e.format()
    lines = text.splitlines()
    assert lines[0].startswith("p.policy, rule my_rule, line 2, column 4: unknown field 'open.file.pth'")
    assert lines[1] == '    && open.file.pth == "/y"'
    assert lines[2] == "       " + "^" * len("open.file.pth")


def test_unterminated_string_error():
    e = error_of('open.file.path == "/etc/shadow')
    assert e.message.startswith("unterminated string")
    assert e.column == 19


def test_no_recursion_error_for_hostile_input():
    for text in ["(" * 10_000, ")" * 10_000, "!" * 10_000, "-" * 10_000 + "1", "[" * 10_000, '"' * 10_001]:
        with pytest.raises(SeclError):
            compile_expression(text)


def test_huge_inputs_compile_and_evaluate_without_recursion_errors():
    from secl_events import open_event

    nested = "(" * 10_000 + 'open.file.path == "/x"' + ")" * 10_000
    assert compile_expression(nested).evaluate(open_event("/x"))
    term = 'open.file.path == "/etc/passwd" || '
    long = term * (100_000 // len(term)) + 'open.file.path == "/x"'
    rule = compile_expression(long)
    assert rule.evaluate(open_event("/x")) and not rule.evaluate(open_event("/y"))
    alternating = " && ".join(f'(open.file.path != "/a{i}" || open.flags > {i})' for i in range(3000))
    assert compile_expression(alternating).evaluate(open_event("/x"))


def test_a_variable_inside_a_pattern_is_an_error():
    e = error_of('open.file.path =~ ~"/proc/${process.pid}/*"')
    assert "not expanded inside patterns" in e.message
    assert e.column == 27
    e = error_of('open.file.path in [~"/proc/${process.pid}/*"]')
    assert "not expanded inside patterns" in e.message
    assert compile_expression('open.file.path == "/proc/${process.pid}/maps"').evaluate(open_event("/proc/4242/maps"))
