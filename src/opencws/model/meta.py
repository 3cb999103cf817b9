"""Field declarations for the event model.

Every model class is a dataclass whose fields carry their schema metadata (description, whether the
field is required, its JSON format, whether it belongs to the legacy schema). The JSON Schema, the
Markdown reference, the serializer and the JSON decoder are all derived from these declarations, so a
field added here shows up everywhere without hand edits.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NewType

# Dates are held as integer nanoseconds since the Unix epoch and serialized as RFC 3339 UTC strings.
Timestamp = NewType("Timestamp", int)

_META_KEY = "opencws"


@dataclass(frozen=True, slots=True)
class FieldMeta:
    description: str | None = None
    required: bool = False
    legacy: bool = True  # present in the legacy (pre-bpf, pre-dd) schema
    internal: bool = False  # carried for rules, never serialized nor in the schema


def prop(
    description: str | None = None,
    *,
    required: bool = False,
    default: Any = None,
    default_factory: Any = dataclasses.MISSING,
    legacy: bool = True,
    internal: bool = False,
) -> Any:
    """Declare a model field with its schema metadata."""
    meta = {_META_KEY: FieldMeta(description, required, legacy, internal)}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


JSON_CACHE = "_json"


def model(cls: type | None = None, *, frozen: bool = False) -> Any:
    """Class decorator for model classes: a slotted dataclass with keyword construction.

    Frozen classes (files, credentials, process entries: long-lived values shared by many events)
    also carry a private slot where the serializer keeps their JSON form, valid forever since the
    value cannot change.
    """

    def wrap(c: type) -> type:
        if (
            frozen
            and JSON_CACHE not in inspect.get_annotations(c)
            and not any(JSON_CACHE in getattr(b, "__dataclass_fields__", {}) for b in c.__mro__[1:])
        ):
            c.__annotations__ = {**inspect.get_annotations(c), JSON_CACHE: "Any"}
            setattr(
                c,
                JSON_CACHE,
                field(
                    default=None,
                    init=False,
                    repr=False,
                    compare=False,
                    metadata={_META_KEY: FieldMeta(internal=True)},
                ),
            )
        return dataclass(slots=True, kw_only=True, frozen=frozen)(c)

    return wrap if cls is None else wrap(cls)


@dataclass(frozen=True, slots=True)
class FieldKind:
    """The JSON shape of a field, derived from its annotation."""

    kind: str  # "string" | "integer" | "boolean" | "timestamp" | "object" | "array" | "free"
    ref: type | None = None  # model class for "object", or for the items of "array"
    item: str | None = None  # item kind for arrays of scalars


@dataclass(frozen=True, slots=True)
class ModelField:
    name: str
    kind: FieldKind
    meta: FieldMeta


_SCALARS = {str: "string", int: "integer", bool: "boolean"}


def _kind_of(tp: Any) -> FieldKind:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported union {tp!r}")
        tp = args[0]
    if tp is Timestamp:
        return FieldKind("timestamp")
    if tp in _SCALARS:
        return FieldKind(_SCALARS[tp])
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        if dataclasses.is_dataclass(item):
            return FieldKind("array", ref=item)
        return FieldKind("array", item=_SCALARS[item])
    if origin is dict:
        return FieldKind("free")
    if dataclasses.is_dataclass(tp):
        return FieldKind("object", ref=tp)
    raise TypeError(f"unsupported field type {tp!r}")


@cache
def model_fields(cls: type) -> tuple[ModelField, ...]:
    """The fields of a model class in declaration order, with their JSON shape and metadata."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_META_KEY, FieldMeta())
        kind = FieldKind("internal") if f.name == JSON_CACHE else _kind_of(hints[f.name])
        out.append(ModelField(f.name, kind, meta))
    return tuple(out)


def public_fields(cls: type, *, legacy: bool = False) -> tuple[ModelField, ...]:
    """The fields that appear in the schema and in serialized events."""
    return tuple(f for f in model_fields(cls) if not f.meta.internal and (f.meta.legacy or not legacy))
