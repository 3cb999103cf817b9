"""JSON encoding and decoding of model objects, generated once per class from the field declarations.

Encoding follows the project's serialization conventions (shared/spec/README.md): declaration order,
optional fields omitted when None or empty (empty string, list or object), required fields always present,
dates as RFC 3339 UTC with nanoseconds. The encoders are generated Python functions (one per class,
one statement per field) because serialization sits on the agent's hot path.
"""

from __future__ import annotations

import time
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

import orjson

from opencws.model import jsontext
from opencws.model.event import Event
from opencws.model.meta import JSON_CACHE, model_fields, public_fields


@lru_cache(maxsize=4096)
def _second(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


def format_timestamp(ns: int) -> str:
    """Integer nanoseconds since the epoch → `2026-11-21T17:55:02.123456789Z`."""
    sec, frac = divmod(ns, 1_000_000_000)
    return f"{_second(sec)}.{frac:09d}Z"


def parse_timestamp(text: str) -> int:
    """RFC 3339 date-time (any offset, up to nanoseconds) → integer nanoseconds since the epoch."""
    s = text.strip()
    if len(s) < 20 or s[10] not in "Tt ":
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    head, rest = s[:19], s[19:]
    frac_ns = 0
    if rest.startswith("."):
        digits = 0
        while digits + 1 < len(rest) and rest[digits + 1].isdigit():
            digits += 1
        if digits == 0:
            raise ValueError(f"not an RFC 3339 date-time: {text!r}")
        frac_ns = int(rest[1 : 1 + digits][:9].ljust(9, "0"))
        rest = rest[1 + digits :]
    if rest in ("Z", "z"):
        rest = "+00:00"
    leap = head[17:19] == "60"  # a leap second: the instant is the next second's start
    if leap:
        head = head[:17] + "59"
    dt = datetime.fromisoformat(head.replace("t", "T").replace(" ", "T") + rest)
    return (int(dt.timestamp()) + leap) * 1_000_000_000 + frac_ns


def _is_frozen(cls: type) -> bool:
    return JSON_CACHE in getattr(cls, "__dataclass_fields__", {})


@cache
def encoder(cls: type, fragments: bool = False) -> Any:
    """Return a function mapping an instance of `cls` to a JSON-ready dict.

    With `fragments`, frozen values come out as `orjson.Fragment`s of their JSON, computed once per
    value and kept (as bytes, `frozen_json`) in its private slot: what `serialize` embeds. Without,
    everything is plain dicts.
    """
    cached = fragments and _is_frozen(cls)
    if cached and not any(f.meta.required for f in public_fields(cls)):
        raise TypeError(f"{cls.__name__}: a frozen model class needs a required field (never empty)")
    lines = ["def encode(o):"]
    if cached:
        lines += [f"    c = o.{JSON_CACHE}", "    if c is not None:", "        return Fragment(c)"]
    lines.append("    d = {}")
    env: dict[str, Any] = {"fmt_ts": format_timestamp, "Fragment": orjson.Fragment, "dumps": jsontext.dumps}
    for f in public_fields(cls):
        n, k = f.name, f.kind.kind
        if k == "object":
            env[f"enc_{n}"] = encoder(f.kind.ref, fragments)
            value = f"enc_{n}(v)"
        elif k == "array" and f.kind.ref is not None:
            env[f"enc_{n}"] = encoder(f.kind.ref, fragments)
            value = f"[enc_{n}(x) for x in v]"
        elif k == "timestamp":
            value = "fmt_ts(v)"
        elif k == "array":
            value = "list(v)"
        else:
            value = "v"
        lines.append(f"    v = o.{n}")
        if f.meta.required:
            lines.append(f"    d[{n!r}] = {value}")
        elif k == "object":
            lines += ["    if v is not None:", f"        v = {value}", f"        if v: d[{n!r}] = v"]
        elif k in ("array", "string", "free"):
            lines.append(f"    if v: d[{n!r}] = {value}")
        else:
            lines.append(f"    if v is not None: d[{n!r}] = {value}")
    if cached:
        lines += [
            "    c = dumps(d)",
            f"    object.__setattr__(o, {JSON_CACHE!r}, c)",
            "    return Fragment(c)",
        ]
    else:
        lines.append("    return d")
    exec("\n".join(lines), env)
    return env["encode"]


def frozen_json(obj: Any) -> bytes:
    """The JSON of a frozen model value (a file, credentials, a process entry), computed once and kept."""
    c = getattr(obj, JSON_CACHE)
    if c is None:
        encoder(type(obj), True)(obj)
        c = getattr(obj, JSON_CACHE)
    return c  # type: ignore[no-any-return]


def to_dict(obj: Any) -> dict[str, Any]:
    """The JSON-ready dict of a model object."""
    return encoder(type(obj))(obj)


def serialize(event: Event) -> bytes:
    """A CWS event as compact JSON bytes."""
    return jsontext.dumps(_encode_event(event))


_encode_event = encoder(Event, True)


class DecodeError(ValueError):
    """A JSON document does not fit the model; the message names the JSON pointer."""


@cache
def _decoder_plan(cls: type) -> dict[str, Any]:
    return {f.name: f.kind for f in model_fields(cls) if not f.meta.internal}


def from_dict(cls: type, data: Any, pointer: str = "") -> Any:
    """Build a model object from its JSON form (the inverse of `to_dict`)."""
    if not isinstance(data, dict):
        raise DecodeError(f"{pointer or '/'}: expected an object")
    plan = _decoder_plan(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        kind = plan.get(key)
        where = f"{pointer}/{key}"
        if kind is None:
            raise DecodeError(f"{where}: unknown key")
        if value is None:
            continue
        k = kind.kind
        if k == "object":
            value = from_dict(kind.ref, value, where)
        elif k == "array" and kind.ref is not None:
            if not isinstance(value, list):
                raise DecodeError(f"{where}: expected an array")
            value = [from_dict(kind.ref, x, f"{where}/{i}") for i, x in enumerate(value)]
        elif k == "timestamp":
            try:
                value = parse_timestamp(value)
            except (ValueError, TypeError) as e:
                raise DecodeError(f"{where}: {e}") from None
        kwargs[key] = value
    return cls(**kwargs)


def event_from_json(data: dict[str, Any] | bytes | str) -> Event:
    """A CWS event from its JSON form (a parsed dict, or JSON text)."""
    if isinstance(data, bytes | str):
        try:
            data = jsontext.loads(data)
        except orjson.JSONDecodeError as e:
            raise DecodeError(f"malformed JSON: {e}") from None
    return from_dict(Event, data)
