"""The CWS event schema as msgspec Structs: parsing and validation of an event's JSON in one C pass.

Hot path of the backend's intake (`opencws.backend.intake`): decoding into these types checks what the
schema checks, without building a dict per object first. Two families come from the same schema:

- strict (`event_decoder`): accepts a subset of what the schema accepts, never more (a document it refuses
  may still be valid: JSON Schema takes `1.0` as an integer, a leap second as a date-time...). Its caller
  then asks the exact validator (`opencws.schema.validator`), which also gives the reasons.
- lenient (`lenient_event`): the same fields, any values; a dict the exact validator accepted converts to it,
  so that one row builder reads both.
- cut (`cut_event_decoder`): the strict family with `process.ancestors` left as its JSON text
  (`msgspec.Raw`), which `ancestors_decoder` decodes and `ancestors_dates_checker` checks, strictly: the
  two together accept exactly what `event_decoder` accepts. The intake checks each distinct ancestors text
  once (they repeat in every event of every process of a lineage).

`tests/schema/test_structs.py` holds the strict family to the exact validator.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

import msgspec
from msgspec import UNSET

from opencws.schema.generate import event_schema

# RFC 3339 date-times (a subset: no leap second, upper-case T and Z, at most nanoseconds; February 29 of leap
# years only: a process started on one keeps its date in the ancestors of every event of its descendants).
# Checked after decoding, once per distinct text (they repeat: an ancestor's times are in every event of its
# descendants); as a msgspec `pattern` it cost as much as the rest of the decoding. (msgspec's own datetime
# takes a space or "+0100", which the schema refuses.)
_DATE_TIME = re.compile(
    r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    r"|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])\Z"
)
_SCALARS: dict[str, Any] = {"string": str, "integer": int, "boolean": bool}


# Per strict Struct class: its date-time fields, and its fields holding Structs with date-times (name, is a list).
_WALK: dict[type, tuple[tuple[str, ...], tuple[tuple[str, bool], ...]]] = {}
_KNOWN_DATES: set[str] = set()


# Fields left as their JSON text in the cut family: (definition, property).
CUT_FIELDS = frozenset({("ProcessContext", "ancestors")})


def _build(
    schema: dict[str, Any], strict: bool, raw: frozenset[tuple[str, str]] = frozenset(), family: str = ""
) -> type[msgspec.Struct]:
    definitions = schema.get("definitions", {})
    made: dict[str, Any] = {}
    walk: dict[str, tuple[list[str], list[tuple[str, str, bool]]]] = {}

    def struct(name: str, spec: dict[str, Any]) -> Any:
        required = set(spec.get("required", ()))
        fields: list[Any] = []
        dates, subs = walk.setdefault(name, ([], []))
        for key, prop in spec["properties"].items():
            if (name, key) in raw:
                fields.append(
                    (key, msgspec.Raw) if key in required else (key, msgspec.Raw | msgspec.UnsetType, UNSET)
                )
                continue
            t = value_type(key, prop)
            target = prop.get("items", prop).get("$ref", "").rsplit("/", 1)[-1]
            if target:
                subs.append((key, target, "items" in prop))
            elif prop.get("format") == "date-time":
                dates.append(key)
            fields.append(
                (key, t) if key in required and strict else (key, t | msgspec.UnsetType, msgspec.UNSET)
            )
        fields.sort(key=len)  # required fields first
        return msgspec.defstruct(
            f"{family}{name}" if strict else f"Lenient{name}", fields, forbid_unknown_fields=strict, gc=False
        )

    def ref(name: str) -> Any:
        if name not in made:
            made[name] = struct(name, definitions[name])
        return made[name]

    def value_type(key: str, prop: dict[str, Any]) -> Any:
        if "$ref" in prop:
            return ref(prop["$ref"].rsplit("/", 1)[1])
        kind = prop.get("type")
        if kind == "array":
            return list[value_type(key, prop["items"])]
        if not strict or kind is None:
            return Any
        if prop.get("format") == "date-time":
            return str  # checked by `dates_valid`
        if kind in _SCALARS and not prop.keys() - {"type", "description", "format"}:
            return _SCALARS[kind]
        raise ValueError(f"no Struct type for {key!r}: {prop}")

    event = struct("Event", schema)
    if strict:
        classes = {**made, "Event": event}

        def has_dates(name: str) -> bool:
            dates, subs = walk[name]
            return bool(dates) or any(has_dates(t) for _, t, _ in subs)

        plan = {
            name: (dates, [(k, t, many) for k, t, many in subs if has_dates(t)])
            for name, (dates, subs) in walk.items()
            if has_dates(name)
        }
        for name, (dates, subs) in plan.items():
            _WALK[classes[name]] = (tuple(dates), tuple((k, many) for k, _, many in subs))
        source = _dates_source(plan)
        scope: dict[str, Any] = {"UNSET": UNSET, "known": _KNOWN_DATES, "remember": _remember}
        exec(source, scope)
        scope["check_Event"].source = source
        _CHECKERS[family] = scope
        _CLASSES[family] = classes
    return event


def _dates_source(plan: dict[str, tuple[list[str], list[tuple[str, str, bool]]]]) -> str:
    """One function per Struct holding date-times, each field read by name (no loop over field names)."""
    lines = []
    for name, (dates, subs) in plan.items():
        lines.append(f"def check_{name}(o):")
        for d in dates:
            lines += [f"    v = o.{d}", "    if v is not UNSET and v not in known and not remember(v):"]
            lines.append("        return False")
        for k, target, many in subs:
            lines.append(f"    v = o.{k}")
            if many:
                lines += ["    if v is not UNSET:", "        for x in v:", f"            if not check_{target}(x):"]
                lines.append("                return False")
            else:
                lines += [f"    if v is not UNSET and not check_{target}(v):", "        return False"]
        lines += ["    return True", ""]
    return "\n".join(lines)


def _remember(text: str) -> bool:
    if _DATE_TIME.match(text) is None:
        return False
    if len(_KNOWN_DATES) >= 100_000:
        _KNOWN_DATES.clear()
    _KNOWN_DATES.add(text)
    return True


# Per family ("" strict, "Cut"): the generated date checkers by Struct name, and the Struct classes by name.
_CHECKERS: dict[str, dict[str, Any]] = {}
_CLASSES: dict[str, dict[str, Any]] = {}


def dates_checker() -> Callable[[msgspec.Struct], bool]:
    """The function telling whether every date-time of a strict event is in the subset of RFC 3339 this
    module takes (hot path: generated from the schema, its `.source` kept; each distinct text is matched
    once). `dates_valid_py` is its readable twin."""
    strict_event()
    return _CHECKERS[""]["check_Event"]


def dates_valid_py(event: msgspec.Struct) -> bool:
    stack = [event]
    while stack:
        obj = stack.pop()
        dates, subs = _WALK[type(obj)]
        for name in dates:
            v = getattr(obj, name)
            if v is not UNSET and v not in _KNOWN_DATES and not _remember(v):
                return False
        for name, many in subs:
            v = getattr(obj, name)
            if v is not UNSET:
                if many:
                    stack.extend(v)
                else:
                    stack.append(v)
    return True


@cache
def strict_event() -> type[msgspec.Struct]:
    return _build(event_schema(), strict=True)


@cache
def cut_event() -> type[msgspec.Struct]:
    return _build(event_schema(), strict=True, raw=CUT_FIELDS, family="Cut")


@cache
def cut_event_decoder() -> msgspec.json.Decoder:
    """JSON bytes → a strict event Struct whose `process.ancestors` is its JSON text (`msgspec.Raw`)."""
    return msgspec.json.Decoder(cut_event())


def cut_dates_checker() -> Callable[[msgspec.Struct], bool]:
    """`dates_checker` for the cut family (the ancestors' dates are `ancestors_dates_checker`'s)."""
    cut_event()
    return _CHECKERS["Cut"]["check_Event"]


@cache
def ancestors_decoder() -> msgspec.json.Decoder:
    """The JSON text of `process.ancestors` → its list of strict entries (what `event_decoder` makes of it)."""
    strict_event()
    entry = _CLASSES[""]["ProcessCacheEntry"]
    return msgspec.json.Decoder(list[entry])  # type: ignore[valid-type]


def ancestors_dates_checker() -> Callable[[msgspec.Struct], bool]:
    """`dates_checker` for one entry of `ancestors_decoder`'s list."""
    strict_event()
    return _CHECKERS[""]["check_ProcessCacheEntry"]


@cache
def lenient_event() -> type[msgspec.Struct]:
    return _build(event_schema(), strict=False)


@cache
def event_decoder() -> msgspec.json.Decoder:
    """JSON bytes → a strict event Struct; raises `msgspec.ValidationError`/`DecodeError` when it cannot."""
    return msgspec.json.Decoder(strict_event())


def lenient(event: dict[str, Any]) -> msgspec.Struct:
    """An event dict the exact validator accepted → its lenient Struct."""
    return msgspec.convert(event, lenient_event(), strict=False)
