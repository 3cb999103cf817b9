"""Parsing: Datadog's grouping (&& and || equal, to the right), bit operators over comparisons, arrays."""

from __future__ import annotations

import random

import pytest

from opencws.secl import SeclError, ast
from opencws.secl.lexer import tokenize
from opencws.secl.parser import MAX_DEPTH, parse


def shape(node: ast.Node) -> str:
    """A compact, fully parenthesized rendering of a tree."""
    if isinstance(node, ast.Logical):
        sym = " && " if node.op == "and" else " || "
        return "(" + sym.join(shape(o) for o in node.operands) + ")"
    if isinstance(node, ast.Binary):
        return f"({shape(node.left)} {node.op} {shape(node.right)})"
    if isinstance(node, ast.Unary):
        return f"{node.op}{shape(node.operand)}"
    if isinstance(node, ast.InArray):
        return f"({shape(node.operand)} {'not in' if node.negated else 'in'} {shape(node.array)})"
    if isinstance(node, ast.ArrayLit):
        return "[" + ", ".join(shape(i) for i in node.items) + "]"
    if isinstance(node, ast.Ident):
        return node.name
    if isinstance(node, ast.IntLit):
        return str(node.value)
    if isinstance(node, ast.StrLit):
        return {"string": "", "pattern": "~", "regex": "r"}[node.kind] + repr(node.value)
    if isinstance(node, ast.BoolLit):
        return str(node.value).lower()
    if isinstance(node, ast.Variable):
        return "${" + node.name + "}"
    raise AssertionError(node)


def p(text: str) -> str:
    return shape(parse(text).node)


def test_and_then_or_groups_to_the_right():
    assert p("a && b || c") == "(a && (b || c))"


def test_or_then_and_groups_to_the_right():
    assert p("a || b && c") == "(a || (b && c))"


def test_long_mixed_chain_groups_to_the_right():
    assert p("a && b || c && d") == "(a && (b || (c && d)))"


def test_keywords_and_or_not_are_the_symbols():
    assert p("a and b or not c") == p("a && b || !c")


def test_parentheses_override_grouping():
    assert p("(a && b) || c") == "((a && b) || c)"


def test_same_operator_chains_are_flat():
    assert p("a && b && c && d") == "(a && b && c && d)"


def test_mixed_logic_without_parentheses_is_reported():
    assert parse("a && b || c").mixed_logic
    assert not parse("(a && b) || c").mixed_logic
    assert not parse("a && (b || c)").mixed_logic


def test_bit_operators_bind_tighter_than_comparisons():
    assert p("open.flags & O_CREAT > 0") == "((open.flags & O_CREAT) > 0)"


def test_bit_operators_group_to_the_right():
    assert p("a | b & c") == "(a | (b & c))"


def test_comparisons_bind_tighter_than_logic():
    assert p("a == 1 && b != 2") == "((a == 1) && (b != 2))"


def test_unary_binds_tightest():
    assert p("!a == b") == "(!a == b)"
    assert p("-1 < x") == "(-1 < x)"
    assert p("^x & 3") == "(^x & 3)"


def test_in_and_not_in_take_arrays_and_macros():
    assert p('x in ["a", ~"b*", r"c+"]') == "(x in ['a', ~'b*', r'c+'])"
    assert p("x not in MACRO") == "(x not in MACRO)"
    assert p("x in [1, -2, O_CREAT]") == "(x in [1, -2, O_CREAT])"


def test_in_binds_tighter_than_logic():
    assert p("x in [1] && y not in [2] || z") == "((x in [1]) && ((y not in [2]) || z))"


def test_array_is_an_operand_for_list_macros():
    assert p('["a", "b"]') == "['a', 'b']"


def test_durations_are_nanoseconds():
    node = parse("process.created_at > 5s").node
    assert isinstance(node, ast.Binary) and isinstance(node.right, ast.IntLit)
    assert node.right.value == 5_000_000_000 and node.right.duration
    assert parse("x > 2m").node.right.value == 120_000_000_000  # type: ignore[attr-defined]
    assert parse("x > 10ms").node.right.value == 10_000_000  # type: ignore[attr-defined]


def test_variable_is_an_operand():
    assert p("process.pid == ${process.pid}") == "(process.pid == ${process.pid})"


def test_ten_thousand_nested_parentheses_parse():
    text = "(" * 10_000 + 'open.file.path == "/x"' + ")" * 10_000
    assert p(text) == "(open.file.path == '/x')"


def test_hundred_thousand_character_expression_parses():
    term = 'open.file.path == "/etc/passwd" || '
    text = term * (100_000 // len(term)) + 'open.file.path == "/x"'
    assert len(text) >= 100_000
    node = parse(text).node
    assert isinstance(node, ast.Logical) and len(node.operands) == 100_000 // len(term) + 1


def test_deep_operator_nesting_is_a_precise_error_not_a_crash():
    text = "!" * 20_000 + "open.file.in_upper_layer"
    with pytest.raises(SeclError) as exc:
        parse(text)
    assert "nested too deeply" in exc.value.message
    e = exc.value
    assert e.line == 1 and text[e.pos] == "!"
    assert f"more than {MAX_DEPTH} levels" in e.message


def test_deep_alternating_logic_is_a_precise_error():
    text = "x" + "".join(f" && (a{i} || b{i}" for i in range(5000)) + ")" * 5000
    with pytest.raises(SeclError, match="nested too deeply"):
        parse(text)


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ('open.file.path == "/etc', "unterminated string", 19),
        ("open.file.path == ", "operand is missing", 19),
        ("(open.file.path == 1", "missing ')'", 1),
        ("open.file.path == 1)", "unbalanced ')'", 20),
        ("open.file.path 1", "expected an operator", 16),
        ("a in [1, 2", "missing ']'", 6),
        ("a in 1", "expected '[' or a list macro", 6),
        ("a in []", "empty array", 7),
        ("a = 1", "did you mean '=='", 3),
        ("a == 12abc", "unknown duration unit 'abc'", 8),
        ("a in [1] == true", "after the array", 10),
        ("a == ${process.pid", "unterminated variable", 6),
        ("a @ b", "unexpected character '@'", 3),
    ],
)
def test_syntax_errors_are_located(text: str, message: str, column: int):
    with pytest.raises(SeclError) as exc:
        parse(text)
    assert message in exc.value.message
    assert exc.value.line == 1
    assert exc.value.column == column


def test_error_on_a_later_line_has_its_line_and_caret():
    text = 'open.file.path == "/x"\n  && open.flags &&& 1'
    with pytest.raises(SeclError) as exc:
        parse(text)
    e = exc.value
    assert (e.line, e.column) == (2, 19)
    assert e.source_line == "  && open.flags &&& 1"
    assert e.caret == " " * 18 + "^"


def _mixed_reference(text: str) -> bool:
    levels: list[set[str]] = [set()]
    mixed = False
    for tok in tokenize(text):
        if tok.kind == "(":
            levels.append(set())
        elif tok.kind == ")":
            done = levels.pop()
            mixed = mixed or len(done) > 1
        elif tok.text in ("&&", "||"):
            levels[-1].add(tok.text)
    return mixed or len(levels[0]) > 1


def _random_expression(rng: random.Random, depth: int = 0) -> str:
    n = rng.randint(1, 4)
    parts = []
    for _ in range(n):
        if depth < 3 and rng.random() < 0.35:
            term = f"({_random_expression(rng, depth + 1)})"
        else:
            term = rng.choice("abcdefg")
        if rng.random() < 0.15:
            term = "!" + term
        parts.append(term)
    out = parts[0]
    for p in parts[1:]:
        out += f" {rng.choice(['&&', '||'])} {p}"
    return out


def test_mixed_logic_warning_on_a_parenthesised_same_operator_tail():
    assert parse("x && y || (z || w)").mixed_logic
    assert parse("x || y && (z && w)").mixed_logic
    assert not parse("x || (z || w)").mixed_logic


def test_mixed_logic_warning_agrees_with_a_per_parenthesis_level_reference():
    rng = random.Random(5)
    for _ in range(5000):
        text = _random_expression(rng)
        assert bool(parse(text).mixed_logic) == _mixed_reference(text), text
