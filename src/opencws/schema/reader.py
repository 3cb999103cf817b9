"""Reading CWS events from a file or a stream: one JSON document, a JSON array, or JSON lines.

Memory stays bounded whatever the input: JSON lines are read one line at a time (a line longer than
`max_event_bytes` is reported and skipped without being held), and a JSON array is streamed element by
element with ijson. Every problem is reported at its place (line or index) and reading goes on
wherever the format allows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal

import ijson
import orjson

from opencws.model import jsontext

MAX_EVENT_BYTES = 16 * 1024 * 1024
_CHUNK = 1 << 16

Format = Literal["auto", "json", "jsonl", "array"]


@dataclass(slots=True)
class Item:
    """One document read from the input, or why it could not be read."""

    where: str  # "line 3", "index 5" or "document"
    value: Any = None
    error: str | None = None


def _skip_blank(stream: IO[bytes]) -> tuple[bytes, int]:
    """Skip leading blank input without holding it: the first non-blank chunk (from its first non-blank
    byte on, b"" at the end of the input) and how many newlines were skipped."""
    newlines = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return b"", newlines
        stripped = chunk.lstrip()
        if stripped:
            return stripped, newlines + chunk.count(b"\n", 0, len(chunk) - len(stripped))
        newlines += chunk.count(b"\n")


class _Prefixed:
    """A binary stream with some already-read bytes put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head, self._rest = head, rest

    def read(self, n: int = -1) -> bytes:
        head = self._head
        if n >= 0 and len(head) >= n:
            self._head = head[n:]
            return head[:n]
        self._head = b""
        return head + self._rest.read(n if n < 0 else n - len(head))

    def readline(self, limit: int = -1) -> bytes:
        if self._head:
            nl = self._head.find(b"\n")
            if nl >= 0 and (limit < 0 or nl + 1 <= limit):
                out, self._head = self._head[: nl + 1], self._head[nl + 1 :]
                return out
            if limit >= 0 and len(self._head) >= limit:
                out, self._head = self._head[:limit], self._head[limit:]
                return out
            out, self._head = self._head, b""
            more = self._rest.readline(-1 if limit < 0 else limit - len(out))
            return out + more
        return self._rest.readline(limit)


def _loads(data: bytes) -> tuple[Any, str | None]:
    try:
        return jsontext.loads(data), None
    except orjson.JSONDecodeError as e:
        return None, f"malformed JSON: {e}"


def _lines(stream: _Prefixed, limit: int, number: int = 0) -> Iterator[Item]:
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        number += 1
        where = f"line {number}"
        if len(line) > limit and not line.endswith(b"\n"):
            # Too long: skip the rest of the line without holding it.
            while line and not line.endswith(b"\n"):
                line = stream.readline(_CHUNK)
            yield Item(where, error=f"event larger than {limit} bytes, skipped")
            continue
        if not line.strip():
            continue
        value, error = _loads(line)
        if error and not line.endswith(b"\n"):
            error += " (truncated last line?)"
        yield Item(where, value, error)


def _array(stream: _Prefixed) -> Iterator[Item]:
    index = 0
    try:
        for value in ijson.items(stream, "item", use_float=True):
            yield Item(f"index {index}", value)
            index += 1
    except ijson.JSONError as e:
        yield Item(
            f"index {index}", error=f"malformed JSON array, reading stopped: {' '.join(str(e).split())}"
        )
    except UnicodeDecodeError:
        # (ijson turns a \udcXX escape, a byte of a kernel string that is not UTF-8, into invalid UTF-8)
        yield Item(
            f"index {index}",
            error="a string escape of a byte that is not UTF-8 (\\udcXX), which the JSON array reader cannot "
            "take; reading stopped (JSON lines carry them)",
        )


def _document(stream: _Prefixed, limit: int) -> Iterator[Item]:
    data = stream.read(limit + 1)
    if len(data) > limit:
        yield Item("document", error=f"document larger than {limit} bytes; use JSON lines or a JSON array")
        return
    value, error = _loads(data)
    yield Item("document", value, error)


def read_documents(
    stream: IO[bytes], fmt: Format = "auto", max_event_bytes: int = MAX_EVENT_BYTES
) -> Iterator[Item]:
    """Yield the documents of `stream` with their place.

    `auto` picks the format from the input: `[` starts a JSON array; a first line that is a complete
    JSON value starts JSON lines; otherwise, if the input (up to `max_event_bytes`) is one JSON document
    (pretty-printed), it is read as such, and else as JSON lines, each bad line reported.
    """
    head, skipped = _skip_blank(stream)
    if not head:
        return
    src = _Prefixed(head, stream)
    if fmt == "auto":
        if head[:1] == b"[":
            fmt = "array"
        else:
            line = src.readline(max_event_bytes + 1)
            fmt = "jsonl"
            if _loads(line)[1] is not None and line.endswith(b"\n"):
                whole = line + src.read(max_event_bytes + 1 - len(line))
                if len(whole) <= max_event_bytes and _loads(whole)[1] is None:
                    fmt = "json"
                line = whole
            src = _Prefixed(line, src)
    if fmt == "array":
        yield from _array(src)
    elif fmt == "jsonl":
        yield from _lines(src, max_event_bytes, skipped)
    else:
        yield from _document(src, max_event_bytes)
