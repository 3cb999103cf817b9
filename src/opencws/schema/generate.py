"""JSON Schema (draft-07) generated from the event model.

The layout follows the reference schema: top-level properties, then `definitions` in alphabetical order,
each with `required` (when any), `properties` in declaration order, `additionalProperties: false` and
`type: object`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from opencws.model.event import Event
from opencws.model.meta import ModelField, public_fields

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
_JSON_TYPES = {"string": "string", "integer": "integer", "boolean": "boolean"}


def _ref(cls: type) -> dict[str, str]:
    return {"$ref": f"#/definitions/{cls.__name__}"}


def _property(f: ModelField) -> dict[str, Any]:
    k = f.kind
    desc = {"description": f.meta.description} if f.meta.description else {}
    if k.kind == "object":
        return {**_ref(k.ref), **desc}
    if k.kind == "array":
        items = _ref(k.ref) if k.ref is not None else {"type": _JSON_TYPES[k.item]}
        return {"items": items, "type": "array", **desc}
    if k.kind == "free":
        return {"additionalProperties": True, **desc}
    if k.kind == "timestamp":
        return {"type": "string", **desc, "format": "date-time"}
    return {"type": _JSON_TYPES[k.kind], **desc}


def _object(cls: type, legacy: bool) -> dict[str, Any]:
    fields = public_fields(cls, legacy=legacy)
    out: dict[str, Any] = {}
    required = [f.name for f in fields if f.meta.required]
    if required:
        out["required"] = required
    out["properties"] = {f.name: _property(f) for f in fields}
    out["additionalProperties"] = False
    out["type"] = "object"
    return out


def _referenced(cls: type, legacy: bool, seen: dict[str, type]) -> None:
    for f in public_fields(cls, legacy=legacy):
        ref = f.kind.ref
        if ref is not None and ref.__name__ not in seen:
            seen[ref.__name__] = ref
            _referenced(ref, legacy, seen)


def build_schema(root: type, *, legacy: bool = False) -> dict[str, Any]:
    """The JSON Schema of documents shaped like the model class `root`."""
    classes: dict[str, type] = {}
    _referenced(root, legacy, classes)
    return {
        "$schema": DRAFT_07,
        "properties": _object(root, legacy)["properties"],
        "additionalProperties": False,
        "type": "object",
        "definitions": {name: _object(classes[name], legacy) for name in sorted(classes)},
    }


@cache
def _event_schema(legacy: bool) -> dict[str, Any]:
    return build_schema(Event, legacy=legacy)


def event_schema(*, legacy: bool = False) -> dict[str, Any]:
    """The CWS event schema; `legacy` gives the earlier form without `bpf` and `dd`.

    Returns a shared object: copy it before changing it.
    """
    return _event_schema(legacy)
