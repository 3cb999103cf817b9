"""A rule decided on a stored row's typed columns, before its event is parsed.

An event meets the rules of its type and agent rule id, and most of those do not match it: a new program in a
container is looked for on every `exec`, and most run on hosts. Parsing the stored event (about 10 us) was most
of what evaluating it cost. The row already holds, in typed columns, the values SECL reads for the fields
people filter on (`opencws.secl.sql.columns`; a test holds them to the field getters), so each rule's
condition is first evaluated on those alone (SECL's partial evaluation, as the probe's discarders are learned:
a field without a column could be anything). A row is parsed only for the rules it could still match, and
those still evaluate their whole condition on the event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from opencws.backend.store import tables
from opencws.secl import CompiledRule, SeclError
from opencws.secl.partial import partial_condition
from opencws.secl.sql import SEARCH_REGISTRY
from opencws.secl.sql.columns import FIELD_COLUMNS

RowTest = Callable[[Sequence[Any]], bool]
"""False: the rule cannot match the row's event, whatever its fields without a column hold."""

_INDEX = {name: i for i, name in enumerate(tables.COLUMN_NAMES)}


def column_fields(event_type: str) -> dict[str, int]:
    """The fields whose value a row of `event_type` holds in a column of one value (canonical name → the
    column's place in the row): those of every event type and those of `event_type` itself. An array column
    (the ancestors') is left out: its values come encoded from the compiled pass."""
    out = {}
    for name, column in FIELD_COLUMNS.items():
        f = SEARCH_REGISTRY.fields.get(name)
        if column.multi or f is None or f.event_type not in (None, event_type):
            continue
        out[name] = _INDEX[column.name]
    return out


def row_test(rule: CompiledRule, event_type: str) -> RowTest | None:
    """The test of `rule` on rows of `event_type`, or None when the columns decide nothing (every row is
    parsed). `rule` is compiled as detection compiles conditions (`compile_search` on the search registry)."""
    known = {name: i for name, i in column_fields(event_type).items() if name in rule.fields}
    if not known:
        return None
    try:
        decided = partial_condition(rule, frozenset(known), registry=SEARCH_REGISTRY, search=True)
    except SeclError:  # not expected of a rule that compiled; the row is then parsed, as before
        return None
    if decided is True:
        return None
    if decided is False:
        return _never
    return _Memo(decided, tuple(known), tuple(known.values()))


class _Memo:
    """The partial condition on a row's column values, remembered per distinct values while that pays (events
    repeat them: the same programs and containers). A test is kept per rule and event type, so at most `MAX`
    values each; when a full table served fewer lookups than it holds (values that rarely repeat, such as
    files' paths), the condition is evaluated on every row instead, keeping nothing."""

    MAX = 4096

    def __init__(self, decided: Callable[[dict[str, Any]], bool | None], names: tuple[str, ...],
                 places: tuple[int, ...]) -> None:  # fmt: skip
        self.decided, self.names = decided, names
        self.values = itemgetter(*places) if len(places) > 1 else (lambda row, i=places[0]: (row[i],))
        self.seen: dict[tuple[Any, ...], bool] | None = {}
        self.hits = 0

    def __call__(self, row: Sequence[Any]) -> bool:
        values = self.values(row)
        seen = self.seen
        if seen is not None:
            hit = seen.get(values)
            if hit is not None:
                self.hits += 1
                return hit
            if len(seen) >= self.MAX:
                if self.hits < len(seen):
                    self.seen = None
                else:
                    seen.clear()
                    self.hits = 0
        verdict = self.decided(dict(zip(self.names, values, strict=True))) is not False
        if self.seen is not None:
            self.seen[values] = verdict
        return verdict


def _never(row: Sequence[Any]) -> bool:
    return False
