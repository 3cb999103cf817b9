"""Tokens of SECL: identifiers, numbers, durations, strings, `~"patterns"`, `r"regexps"`, `${variables}`,
operators and punctuation. A single left-to-right scan; every token keeps its character offsets.

As in Datadog's lexer, `#` and `//` start a comment that runs to the end of the line (outside strings), and
integers follow Go's `strconv.ParseInt(s, 0, 64)`: a leading `0` means octal (`0755` is 493), and values
must fit in a signed 64-bit integer."""

from __future__ import annotations

import re
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

# Datadog's units exactly (Go's `time.ParseDuration` on what its lexer accepts): no `d`, `us` or `ns`.
DURATION_UNITS = {
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_UNIT_HINTS = {"d": " (write 24h for a day)"}

# Longest first so that `<=` wins over `<`.
_OPERATORS = ("&&", "||", "==", "!=", "<=", ">=", "=~", "!~", "<", ">", "!", "&", "|", "^", "-", "+")
_PUNCT = {"(": LPAREN, ")": RPAREN, "[": LBRACKET, "]": RBRACKET, ",": COMMA}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


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


_REGISTER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


_DIGITS = frozenset("0123456789")


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
        if c == "#" or (c == "/" and text.startswith("//", i)):
            nl = text.find("\n", i)
            i = n if nl < 0 else nl + 1
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
        if c in _DIGITS:  # ASCII only: '²'.isdigit() is true, and int() refuses it
            while i < n and (text[i].isalnum() or text[i] in "_µ"):
                i += 1
            word = text[start:i]
            out.append(_number(word, text, start, i))
            continue
        if _ident_start(c):
            while i < n and _ident_char(text[i]):
                i += 1
                # An iterator register inside a field name (`process.ancestors[A].file.name`, `[_]`), as in
                # Datadog's lexer where `[` and `]` are identifier characters. Only after a dotted name, so that
                # `x in[...]` stays an array.
                if i < n and text[i] == "[" and "." in text[start:i]:
                    close = text.find("]", i)
                    inner = text[i + 1 : close] if close > 0 else None
                    if inner == "":
                        raise SeclError(
                            "empty register '[]': write '[_]' or a register name such as '[A]'",
                            text,
                            i,
                            close + 1,
                        )
                    if inner is not None and _REGISTER_NAME.fullmatch(inner):
                        i = close + 1
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
                raise SeclError(
                    'strings are written in double quotes ("..."), not single quotes', text, start
                )
            raise SeclError(f"unexpected character '{c}'", text, start)
    out.append(Token(EOF, "", None, n, n))
    return out


INT64_MAX = 2**63 - 1


def _number(word: str, text: str, start: int, end: int) -> Token:
    prefix = word[:2].lower()
    if prefix in ("0x", "0o", "0b"):
        base = {"0x": 16, "0o": 8, "0b": 2}[prefix]
        digits = word[2:].replace("_", "").lstrip("0") or "0"
        if len(digits) > 64:
            raise _out_of_range(word, text, start, end)
        try:
            value = int(digits, base)
        except ValueError:
            raise SeclError(f"invalid number '{word}'", text, start, end) from None
        return _int_token(value, word, text, start, end)
    if word.isascii() and word.isdigit():
        if len(word) > 1 and word[0] == "0":  # octal, as Go's ParseInt with base 0
            bad = next((ch for ch in word if ch in "89"), None)
            if bad is not None:
                raise SeclError(
                    f"invalid octal number '{word}': a leading 0 means octal, and '{bad}' is not an octal "
                    "digit (write the number without its leading zeros)",
                    text,
                    start,
                    end,
                )
            octal = word.lstrip("0") or "0"
            return _int_token(int(octal, 8) if len(octal) <= 22 else INT64_MAX + 1, word, text, start, end)
        return _int_token(int(word, 10) if len(word) <= 20 else INT64_MAX + 1, word, text, start, end)
    digits = len(word) - len(word.lstrip("0123456789"))
    unit = word[digits:]
    if digits and unit in DURATION_UNITS:
        if digits > 20:
            raise _out_of_range(word, text, start, end)
        value = int(word[:digits]) * DURATION_UNITS[unit]
        if value > INT64_MAX:
            raise _out_of_range(word, text, start, end)
        return Token(DURATION, word, value, start, end)
    if digits and unit.isalpha():
        if digits > 20 or int(word[:digits]) > INT64_MAX:
            raise _out_of_range(word, text, start, end)  # whatever the unit
        raise SeclError(
            f"unknown duration unit '{_short(unit)}' in '{_short(word)}': durations take ms, s, m or h, as "
            f"Datadog's{_UNIT_HINTS.get(unit, '')}",
            text,
            start + digits,
            end,
        )
    raise SeclError(f"invalid number '{_short(word)}'", text, start, end)


def _short(word: str) -> str:
    return word if len(word) <= 40 else f"{word[:20]}...{word[-8:]}"


def _out_of_range(word: str, text: str, start: int, end: int) -> SeclError:
    return SeclError(
        f"integer '{_short(word)}' out of range: integers are signed 64-bit (at most {INT64_MAX})",
        text,
        start,
        end,
    )


def _int_token(value: int, word: str, text: str, start: int, end: int) -> Token:
    if value > INT64_MAX:
        raise _out_of_range(word, text, start, end)
    return Token(INT, word, value, start, end)


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
