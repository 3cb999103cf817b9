"""Tokens: every literal kind, operators, keywords, and precise errors for malformed tokens."""

from __future__ import annotations

import pytest

from opencws.secl import SeclError
from opencws.secl.lexer import DURATION, EOF, IDENT, INT, OP, PATTERN, REGEX, STRING, VARIABLE, tokenize


def kinds(text: str) -> list[tuple[str, object]]:
    return [(t.kind, t.value) for t in tokenize(text) if t.kind != EOF]


def test_literals():
    assert kinds('"a\\"b\\\\c\\n"') == [(STRING, 'a"b\\c\n')]
    assert kinds('~"/etc/*"') == [(PATTERN, "/etc/*")]
    assert kinds('r"^a\\d+\\"x"') == [(REGEX, '^a\\d+"x')]
    assert kinds("42 0x1F 0o755 0b101") == [(INT, 42), (INT, 31), (INT, 0o755), (INT, 5)]
    assert kinds("10s 5m 2h 1d 250ms 7us 9ns") == [
        (DURATION, 10 * 10**9), (DURATION, 300 * 10**9), (DURATION, 7200 * 10**9), (DURATION, 86400 * 10**9),
        (DURATION, 250 * 10**6), (DURATION, 7000), (DURATION, 9),
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
        ("12kb", "invalid number", 0),
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
