"""Tokens of SECL: identifiers, numbers, durations, strings, `~"patterns"`, `r"regexps"`, `${variables}`,
operators and punctuation. A single left-to-right scan; every token keeps its character offsets."""

from __future__ import annotations

from dataclasses import dataclass

from opencws.secl.errors import SeclError

# Token kinds.
IDENT = "identifier"
INT = "integer"
DURATION = "duration"
STRING = "string"
PATTERN = "pattern"
REGEX = "regular expression"
VARIABLE = "variable"
OP = "operator"
LPAREN = "("
RPAREN = ")"
LBRACKET = "["
RBRACKET = "]"
COMMA = ","
EOF = "end of expression"

KEYWORDS = {"and", "or", "not", "in", "true", "false", "allin"}

DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
    "d": 86400 * 1_000_000_000,
}

# Longest first so that `<=` wins over `<`.
_OPERATORS = ("&&", "||", "==", "!=", "<=", ">=", "=~", "!~", "<", ">", "!", "&", "|", "^", "-")
_PUNCT = {"(": LPAREN, ")": RPAREN, "[": LBRACKET, "]": RBRACKET, ",": COMMA}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "0": "\0"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str  # source text (operators, identifiers, keywords)
    value: object  # decoded value: int for numbers/durations, str for strings
    pos: int
    end: int

    def describe(self) -> str:
        if self.kind == EOF:
            return "the end of the expression"
        return f"'{self.text}'"


def _ident_start(c: str) -> bool:
    return c.isalpha() or c == "_"


def _ident_char(c: str) -> bool:
    return c.isalnum() or c in "_."


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens (ending with an EOF token); raise SeclError on a malformed token."""
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        start = i
        if c == '"' or (c in "~r" and i + 1 < n and text[i + 1] == '"'):
            kind = STRING if c == '"' else PATTERN if c == "~" else REGEX
            q = i if c == '"' else i + 1
            value, i = _read_string(text, q, start, raw=kind == REGEX)
            out.append(Token(kind, text[start:i], value, start, i))
            continue
        if c == "$" and text.startswith("${", i):
            close = text.find("}", i)
            if close < 0:
                raise SeclError("unterminated variable: missing '}'", text, start, i + 2)
            name = text[i + 2 : close].strip()
            if not name or not all(_ident_char(ch) for ch in name):
                raise SeclError(f"invalid variable name '{name}'", text, start, close + 1)
            i = close + 1
            out.append(Token(VARIABLE, text[start:i], name, start, i))
            continue
        if c.isdigit():
            while i < n and (text[i].isalnum() or text[i] in "_µ"):
                i += 1
            word = text[start:i]
            out.append(_number(word, text, start, i))
            continue
        if _ident_start(c):
            while i < n and _ident_char(text[i]):
                i += 1
            word = text[start:i]
            if word.endswith("."):
                raise SeclError(f"invalid identifier '{word}'", text, start, i)
            if word in KEYWORDS:
                out.append(Token(word, word, word, start, i))
            else:
                out.append(Token(IDENT, word, word, start, i))
            continue
        if c in _PUNCT:
            out.append(Token(_PUNCT[c], c, c, start, i + 1))
            i += 1
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                out.append(Token(OP, op, op, start, i + len(op)))
                i += len(op)
                break
        else:
            if c == "=":
                raise SeclError("unexpected '=': did you mean '=='?", text, start)
            if c == "'":
                raise SeclError("strings are written in double quotes (\"...\"), not single quotes", text, start)
            raise SeclError(f"unexpected character '{c}'", text, start)
    out.append(Token(EOF, "", None, n, n))
    return out


def _number(word: str, text: str, start: int, end: int) -> Token:
    try:
        if word[:2].lower() in ("0x", "0o", "0b"):
            return Token(INT, word, int(word, 0), start, end)
        if word.isdigit():
            return Token(INT, word, int(word, 10), start, end)
    except ValueError:
        pass
    digits = len(word) - len(word.lstrip("0123456789"))
    unit = word[digits:]
    if digits and unit in DURATION_UNITS:
        return Token(DURATION, word, int(word[:digits]) * DURATION_UNITS[unit], start, end)
    raise SeclError(
        f"invalid number '{word}' (durations take one of the units {', '.join(DURATION_UNITS)})",
        text,
        start,
        end,
    )


def _read_string(text: str, q: int, start: int, *, raw: bool) -> tuple[str, int]:
    """Read a double-quoted string whose opening quote is at `q`; return (value, offset after it)."""
    buf: list[str] = []
    i, n = q + 1, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return "".join(buf), i + 1
        if c == "\n":
            break
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if raw:
                buf.append('"' if nxt == '"' else "\\" + nxt)
            else:
                buf.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        buf.append(c)
        i += 1
    raise SeclError("unterminated string: missing closing '\"'", text, start, q + 1)
