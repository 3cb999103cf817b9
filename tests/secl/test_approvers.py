"""Flags approvers derived from `field & MASK <op> constant`: the kernel drops an event whose flags have no bit of
the approver's mask, so an approver is only ever derived from a comparison that requires such a bit."""

from __future__ import annotations

import itertools

import pytest
from secl_events import open_event

from opencws.model.names import OPEN_FLAGS
from opencws.secl import compile_expression

OPS = ["==", "!=", "<", "<=", ">", ">="]
MASKS = ["O_WRONLY", "O_WRONLY | O_RDWR", "O_CREAT", "O_CREAT | O_TRUNC"]
FLAG_SETS = [[access, *extra] for access in ("O_RDONLY", "O_WRONLY", "O_RDWR")
             for n in range(4) for extra in itertools.combinations(("O_CREAT", "O_TRUNC", "O_APPEND"), n)]
NARROWING = {(">", 0), ("!=", 0), (">=", 1)}
"""The comparisons rules use to require a bit: each must give an approver."""


def _value(names: list[str]) -> int:
    return sum(OPEN_FLAGS.get(n, 0) for n in names)


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("constant", [0, 1])
def test_a_flags_approver_never_drops_an_open_the_rule_matches(mask: str, op: str, constant: int):
    rule = compile_expression(f"open.flags & ({mask}) {op} {constant}")
    found = rule.approvers.get("open.flags", frozenset())
    assert all(a.kind == "flags" for a in found)
    if (op, constant) in NARROWING:
        assert found, "a comparison that requires a bit of the mask gives an approver"
    if not found:
        return
    approved = 0
    for a in found:
        approved |= a.value
    for names in FLAG_SETS:
        if rule.evaluate(open_event("/f", flags=names)):
            assert _value(names) & approved, f"{names} matches but the kernel would drop it"


def test_the_reported_case_greater_or_equal_zero_has_no_approver():
    assert "open.flags" not in compile_expression("open.flags & O_WRONLY >= 0").approvers
