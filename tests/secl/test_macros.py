"""Macros: lists, values and sub-expressions, nested; cycles and misuse are precise errors."""

from __future__ import annotations

import pytest
from secl_events import exec_event, open_event

from opencws.secl import SeclError, compile_expression
from opencws.secl.compiler import Macro, check_macro
from opencws.secl.parser import parse


def macros(**defs: str) -> dict[str, Macro]:
    return {k: Macro(k, v, parse(v).node) for k, v in defs.items()}


M = macros(
    SHELLS='["/bin/sh", "/usr/bin/bash", ~"/usr/bin/*sh"]',
    MORE_SHELLS="SHELLS",
    WRITE_FLAGS="O_CREAT|O_TRUNC|O_RDWR|O_WRONLY",
    IS_SHELL="exec.file.path in SHELLS",
    INTERACTIVE_SHELL='IS_SHELL && exec.args_flags in ["i"]',
)


def ev(expr: str, event, m=M) -> bool:
    return compile_expression(expr, m).evaluate(event)


def test_list_macro_in_an_in_operator():
    assert ev("exec.file.path in SHELLS", exec_event("/usr/bin/bash"))
    assert ev("exec.file.path in SHELLS", exec_event("/usr/bin/zsh"))  # pattern member
    assert not ev("exec.file.path in SHELLS", exec_event("/usr/bin/cat"))
    assert ev("exec.file.path not in SHELLS", exec_event("/usr/bin/cat"))


def test_a_macro_naming_a_list_macro_is_a_list():
    assert ev("exec.file.path in MORE_SHELLS", exec_event("/bin/sh"))


def test_value_macro_is_an_integer_expression():
    assert ev("open.flags & WRITE_FLAGS > 0", open_event("/x", ["O_WRONLY"]))
    assert ev("open.flags & (WRITE_FLAGS) > 0", open_event("/x", ["O_TRUNC", "O_RDONLY"]))
    assert not ev("open.flags & WRITE_FLAGS > 0", open_event("/x", ["O_RDONLY"]))


def test_expression_macros_nest():
    assert ev("INTERACTIVE_SHELL", exec_event("/usr/bin/bash", ["-i"]))
    assert not ev("INTERACTIVE_SHELL", exec_event("/usr/bin/bash", ["-c", "ls"]))
    assert ev('INTERACTIVE_SHELL || exec.file.name == "cat"', exec_event("/usr/bin/cat"))


def test_expression_macro_gives_its_event_type():
    assert compile_expression("IS_SHELL", M).event_type == "exec"


def test_unknown_macro_is_a_located_error():
    with pytest.raises(SeclError) as exc:
        compile_expression("exec.file.path in SHELS", M)
    e = exc.value
    assert "unknown macro 'SHELS'" in e.message and "did you mean 'SHELLS'" in e.message
    assert (e.line, e.column) == (1, 19)
    assert e.caret == " " * 18 + "^^^^^"


def test_unknown_identifier_is_a_located_error():
    with pytest.raises(SeclError) as exc:
        compile_expression('exec.file.path == "/x" && NOT_A_MACRO', M)
    assert "unknown macro or constant 'NOT_A_MACRO'" in exc.value.message
    assert exc.value.column == 27


def test_cyclic_macros_are_an_error():
    cyc = macros(A='B && exec.file.name == "x"', B="C", C="A")
    with pytest.raises(SeclError) as exc:
        check_macro(cyc["A"], cyc)
    assert "cyclic macro" in str(exc.value)
    assert "A → B → C → A" in str(exc.value)
    with pytest.raises(SeclError, match="cyclic macro"):
        compile_expression("A", cyc)


def test_self_referencing_macro_is_an_error():
    cyc = macros(SELF='SELF || exec.file.name == "x"')
    with pytest.raises(SeclError, match="cyclic macro: SELF → SELF"):
        check_macro(cyc["SELF"], cyc)


def test_a_list_macro_where_a_value_is_expected_is_an_error():
    with pytest.raises(SeclError, match="a list can only be used with 'in'"):
        compile_expression("exec.file.path == SHELLS", M)


def test_a_value_macro_after_in_is_an_error():
    with pytest.raises(SeclError, match="not a list"):
        compile_expression("open.flags in WRITE_FLAGS", M)


def test_an_error_inside_a_macro_names_the_macro():
    bad = macros(BAD="exec.file.path == 1")
    with pytest.raises(SeclError) as exc:
        compile_expression('BAD && exec.file.name == "x"', bad)
    assert "in macro 'BAD'" in exc.value.message and "type mismatch" in exc.value.message
    assert exc.value.column == 1


def test_macro_fields_must_agree_with_the_rule_event_type():
    with pytest.raises(SeclError, match="several event types"):
        compile_expression('open.file.path == "/x" && IS_SHELL', M)


def _check(tmp_path, text: bytes | str, name: str = "p.policy"):
    from opencws.secl import load_policies

    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return load_policies([p])


@pytest.mark.parametrize(
    ("values", "what"),
    [
        ("[{a: 1}]", "a mapping"),
        ('["x", null]', "null"),
        ("[1.5]", "a number with a fraction"),
        ("[[1]]", "a list"),
    ],
)
def test_macro_values_accept_strings_integers_and_booleans_only(tmp_path, values: str, what: str):
    ps = _check(
        tmp_path,
        f"macros:\n  - id: m\n    values: {values}\nrules:\n  - id: r\n    expression: open.file.name in m\n",
    )
    first, second = ps.errors
    assert first.kind == "macro" and "`values` item" in first.message and what in first.message
    assert first.file_line == 3
    assert "macro 'm' has an error (reported with the macro)" in second.message
    assert "__line" not in first.format()


def test_a_rule_using_a_broken_macro_through_another_macro_names_the_chain(tmp_path):
    ps = _check(
        tmp_path,
        "macros:\n  - id: bad\n    expression: open.file.nope == 1\n"
        '  - id: outer\n    expression: open.file.name == "x" && bad\n'
        '  - id: ok\n    expression: open.file.name == "x" && outer\n'
        "rules:\n  - id: r\n    expression: outer\n",
    )
    messages = [e.message for e in ps.errors]
    assert messages[0].startswith("unknown field 'open.file.nope'")
    assert messages[1:] == [
        "macro 'bad' has an error (reported with the macro)",
        "macro 'outer' has an error (reported with the macro)",
        "macro 'outer' has an error (reported with the macro)",
    ]


def test_macros_expanding_beyond_the_depth_limit_are_a_precise_error():
    """Each macro is shallow, their expansion is not: the compiler's own limit, not Python's recursion limit."""
    chain = {"m0": "!" * 10 + "open.file.in_upper_layer"}
    for i in range(1, 40):
        chain[f"m{i}"] = "!" * 10 + f"m{i - 1}"
    m = macros(**chain)
    assert compile_expression("m1", m)  # 20 levels: fine
    with pytest.raises(SeclError, match="nested too deeply once macros are expanded"):
        compile_expression("m39", m)
