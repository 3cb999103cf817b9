"""Durations take exactly Datadog's units (ms, s, m, h); any other unit is a syntax error pointing at it."""

from __future__ import annotations

import pytest

from opencws.secl import SeclError, compile_expression
from opencws.secl.lexer import DURATION, tokenize


@pytest.mark.parametrize(
    ("text", "ns"),
    [("250ms", 250_000_000), ("10s", 10**10), ("5m", 300 * 10**9), ("2h", 7200 * 10**9), ("0s", 0)],
)
def test_datadog_units(text: str, ns: int):
    (tok, _) = tokenize(text)
    assert (tok.kind, tok.value) == (DURATION, ns)


@pytest.mark.parametrize(
    ("text", "unit"), [("1d", "d"), ("7us", "us"), ("9ns", "ns"), ("5µs", "µs"), ("3w", "w"), ("10ss", "ss")]
)
def test_other_units_are_errors_pointing_at_the_unit(text: str, unit: str):
    expr = f"process.created_at > {text}"
    with pytest.raises(SeclError) as exc:
        compile_expression(f'exec.file.name == "x" && {expr}')
    e = exc.value
    assert f"unknown duration unit '{unit}'" in e.message and "ms, s, m or h" in e.message
    digits = len(text) - len(unit)
    start = len('exec.file.name == "x" && process.created_at > ') + digits
    assert (e.pos, e.end) == (start, start + len(unit))


def test_a_day_suggests_hours():
    with pytest.raises(SeclError, match="write 24h for a day"):
        tokenize("1d")
