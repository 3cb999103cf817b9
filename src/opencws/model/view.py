"""Stored events as SECL reads them, without building the model: a *view* of an event's parsed JSON (for
detection's rules and for the check of each search result).

Decoding an event into the model (`opencws.model.codec.event_from_json`) costs about 130 µs with its
ancestors, more than detection's whole budget per event; the rules read a few fields of most events. A view
is a model object whose fields are properties reading the JSON dict on access (objects wrapped in views
when first read, dates parsed when read), so the SECL getters and compiled rules run on it unchanged.

Hot path. Its slow twin is `event_from_json`; `tests/model/test_view.py` holds the two to the
same verdicts and field values.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from opencws.model.codec import parse_timestamp
from opencws.model.event import MODEL_CLASSES, Event
from opencws.model.meta import model_fields

_MISSING: Any = object()
_VIEWS: dict[type, type] = {}


def _default(cls: type, name: str) -> Any:
    f = cls.__dataclass_fields__[name]  # type: ignore[attr-defined]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _make_view(cls: type) -> type:
    env: dict[str, Any] = {"MISSING": _MISSING, "parse_timestamp": parse_timestamp}
    lines = []
    props: dict[str, str] = {}
    for f in model_fields(cls):
        name, kind = f.name, f.kind
        if kind.kind == "internal" or f.meta.internal:
            props[name] = "none"
            continue
        fn = f"get_{name}"
        if kind.kind == "object":
            env[f"V_{name}"] = view_class(kind.ref)  # type: ignore[arg-type]
            make = f"V_{name}(d)"
        elif kind.kind == "array" and kind.ref is not None:
            env[f"V_{name}"] = view_class(kind.ref)
            make = f"[V_{name}(x) for x in d]"
        elif kind.kind == "timestamp":
            make = "parse_timestamp(d)"
        else:
            env[f"D_{name}"] = _default(cls, name)
            lines += [f"def {fn}(self):", f"    return self._d.get({name!r}, D_{name})"]
            props[name] = fn
            continue
        lines += [
            f"def {fn}(self):",
            "    c = self._c",
            f"    v = c.get({name!r}, MISSING)",
            "    if v is MISSING:",
            f"        d = self._d.get({name!r})",
            f"        v = c[{name!r}] = None if d is None else {make}",
            "    return v",
        ]
        props[name] = fn
    lines += ["def none(self):", "    return None"]
    exec("\n".join(lines), env)

    def __init__(self: Any, d: dict[str, Any]) -> None:
        object.__setattr__(self, "_d", d)
        object.__setattr__(self, "_c", {})

    ns: dict[str, Any] = {"__slots__": ("_d", "_c"), "__init__": __init__, "__setattr__": object.__setattr__}
    ns.update({name: property(env[fn]) for name, fn in props.items()})
    ns["__doc__"] = f"A view of the JSON form of a `{cls.__name__}` (see the module's docstring)."
    return type(f"{cls.__name__}View", (cls,), ns)


def view_class(cls: type) -> type:
    v = _VIEWS.get(cls)
    if v is None:
        v = _VIEWS[cls] = _make_view(cls)
    return v


for _cls in MODEL_CLASSES:
    view_class(_cls)
EventView = view_class(Event)


def event_view(event: dict[str, Any]) -> Event:
    """`event` (a CWS event's JSON, valid against the schema) as a model `Event` for SECL."""
    return EventView(event)  # type: ignore[no-any-return]
