"""Intake bodies → JSON documents: the size limits, the content codings (zstd, gzip), and the three formats (one JSON object, a JSON
array, JSON lines). Every refusal is a `BodyError` carrying its HTTP status and a precise message."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from opencws.backend import zstd_body
from opencws.model import jsontext

CODINGS = ("zstd", "gzip", "x-gzip", "identity")
"""The `Content-Encoding`s accepted (RFC 8878's zstd, RFC 1952's gzip), said in a 415."""
MAX_GZIP_MEMBERS = 10_000
"""gzip members in one body (a client sends one; `cat a.gz b.gz` a few): 16 MiB of empty members (20 bytes
each) would otherwise cost a Python loop of 800,000 turns. zstd frames have the same bound
(`zstd_body.MAX_FRAMES`)."""
_GZIP_STEP = 16 << 10
"""The members after the first are fed this much at a time: each member's end copies what is left of its step
(`unused_data`), never what is left of the body (which made many small members cost quadratic time)."""

JSONL_TYPES = (
    "application/x-ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/json-lines",
)
JSON_TYPES = ("application/json", "text/plain", "application/octet-stream", "")


class BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Document:
    """One document of the body: its value, or why it could not be read (`error`)."""

    index: int
    value: Any = None
    error: str | None = None
    line: int | None = None


def decompress(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """The body as sent → its bytes, refusing more than `max_bytes` once decompressed (bombs: never allocated)."""
    enc = (encoding or "identity").strip().lower()
    if enc == "identity":
        return body
    if enc == "zstd":
        try:
            return zstd_body.decompress(body, max_bytes)
        except zstd_body.Refused as e:
            raise BodyError(e.status, e.message) from None
    if enc not in ("gzip", "x-gzip"):
        raise BodyError(415, f"unsupported Content-Encoding {encoding!r} (accepted: {', '.join(CODINGS)})")
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(body, max_bytes + 1)
    except zlib.error as e:
        raise BodyError(400, f"invalid gzip body: {e}") from None
    if len(out) > max_bytes:
        raise BodyError(413, f"the body is larger than {max_bytes} bytes once decompressed")
    if not d.eof:
        raise BodyError(400, "invalid gzip body: truncated")
    if not d.unused_data:
        return out  # one member: what clients send
    return _more_members(out, memoryview(d.unused_data), max_bytes)


def _more_members(first: bytes, rest: memoryview, max_bytes: int) -> bytes:
    """Several gzip members one after the other are one stream (RFC 1952): the first's output and the rest."""
    parts, got = [first], len(first)
    pos, members = 0, 1
    while pos < len(rest):
        members += 1
        if members > MAX_GZIP_MEMBERS:
            raise BodyError(400, f"invalid gzip body: more than {MAX_GZIP_MEMBERS} members")
        d = zlib.decompressobj(wbits=31)
        while not d.eof:
            if pos >= len(rest):
                raise BodyError(400, "invalid gzip body: truncated")
            step = rest[pos:pos + _GZIP_STEP]
            try:
                part = d.decompress(step, max_bytes + 1 - got)
            except zlib.error as e:
                raise BodyError(400, f"invalid gzip body: {e}") from None
            parts.append(part)
            got += len(part)
            if got > max_bytes:
                raise BodyError(413, f"the body is larger than {max_bytes} bytes once decompressed")
            # below the output's bound, the whole step was read: all of it, or up to the member's end
            pos += len(step) - len(d.unused_data)
    return b"".join(parts)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _checked_media(content_type: str | None) -> str:
    media = _media_type(content_type)
    if media not in JSONL_TYPES and media not in JSON_TYPES:
        raise BodyError(415, f"unsupported Content-Type {media!r} (application/json or application/x-ndjson)")
    return media


def json_lines(content_type: str | None) -> bool:
    """Whether a body of this Content-Type is JSON lines (else one JSON value); raises `BodyError` (415) for
    a type the intake does not take."""
    return _checked_media(content_type) in JSONL_TYPES


_RAW_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])


def raw_documents(body: bytes, content_type: str | None, max_documents: int) -> list[Any] | None:
    """Hot path of `documents`: the JSON text of each document (a buffer: bytes, `msgspec.Raw` or
    memoryview), without parsing it into objects; None when the body is not plainly a JSON array, one object
    or JSON lines (`documents` then says what it is)."""
    media = _checked_media(content_type)
    if media in JSONL_TYPES:
        out = _line_views(body)
    else:
        start = body.lstrip()[:1]
        if start == b"[":
            try:
                out = _RAW_ARRAY.decode(body)
            except (msgspec.DecodeError, RecursionError):
                return None
        elif start == b"{":
            out = [body]  # or JSON lines: then the event decoder refuses it and `documents` reads the lines
        else:
            return None
    return out if len(out) <= max_documents else None


_BLANK = frozenset(b" \t\r\n\f\v")


class Lines(list):  # type: ignore[type-arg]
    """The lines of a body as views of it, with the body and where each line starts in it."""

    __slots__ = ("body", "starts")


def _line_views(body: bytes) -> Lines:
    """The lines of a body that are not blank, as views of it (`bytes.split` would copy each line)."""
    out = Lines()
    out.body, out.starts = body, []
    view, find = memoryview(body), body.find
    start, n = 0, len(body)
    while start < n:
        end = find(b"\n", start)
        if end < 0:
            end = n
        if end > start and (body[start] not in _BLANK or body[start:end].strip()):
            out.append(view[start:end])
            out.starts.append(start)
        start = end + 1
    return out


def documents(body: bytes, content_type: str | None, max_documents: int) -> list[Document]:
    """The documents of a body: a JSON object, a JSON array of them, or JSON lines (by Content-Type, or
    when the body is not one JSON value but has several lines)."""
    media = _checked_media(content_type)
    if media not in JSONL_TYPES:
        try:
            value = _loads(body)
        except orjson.JSONDecodeError as e:
            if body.lstrip()[:1] == b"[":
                raise BodyError(400, f"malformed JSON array: {e}") from None
            if b"\n" not in body.strip():
                raise BodyError(400, f"malformed JSON: {e}") from None
        else:
            if isinstance(value, list):
                if len(value) > max_documents:
                    raise BodyError(413, f"more than {max_documents} events in one request")
                return [Document(i, v) for i, v in enumerate(value)]
            return [Document(0, value)]
    return list(_lines(body, max_documents))


def _lines(body: bytes, max_documents: int) -> Iterator[Document]:
    index = 0
    for number, line in enumerate(body.split(b"\n"), 1):
        if not line.strip():
            continue
        if index >= max_documents:
            raise BodyError(413, f"more than {max_documents} events in one request")
        try:
            yield Document(index, _loads(line), line=number)
        except orjson.JSONDecodeError as e:
            yield Document(index, error=f"line {number}: malformed JSON: {e}", line=number)
        index += 1


def _loads(text: bytes) -> Any:
    """orjson; for text with `\\udcXX` escapes (names that are not UTF-8, as the agent writes them), which
    orjson refuses, `opencws.model.jsontext` (its lone surrogates come back as they were sent)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        if b"\\ud" not in text and b"\\uD" not in text:
            raise
        return jsontext.loads(text)  # raises orjson's error when the standard library refuses it too


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests objects/arrays deeper than `limit` levels."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > limit:
            return True
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values() if isinstance(x, dict | list))
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v if isinstance(x, dict | list))
    return False
