"""Partial evaluation: a rule's condition when only some fields of the event are known.

`partial_condition`: the condition compiled on the known fields (the others could be anything): decided
already, or a function of their values. The backend's detection runs it on a stored event's typed columns
before parsing the event; the two functions below use it for the probe's in-kernel filters.

`could_match`: given some field values of an event (e.g. `open.file.path="/tmp/x"`), could any rule still
match? Fields not given are "could be anything". A False answer lets the probe install a *discarder*.

`approvers`: for an event type and a field, the values that every rule of that type requires (the union of
each rule's requirement), or None when at least one rule does not constrain that field. The probe installs
them as *approvers*: events whose field has none of these values need not leave the kernel.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opencws.secl.compiler import Approver, CompiledRule, Compiler, Macro
from opencws.secl.fields import REGISTRY, Registry


def bind(values: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical field names → values; a path also gives its basename (`*.file.path` → `*.file.name`)."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        f = REGISTRY.get(name)
        if f is None:
            raise KeyError(f"unknown field '{name}'")
        canonical = f.canonical
        if f.type == "int" and isinstance(value, list | tuple) and not f.multi:
            value = _bits_from_names(canonical, value)  # flag names as in events → bits
        out[canonical] = value
    for name, value in list(out.items()):
        if name.endswith(".file.path") and isinstance(value, str):
            out.setdefault(name[: -len("path")] + "name", posixpath.basename(value))
    return out


def _bits_from_names(field: str, names_: list[str] | tuple[str, ...]) -> int:
    from opencws.model import names

    if field == "open.flags":
        return names.open_flag_bits(tuple(names_))
    if field == "unlink.flags":
        return names.unlink_flag_bits(tuple(names_))
    if field.endswith(("cap_effective", "cap_permitted")):
        return names.capability_mask(tuple(names_))
    raise TypeError(f"'{field}' takes an integer, not a list")


Decided = Callable[[Mapping[str, Any]], bool | None] | bool
"""A condition decided on some fields: True or False whatever their values, else a function of their values
(a mapping of canonical names) returning True, False or None (it depends on fields not given)."""
_PARTIAL_CACHE: dict[tuple[int, frozenset[str], int, bool], tuple[CompiledRule, Decided]] = {}


def partial_condition(
    rule: CompiledRule,
    known: frozenset[str],
    macros: dict[str, Macro] | None = None,
    *,
    registry: Registry = REGISTRY,
    search: bool = False,
) -> Decided:
    """`rule`'s condition compiled once per set of `known` fields (canonical names); every other field could
    be anything. `registry` and `search` as the rule was compiled with (`compile_search`: several event types
    allowed, the fields of each read as unknown on the others')."""
    key = (id(rule), known, id(registry), search)
    hit = _PARTIAL_CACHE.get(key)
    if hit is not None and hit[0] is rule:
        return hit[1]
    c = Compiler(rule.expression, macros, registry=registry, bound=dict.fromkeys(known), search=search,
                 variables=rule.variables)  # fmt: skip
    v = c.compile(rule.parsed.node)
    if v.unknown:
        out: Decided = True
    elif v.is_const:
        out = bool(any(v.const) if v.multi else v.const)
    else:
        out = c.truth(v)  # type: ignore[assignment]
    if len(_PARTIAL_CACHE) > 65536:
        _PARTIAL_CACHE.clear()
    _PARTIAL_CACHE[key] = (rule, out)
    return out


def could_match(
    rules: Iterable[tuple[CompiledRule, dict[str, Macro] | None]], event_type: str, values: Mapping[str, Any]
) -> bool:
    """Whether any rule of `event_type` could match an event with these field values."""
    bound = bind(values)
    names_ = frozenset(bound)
    for rule, macros in rules:
        if rule.event_type != event_type:
            continue
        decided = partial_condition(rule, names_, macros)
        if decided is True or (decided is not False and decided(bound) is not False):
            return True
    return False


def matches_whatever(
    rules: Iterable[tuple[CompiledRule, dict[str, Macro] | None]], event_type: str, fields: Iterable[str]
) -> bool:
    """Whether some rule of `event_type` could match whatever values these fields have: `could_match` with
    values of these fields only is then True for every value (no discarder can be learned from them)."""
    names_ = frozenset(bind({f: "/" for f in fields}))
    return any(rule.event_type == event_type and partial_condition(rule, names_, macros) is True
               for rule, macros in rules)


def approvers(rules: Iterable[CompiledRule], event_type: str, field: str) -> list[Approver] | None:
    """The union of the values each rule of `event_type` requires for `field`, or None if a rule has none.

    For `*.file.name`, exact path approvers also give their basename (a rule that requires a path
    requires its basename)."""
    f = REGISTRY.get(field)
    canonical = f.canonical if f is not None else field
    out: set[Approver] = set()
    seen = False
    for r in rules:
        if r.event_type != event_type:
            continue
        seen = True
        found = r.approvers.get(canonical)
        if found is None and canonical.endswith(".file.name"):
            paths = r.approvers.get(canonical[: -len("name")] + "path")
            if paths is not None and all(a.kind == "exact" for a in paths):
                found = frozenset(Approver("exact", posixpath.basename(a.value)) for a in paths)
        if found is None:
            return None
        out |= found
    if not seen:
        return None
    return sorted(out, key=lambda a: (a.kind, str(a.value)))
