"""Rows → ClickHouse's RowBinary input format, for the types of the events table (hot path of the intake).

Each value in order, no separators: `Date` as the UInt16 days since 1970-01-01, `Int64` in 8 bytes little
endian, `String` as its byte length (unsigned LEB128) then its bytes, `Array(T)` as its length then each
element. Strings are written as UTF-8; a lone surrogate (a byte of a non-UTF-8 name, see
`opencws.model.jsontext`) goes back to that byte (`text_bytes`). Bytes (and msgspec.Raw) are written as they are;
a `Cut` without its cut part.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Callable, Sequence
from typing import Any

_INT64 = struct.Struct("<q").pack
_UINT16 = struct.Struct("<H").pack
_EPOCH_ORDINAL = 719_163  # datetime.date(1970, 1, 1).toordinal()
_SMALL = [bytes((n,)) for n in range(128)]


class Cut:
    """A string value stored without one part of it (kept elsewhere): the event's JSON without its
    `process.ancestors` text, which the store keeps once (`opencws.backend.store.contexts`). `text` is
    the whole value, what every reader of the row sees; `text[at:at + size]` is left out of the column."""

    __slots__ = ("at", "size", "text")

    def __init__(self, text: Any, at: int, size: int) -> None:
        self.text = memoryview(text)
        self.at = at
        self.size = size

    def stored(self) -> bytes:
        """The bytes the column holds."""
        t = self.text
        return bytes(t[: self.at]) + bytes(t[self.at + self.size :])


class Encoded(list):  # type: ignore[type-arg]
    """A list of strings carrying its `Array(String)` encoding, made once for a value many rows share (the
    ancestors' paths and names of a lineage)."""

    __slots__ = ("rowbinary",)


def encoded(strings: list[str]) -> Encoded:
    out = Encoded(strings)
    out.rowbinary = _strings(strings)
    return out


def _length(n: int) -> bytes:
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def text_bytes(v: str) -> bytes:
    """A string's bytes: UTF-8, each lone surrogate U+DC80..U+DCFF back to the byte it stands for (any other
    lone surrogate as its own three bytes)."""
    try:
        return v.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return v.encode("utf-8", "surrogatepass")


def _string(v: Any) -> bytes:
    b = text_bytes(v) if type(v) is str else v.stored() if type(v) is Cut else bytes(v)
    return _length(len(b)) + b


def _strings(vs: Sequence[Any]) -> bytes:
    return _length(len(vs)) + b"".join([_string(v) for v in vs])


def _int64(v: int) -> bytes:
    try:
        return _INT64(v)
    except struct.error:  # beyond Int64 (the schema's integers have no bound): wrapped, as ClickHouse does
        return _INT64((int(v) + 2**63) % 2**64 - 2**63)


def _date(v: Any) -> bytes:
    return _UINT16(v.toordinal() - _EPOCH_ORDINAL)


ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "Date": _date,
    "Int64": _int64,
    "String": _string,
    "Array(String)": _strings,
}


def row_binary_py(rows: Sequence[Sequence[Any]], types: Sequence[str]) -> bytes:
    """The readable twin of `row_binary`, value by value (and the way for an Int64 out of range)."""
    encoders = [ENCODERS[t] for t in types]
    parts: list[Any] = []
    append = parts.append
    for row in rows:
        for encode, value in zip(encoders, row, strict=True):
            append(encode(value))
    return b"".join(parts)


_FIXED = {"Date": ("H", "{v}.toordinal() - _EPOCH_ORDINAL"), "Int64": ("q", "{v}")}


def _string_source(v: str, indent: str) -> list[str]:
    i = indent
    return [
        f"{i}if {v}.__class__ is _Cut:",
        f"{i}    t, a = {v}.text, {v}.at",
        f"{i}    n = len(t) - {v}.size",
        f"{i}    out += _SMALL[n] if n < 128 else _length(n)",
        f"{i}    out += t[:a]",
        f"{i}    out += t[a + {v}.size:]",
        f"{i}else:",
        f"{i}    b = {v}.encode() if {v}.__class__ is str else {v}",
        f"{i}    n = len(b)",
        f"{i}    out += _SMALL[n] if n < 128 else _length(n)",
        f"{i}    out += b",
    ]


def encoder_source(types: Sequence[str]) -> str:
    """Source of a function encoding rows of `types`, unrolled (hot path: no call per value; runs of
    fixed-width columns in one `struct` call; strict UTF-8)."""
    names = [f"c{i}" for i in range(len(types))]
    body: list[str] = []
    fixed: list[tuple[str, str]] = []

    def flush() -> None:
        if fixed:
            fmt = "<" + "".join(f for f, _ in fixed)
            body.append(f"        out += _pack({fmt!r}, {', '.join(e for _, e in fixed)})")
            fixed.clear()

    for name, t in zip(names, types, strict=True):
        if t in _FIXED:
            code, expr = _FIXED[t]
            fixed.append((code, expr.format(v=name)))
            continue
        flush()
        if t == "String":
            body += _string_source(name, "        ")
        elif t == "Array(String)":
            body.append(f"        if {name}.__class__ is _Encoded:")
            body.append(f"            out += {name}.rowbinary")
            body.append("        else:")
            body.append(f"            n = len({name})")
            body.append("            out += _SMALL[n] if n < 128 else _length(n)")
            body.append(f"            for s in {name}:")
            body += _string_source("s", "                ")
        else:
            raise ValueError(f"no RowBinary encoding for {t}")
    flush()
    return "\n".join(
        [
            "def encode(rows):",
            "    out = bytearray()",
            f"    for {', '.join(names)}, in rows:",
            *body,
            "    return out",
        ]
    )


_ENCODERS: dict[tuple[str, ...], Callable[[Sequence[Sequence[Any]]], bytearray]] = {}


def row_binary(rows: Sequence[Sequence[Any]], types: Sequence[str]) -> bytes | bytearray:
    key = tuple(types)
    encode = _ENCODERS.get(key)
    if encode is None:
        scope = {
            "_pack": struct.pack, "_SMALL": _SMALL, "_length": _length, "_EPOCH_ORDINAL": _EPOCH_ORDINAL,
            "_Cut": Cut, "_Encoded": Encoded,
        }  # fmt: skip
        exec(encoder_source(key), scope)  # source: `encoder_source(types)`
        encode = _ENCODERS[key] = scope["encode"]
    try:
        return encode(rows)
    except (struct.error, UnicodeEncodeError):  # an Int64 out of range, a lone surrogate: the twin's way
        return row_binary_py(rows, types)


# --- reading back (the journal's recovery and the server engine's insert of journaled rows) ---------------

_EPOCH = datetime.date(1970, 1, 1)
_UNPACK_INT64 = struct.Struct("<q").unpack_from
_UNPACK_UINT16 = struct.Struct("<H").unpack_from


class RowBinaryError(ValueError):
    """Bytes that are not RowBinary rows of the given types."""


def _read_length(data: bytes | memoryview, at: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if at >= len(data):
            raise RowBinaryError(f"a length runs past the end of the data at byte {at}")
        b = data[at]
        at += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, at
        shift += 7
        if shift > 63:
            raise RowBinaryError(f"a length longer than 9 bytes at byte {at}")


def _read_string(data: bytes | memoryview, at: int) -> tuple[bytes, int]:
    n, at = _read_length(data, at)
    if at + n > len(data):
        raise RowBinaryError(f"a string of {n} bytes runs past the end of the data at byte {at}")
    return bytes(data[at : at + n]), at + n


def read_rows(data: bytes | memoryview, types: Sequence[str]) -> list[tuple[int, int, tuple[Any, ...]]]:
    """The rows of `data` (RowBinary of `types`), each as (start, end, values): `Date` as a datetime.date,
    `Int64` as an int, `String` as bytes, `Array(String)` as a list of bytes. Slow (value by value): for the
    journal's recovery, which needs where each row is (`read_values` is the unrolled reader of the values)."""
    out = []
    at = 0
    size = len(data)
    delta = datetime.timedelta
    while at < size:
        start = at
        values: list[Any] = []
        for t in types:
            if t == "String":
                v, at = _read_string(data, at)
            elif t == "Int64":
                if at + 8 > size:
                    raise RowBinaryError(f"an Int64 runs past the end of the data at byte {at}")
                (v,) = _UNPACK_INT64(data, at)
                at += 8
            elif t == "Date":
                if at + 2 > size:
                    raise RowBinaryError(f"a Date runs past the end of the data at byte {at}")
                (days,) = _UNPACK_UINT16(data, at)
                v = _EPOCH + delta(days=days)
                at += 2
            elif t == "Array(String)":
                n, at = _read_length(data, at)
                v = []
                for _ in range(n):
                    s, at = _read_string(data, at)
                    v.append(s)
            else:
                raise RowBinaryError(f"no RowBinary decoding for {t}")
            values.append(v)
        out.append((start, at, tuple(values)))
    return out


_LENGTH_SOURCE = ["n = data[at]", "if n < 128:", "    at += 1", "else:", "    n, at = _read_length(data, at)"]
_VALUE_SOURCES = {
    "Date": ["({v},) = _u16(data, at)", "at += 2", "{v} = _dates.get({v}) or _date_of({v})"],
    "Int64": ["({v},) = _i64(data, at)", "at += 8"],
    "String": [*_LENGTH_SOURCE, "{v} = data[at : at + n]", "at += n"],
}


def _values_source(types: Sequence[str]) -> str:
    """Source of a function reading RowBinary rows of `types` into tuples of values, unrolled (no call per
    value; a short string's length read inline)."""
    body: list[str] = []
    names = [f"c{i}" for i in range(len(types))]
    for name, t in zip(names, types, strict=True):
        if t == "Array(String)":
            body += [*_LENGTH_SOURCE, f"{name} = []", "for _ in range(n):"]
            body += ["    " + line.format(v="s") for line in _VALUE_SOURCES["String"]]
            body.append(f"    {name}.append(s)")
        elif t in _VALUE_SOURCES:
            body += [line.format(v=name) for line in _VALUE_SOURCES[t]]
        else:
            raise ValueError(f"no RowBinary decoding for {t}")
    return "\n".join(
        ["def read(data):", "    out = []", "    append = out.append", "    at, size = 0, len(data)",
         "    while at < size:", *("        " + line for line in body), f"        append(({', '.join(names)},))",
         "    if at != size:", "        raise _Error(f'the last row runs past the end of the data ({at} > {size} bytes)')",
         "    return out"]
    )  # fmt: skip


_READERS: dict[tuple[str, ...], Callable[[bytes], list[tuple[Any, ...]]]] = {}
_DATES: dict[int, datetime.date] = {}


def _date_of(days: int) -> datetime.date:
    if len(_DATES) > 100_000:
        _DATES.clear()
    day = _DATES[days] = _EPOCH + datetime.timedelta(days=days)
    return day


def read_values(data: bytes | bytearray | memoryview, types: Sequence[str]) -> list[tuple[Any, ...]]:
    """The values of each row of `data`, as `read_rows` gives them (without where each row is): the server
    engine's insert of journaled rows, hot when the store is a ClickHouse server. Raises RowBinaryError."""
    key = tuple(types)
    read = _READERS.get(key)
    if read is None:
        scope = {"_u16": _UNPACK_UINT16, "_i64": _UNPACK_INT64, "_dates": _DATES, "_date_of": _date_of,
                 "_read_length": _read_length, "_Error": RowBinaryError}  # fmt: skip
        exec(_values_source(key), scope)  # source: `_values_source(types)`
        read = _READERS[key] = scope["read"]
    try:
        return read(data if type(data) is bytes else bytes(data))
    except (IndexError, struct.error) as e:
        raise RowBinaryError(f"a value runs past the end of the data ({e})") from None
