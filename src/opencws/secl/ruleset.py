"""A set of compiled rules, bucketed by event type, evaluated against events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opencws.secl import partial
from opencws.secl.compiler import Approver, CompiledRule
from opencws.secl.policy import Rule


class RuleSet:
    """`match(event)` returns the ids of the rules the event satisfies, in rule order.

    Only the rules of the event's type (`evt.name`) are evaluated; each is one call of its compiled closure.
    """

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: list[Rule] = [r for r in rules if r.compiled is not None and not r.disabled]
        self._buckets: dict[str | None, list[tuple[str, Any]]] = {}
        for r in self.rules:
            assert r.compiled is not None
            self._buckets.setdefault(r.compiled.event_type, []).append((r.id, r.compiled.fn))

    @property
    def event_types(self) -> list[str]:
        return sorted(t for t in self._buckets if t)

    def rules_for(self, event_type: str) -> list[Rule]:
        return [r for r in self.rules if r.event_type == event_type]

    def match(self, event: Any) -> list[str]:
        evt = event.evt
        bucket = self._buckets.get(evt.name if evt is not None else None)
        if not bucket:
            return []
        return [rid for rid, fn in bucket if fn(event)]

    def could_match(self, event_type: str, field: str | Mapping[str, Any], value: Any = None) -> bool:
        """Partial evaluation: could a rule of `event_type` match an event whose `field` is `value`?

        `field` may also be a mapping of several field values. Other fields are "could be anything"."""
        values = dict(field) if isinstance(field, Mapping) else {field: value}
        pairs = [(r.compiled, r.macros) for r in self.rules_for(event_type) if r.compiled is not None]
        return partial.could_match(pairs, event_type, values)

    def approvers(self, event_type: str, field: str) -> list[Approver] | None:
        """Values of `field` that every rule of `event_type` requires (their union), or None."""
        compiled: list[CompiledRule] = [
            r.compiled for r in self.rules_for(event_type) if r.compiled is not None
        ]
        return partial.approvers(compiled, event_type, field)

    def all_approvers(self, event_type: str) -> dict[str, list[Approver]]:
        """Every field of `event_type` for which each rule of that type has approvers."""
        fields: set[str] = set()
        for r in self.rules_for(event_type):
            if r.compiled is not None:
                fields.update(r.compiled.approvers)
        out = {}
        for f in sorted(fields):
            a = self.approvers(event_type, f)
            if a is not None:
                out[f] = a
        return out
