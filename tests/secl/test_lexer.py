"""Tokens: every literal kind, operators, keywords, and precise errors for malformed tokens."""

from __future__ import annotations

import pytest
from secl_events import file_event, open_event

from opencws.model.event import File
from opencws.secl import SeclError, compile_expression
from opencws.secl.lexer import (
    DURATION,
    EOF,
    IDENT,
    INT,
    INT64_MAX,
    OP,
    PATTERN,
    REGEX,
    STRING,
    VARIABLE,
    tokenize,
)


def ev(expr: str, e) -> bool:
    return compile_expression(expr).evaluate(e)


def error_of(expr: str) -> SeclError:
    with pytest.raises(SeclError) as exc:
        compile_expression(expr)
    return exc.value


def kinds(text: str) -> list[tuple[str, object]]:
    return [(t.kind, t.value) for t in tokenize(text) if t.kind != EOF]


def test_literals():
    assert kinds('"a\\"b\\\\c\\n"') == [(STRING, 'a"b\\c\n')]
    assert kinds('~"/etc/*"') == [(PATTERN, "/etc/*")]
    assert kinds('r"^a\\d+\\"x"') == [(REGEX, '^a\\d+"x')]
    assert kinds("42 0x1F 0o755 0b101") == [(INT, 42), (INT, 31), (INT, 0o755), (INT, 5)]
    assert kinds("10s 5m 2h 250ms") == [
        (DURATION, 10 * 10**9), (DURATION, 300 * 10**9), (DURATION, 7200 * 10**9), (DURATION, 250 * 10**6),
    ]  # fmt: skip
    assert kinds("${process.pid}") == [(VARIABLE, "process.pid")]
    assert kinds("true false") == [("true", "true"), ("false", "false")]


def test_identifiers_keywords_and_operators():
    toks = kinds("process.ancestors.file.name not in and or allin O_CREAT rename.file.path")
    assert toks == [
        (IDENT, "process.ancestors.file.name"), ("not", "not"), ("in", "in"), ("and", "and"), ("or", "or"),
        ("allin", "allin"), (IDENT, "O_CREAT"), (IDENT, "rename.file.path"),
    ]  # fmt: skip
    ops = [v for k, v in kinds("&& || == != <= >= =~ !~ < > ! & | ^ -") if k == OP]
    assert ops == ["&&", "||", "==", "!=", "<=", ">=", "=~", "!~", "<", ">", "!", "&", "|", "^", "-"]


@pytest.mark.parametrize("word", ["AND", "And", "OR", "NOT", "IN", "In", "ALLIN", "TRUE", "True", "FALSE"])
def test_keywords_are_lowercase_only_as_in_datadogs_grammar(word: str):
    """Datadog's grammar matches `and`, `or`, `not`, `in`, `allin` case-sensitively and `true`/`false` are
    lowercase constants: in another case the word is an identifier (and a rule using it fails to load)."""
    assert kinds(word) == [(IDENT, word)]
    assert kinds(word.lower()) == [(word.lower(), word.lower())]


def test_positions_are_character_offsets():
    toks = tokenize('a ==\n  "x"')
    assert [(t.pos, t.end) for t in toks] == [(0, 1), (2, 4), (7, 10), (10, 10)]


@pytest.mark.parametrize(
    ("text", "message", "pos"),
    [
        ('"abc', "unterminated string", 0),
        ('x == "abc\n"', "unterminated string", 5),
        ('~"abc', "unterminated string", 0),
        ("12kb", "unknown duration unit 'kb'", 2),
        ("9ab1", "invalid number", 0),
        ("${}", "invalid variable name", 0),
        ("${a", "unterminated variable", 0),
        ("a.", "invalid identifier", 0),
        ("a @ b", "unexpected character '@'", 2),
        ("a == 'x'", "double quotes", 5),
    ],
)
def test_malformed_tokens(text: str, message: str, pos: int):
    with pytest.raises(SeclError) as exc:
        tokenize(text)
    assert message in exc.value.message and exc.value.pos == pos


def test_leading_zero_integers_are_octal():
    e = file_event("chmod", "/etc/x", dest=File(mode=0o755))
    assert ev("chmod.file.destination.mode == 0755", e)
    assert ev("chmod.file.destination.mode == 493", e)
    assert tokenize("0")[0].value == 0
    assert tokenize("00017")[0].value == 0o17


@pytest.mark.parametrize("literal", ["08", "0759", "019"])
def test_leading_zero_with_8_or_9_is_a_precise_error(literal: str):
    e = error_of(f"open.flags == {literal}")
    assert "invalid octal number" in e.message and literal in e.message
    assert e.column == 15


@pytest.mark.parametrize(
    "literal", ["9223372036854775808", "1" * 5000, "0x8000000000000000", "07" * 40, "99999999999999999999d"]
)
def test_integer_literals_beyond_int64_are_a_precise_error(literal: str):
    e = error_of(f"open.flags == {literal}")
    assert "out of range" in e.message and "64-bit" in e.message
    assert e.column == 15
    assert len(e.message) < 200


def test_the_largest_int64_literal_is_accepted():
    assert ev(f"open.flags < {INT64_MAX}", open_event("/x"))


def test_hash_and_slash_comments_run_to_the_end_of_the_line():
    e = open_event("/etc/shadow")
    expr = (
        '# reads of the shadow file\nopen.file.path == "/etc/shadow" // the file\n'
        '  && open.file.name == "shadow#1" || open.file.name == "shadow" # last'
    )
    assert ev(expr, e)
    assert ev('open.file.name == "a//b" || open.file.path == "/etc/shadow"', e)  # `//` inside a string
    assert [t.kind for t in tokenize("a # b == c")][1:] == ["end of expression"]


@pytest.mark.parametrize("text", ["²", "open.flags == ²", "open.flags == 1²", "open.flags == ١٢", "open.flags == 2s²"])
def test_digits_other_than_ascii_are_a_precise_error_not_a_crash(text):
    with pytest.raises(SeclError):
        compile_expression(text)
