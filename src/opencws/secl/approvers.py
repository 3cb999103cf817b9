"""Approvers and gates: what a rule requires of single fields, derived at compile time.

An *approver* is a value a field must have for a rule to match (exact value, glob pattern, regex, or a flag
mask of which one bit must be set): the probe turns them into in-kernel filters. A *gate* is a set of
(field, approver) pairs of which at least one must hold; `RuleSet` uses each rule's most selective gate to
skip rules cheaply. Both are necessary conditions only, never sufficient ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from opencws.secl.fields import REGISTRY


@dataclass(frozen=True, slots=True)
class Approver:
    """A value a field must have for a rule to match: "exact" value, glob "pattern", "regex", or "flags"
    (a mask of which at least one bit must be set)."""

    kind: str
    value: Any


def pattern_key(pattern: str) -> tuple[str, str] | None:
    """What a value must hold to match a glob: ("prefix", literal head) or, for a glob starting with `*`,
    ("substring", its longest literal part); None for `*` alone."""
    head = pattern.split("*", 1)[0]
    if head:
        return "prefix", head
    parts = [p for p in re.split(r"\*+", pattern) if p]
    return ("substring", max(parts, key=len)) if parts else None


def _pass_rate(a: Approver) -> float:
    """A rough share of events passing one gate pair: gates are chosen to let the fewest events through."""
    if a.kind == "flags":
        return 0.3
    if a.kind == "pattern":
        key = pattern_key(a.value)
        if key is None:
            return 1.0
        return min(0.5, 0.2 / len(key[1])) if key[0] == "prefix" else min(0.5, 0.4 / len(key[1]))
    return 0.001


def gate_score(gate: frozenset[tuple[str, Approver]]) -> float:
    return sum(_pass_rate(a) for _, a in gate) + 0.01 * len({n for n, _ in gate})


def leaf_gates(approvers: dict[str, frozenset[Approver]]) -> tuple[frozenset[tuple[str, Approver]], ...]:
    """The gate of a single comparison: its approvers, when a prefilter can test them cheaply."""
    if len(approvers) != 1:
        return ()
    ((name, values),) = approvers.items()
    f = REGISTRY.get(name)
    if f is None or f.multi or not values:
        return ()
    for a in values:
        if a.kind == "regex" or (a.kind == "pattern" and pattern_key(a.value) is None):
            return ()
        if a.kind == "exact" and not isinstance(a.value, str | int | bool):
            return ()
    return (frozenset((name, a) for a in values),)
