"""A compiled validator for the CWS event schemas.

General-purpose JSON Schema libraries measured on this project's typical exec event (five ancestors):
`jsonschema` about 600 events/s, `fastjsonschema` about 11,000 events/s; the agent and the backend need
far more. The CWS schemas use a small subset of draft-07 (`type`, `properties`, `required`,
`additionalProperties`, `items`, `$ref`, `format: date-time`), so this module compiles exactly that subset
into a fast yes/no check, and walks the schema again only for an invalid document, to report every
offending value with its JSON pointer. Any other keyword is rejected when the schema is compiled.
The test-suite checks both paths against `jsonschema` on generated valid and invalid documents.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_SUPPORTED = {"type", "properties", "required", "additionalProperties", "items", "$ref", "format",
              "description", "definitions", "$schema"}  # fmt: skip

_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))\Z"
)


def is_date_time(value: str) -> bool:
    """RFC 3339 `date-time` (with the calendar checked: no February 30th)."""
    m = _DATE_TIME.match(value)
    return m is not None and _valid_fields(*m.groups())


@lru_cache(maxsize=65536)
def _valid_fields(y: str, mo: str, d: str, h: str, mi: str, s: str, oh: str | None, om: str | None) -> bool:
    month = int(mo)
    if not 1 <= month <= 12 or not 1 <= int(d) <= calendar.monthrange(int(y), month)[1]:
        return False
    if int(h) > 23 or int(mi) > 59 or int(s) > 59:
        return False
    return oh is None or (int(oh) <= 23 and int(om) <= 59)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_integer(v: Any) -> bool:
    c = v.__class__
    return c is int or (c is float and v.is_integer())


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: v.__class__ is str,
    "integer": _is_integer,
    "boolean": lambda v: v.__class__ is bool,
    "object": lambda v: v.__class__ is dict,
    "array": lambda v: v.__class__ is list,
}


_PLAN_CACHE_SIZE = 4096
_EXACT = {"string": str, "integer": int, "boolean": bool}


def _is_plain_scalar(node: dict[str, Any]) -> bool:
    return node.get("type") in _EXACT and set(node) <= {"type", "description"}


def _accept(_v: Any) -> bool:
    return True


def _recursive(ref: str) -> Callable[[Any], bool]:
    def fail(_v: Any) -> bool:
        raise SchemaError(f"recursive $ref {ref!r} is not supported")

    return fail


@dataclass(frozen=True, slots=True)
class Issue:
    """One offending value: its JSON pointer in the document and the reason."""

    pointer: str
    reason: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.reason}"


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class SchemaError(ValueError):
    """The schema uses something this validator does not implement."""


class Validator:
    """Validates documents against one CWS event schema."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self._schema = schema
        self._definitions: dict[str, dict[str, Any]] = schema.get("definitions", {})
        self._compiled: dict[str, Callable[[Any], bool]] = {}
        self._check = self._compile(schema, "#")

    # -- the fast path -------------------------------------------------------------------------
    def is_valid(self, doc: Any) -> bool:
        return self._check(doc)

    def _resolve(self, node: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        ref = node["$ref"]
        prefix = "#/definitions/"
        if not ref.startswith(prefix) or ref[len(prefix) :] not in self._definitions:
            raise SchemaError(f"unresolvable $ref {ref!r}")
        return ref, self._definitions[ref[len(prefix) :]]

    def _compile(self, node: dict[str, Any], where: str) -> Callable[[Any], bool]:
        unknown = set(node) - _SUPPORTED
        if unknown:
            raise SchemaError(f"{where}: unsupported keyword(s) {sorted(unknown)}")
        if "$ref" in node:
            ref, target = self._resolve(node)
            if ref not in self._compiled:
                self._compiled[ref] = _recursive(ref)
                self._compiled[ref] = self._compile(target, ref)
            return self._compiled[ref]
        kind = node.get("type")
        if kind == "object" or "properties" in node:
            return self._compile_object(node, where)
        if kind == "array":
            items = node.get("items", {})
            if set(items) <= {"type", "description"} and items.get("type") in ("string", "boolean"):
                allowed = {str} if items["type"] == "string" else {bool}
                return lambda v: v.__class__ is list and set(map(type, v)) <= allowed
            item = self._compile(items, where + "/items")

            def check_array(v: Any) -> bool:
                if v.__class__ is not list:
                    return False
                for x in v:
                    if not item(x):
                        return False
                return True

            return check_array
        if kind == "string" and node.get("format") == "date-time":
            return lambda v: v.__class__ is str and is_date_time(v)
        if kind is None:
            return lambda v: True
        if kind not in _TYPE_CHECKS:
            raise SchemaError(f"{where}: unsupported type {kind!r}")
        return _TYPE_CHECKS[kind]

    def _compile_object(self, node: dict[str, Any], where: str) -> Callable[[Any], bool]:
        properties = node.get("properties", {})
        checks = {k: self._compile(v, f"{where}/properties/{k}") for k, v in properties.items()}
        exact = {k: _EXACT[v["type"]] for k, v in properties.items() if _is_plain_scalar(v)}
        required = node.get("required", ())
        closed = node.get("additionalProperties", True) is False
        plans: dict[tuple[Any, ...], Any] = {}

        def plan_for(d: dict[str, Any]) -> Any:
            """What remains to check for objects with these keys and these value classes."""
            if any(k not in d for k in required):
                return False
            deep = []
            for k, v in d.items():
                if v.__class__ is exact.get(k):
                    continue
                c = checks.get(k)
                if c is None:
                    if closed:
                        return False
                    continue
                if k in exact and not (exact[k] is int and v.__class__ is float):
                    return False  # a plain scalar of the wrong class: no value can fix that
                deep.append((k, c))
            return tuple(deep)

        def check(d: Any) -> bool:
            if d.__class__ is not dict:
                return False
            # Objects sharing their keys and value classes share the verdict on every plain scalar;
            # only nested objects, arrays, dates and integral floats are looked at per value.
            sig = (*d, *map(type, d.values()))
            plan = plans.get(sig)
            if plan is None:
                if len(plans) >= _PLAN_CACHE_SIZE:
                    plans.clear()
                plan = plans[sig] = plan_for(d)
            if plan is False:
                return False
            for k, c in plan:
                if not c(d[k]):
                    return False
            return True

        return check

    # -- the diagnostic path -------------------------------------------------------------------
    def issues(self, doc: Any) -> list[Issue]:
        """Every offending value of `doc`, in document order (empty when valid)."""
        return list(self._walk(self._schema, doc, ""))

    def _walk(self, node: dict[str, Any], value: Any, pointer: str) -> Iterator[Issue]:
        if "$ref" in node:
            yield from self._walk(self._resolve(node)[1], value, pointer)
            return
        kind = node.get("type")
        if kind is None and "properties" in node:
            kind = "object"
        if kind is not None and not _TYPE_CHECKS[kind](value):
            yield Issue(pointer, f"expected {kind}, got {_type_name(value)} {_short(value)}")
            return
        if kind == "string" and node.get("format") == "date-time" and not is_date_time(value):
            yield Issue(pointer, f"{_short(value)} is not an RFC 3339 date-time")
        elif kind == "array":
            items = node.get("items", {})
            for i, x in enumerate(value):
                yield from self._walk(items, x, f"{pointer}/{i}")
        elif kind == "object":
            props = node.get("properties", {})
            for name in node.get("required", ()):
                if name not in value:
                    yield Issue(pointer, f"missing required property {name!r}")
            closed = node.get("additionalProperties", True) is False
            for k, v in value.items():
                if k in props:
                    yield from self._walk(props[k], v, f"{pointer}/{_escape(k)}")
                elif closed:
                    yield Issue(
                        f"{pointer}/{_escape(k)}", f"unknown property {k!r} (not allowed by the schema)"
                    )
