"""Where CWS events go: JSON lines on stdout (the default), stderr or a rotated file, named by an output spec.

Specs (`--output`, the config's `outputs`): `stdout`, `stderr`, `file:PATH`,
`file:PATH?max_bytes=100M&keep=5&backlog=10000` (sizes take K, M, G binary suffixes), and `http://HOST:PORT` or
`https://HOST:PORT` (a backend: `opencws.agent.http_reporter`). Every reporter keeps what its output refuses (a
bounded backlog in memory, the HTTP reporter's spool on disk) and raises `ReporterError` instead of crashing
(`opencws.agent.line_writer`).
"""

from __future__ import annotations

import io
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import parse_qsl, urlsplit

from opencws.agent.file_reporter import DEFAULT_KEEP, DEFAULT_MAX_BYTES, FileReporter
from opencws.agent.line_writer import DEFAULT_BACKLOG, LineWriter, ReporterError

__all__ = [
    "FileReporter", "Reporter", "ReporterError", "ReporterSpec", "StdoutReporter", "StreamReporter",
    "open_reporter", "parse_reporter_spec",
]

SPEC_SYNTAX = "stdout, stderr, file:PATH[?max_bytes=SIZE&keep=N&backlog=N] or http(s)://HOST:PORT"


class Reporter(Protocol):
    name: str

    def write(self, line: bytes) -> None:
        """One JSON document without its newline (the reporter adds it). May raise `ReporterError`."""

    def flush(self) -> None: ...

    def close(self) -> None: ...

    def stats(self) -> dict[str, int | str | None]: ...


class StreamReporter(LineWriter):
    """JSON lines on an already open stream (stdout, stderr, a pipe).

    Lines go straight to the stream's file descriptor (whatever the stream had buffered is flushed first), so
    that a write error is seen for exactly the lines it concerns. A reader that went away (broken pipe) is a
    `ReporterError` with EPIPE, never a traceback.
    """

    def __init__(self, stream: BinaryIO, name: str, *, backlog: int = DEFAULT_BACKLOG,
                 buffer_bytes: int | None = None):
        if buffer_bytes is None:
            buffer_bytes = 0 if _is_tty(stream) else 64 * 1024  # a person at a terminal sees each event at once
        super().__init__(name, backlog=backlog, buffer_bytes=buffer_bytes)
        self.stream = stream
        try:
            stream.flush()
            self._fd: int | None = stream.fileno()
        except (OSError, ValueError, io.UnsupportedOperation):
            self._fd = None

    def _write_parts(self, parts: list[bytes | memoryview]) -> int:
        if self._fd is not None:
            return os.writev(self._fd, parts)
        return self._write_out(memoryview(b"".join(parts)))

    def _write_out(self, data: memoryview) -> int:
        if self._fd is not None:
            return os.write(self._fd, data)
        n = self.stream.write(data)
        self.stream.flush()
        return len(data) if n is None else n

    def close(self) -> None:
        """Write what is queued; the stream itself stays open (it belongs to the process)."""
        self._drain()


class StdoutReporter(StreamReporter):
    """JSON lines on standard output."""

    def __init__(self, stream: BinaryIO | None = None, *, backlog: int = DEFAULT_BACKLOG):
        super().__init__(sys.stdout.buffer if stream is None else stream, "stdout", backlog=backlog)


def _is_tty(stream: BinaryIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError, AttributeError):
        return False


@dataclass(frozen=True)
class ReporterSpec:
    kind: str  # "stdout", "stderr", "file" or "http" (http and https)
    path: Path | None = None
    options: dict[str, int] = field(default_factory=dict)
    url: str | None = None


_SIZE = re.compile(r"(\d+)\s*([KMG]i?B?)?", re.IGNORECASE)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}
_OPTIONS = {"max_bytes": "size", "keep": "count", "backlog": "count"}


def parse_size(text: str) -> int:
    """`4096`, `64K`, `100M`, `1GiB` -> bytes (binary multiples)."""
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a size: {text!r} (expected bytes, optionally with K, M or G)")
    return int(m.group(1)) * _UNITS[(m.group(2) or "")[:1].upper()]


def parse_reporter_spec(spec: str) -> ReporterSpec:
    """Check an output spec without opening anything; `ValueError` says what is wrong with it."""
    if not isinstance(spec, str):
        raise ValueError(f"output {spec!r}: expected a string: {SPEC_SYNTAX}")
    if spec in ("stdout", "stderr"):
        return ReporterSpec(spec)
    if spec.startswith(("http://", "https://")):
        return ReporterSpec("http", url=_check_url(spec))
    kind, colon, rest = spec.partition(":")
    if not colon or kind != "file":
        raise ValueError(f"output {spec!r}: unknown output: expected {SPEC_SYNTAX}")
    path, query = rest, ""
    if "?" in rest:
        path, _, query = rest.rpartition("?")
    if not path:
        raise ValueError(f"output {spec!r}: file: needs a path: expected {SPEC_SYNTAX}")
    options: dict[str, int] = {}
    if query:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise ValueError(f"output {spec!r}: bad options {query!r}: expected NAME=VALUE joined by &") from None
        for key, value in pairs:
            if key not in _OPTIONS:
                raise ValueError(f"output {spec!r}: unknown option {key!r}: expected one of "
                                 f"{', '.join(_OPTIONS)}")
            if key in options:
                raise ValueError(f"output {spec!r}: option {key!r} given twice")
            try:
                number = parse_size(value) if _OPTIONS[key] == "size" else int(value)
            except ValueError:
                raise ValueError(f"output {spec!r}: option {key}={value!r}: expected "
                                 f"{'a size such as 100M' if _OPTIONS[key] == 'size' else 'an integer'}") from None
            minimum = 0 if key == "keep" else 1
            if number < minimum:
                raise ValueError(f"output {spec!r}: option {key}={value!r}: must be >= {minimum}")
            options[key] = number
    return ReporterSpec("file", Path(path).expanduser(), options)


def _check_url(spec: str) -> str:
    """A backend's base URL: scheme, host, optional port and path prefix; nothing else (the API key has its own
    setting, never the URL: URLs end up in logs)."""
    try:
        u = urlsplit(spec)
        u.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as e:
        raise ValueError(f"output {spec!r}: not a valid URL: {e}") from None
    if not u.hostname:
        raise ValueError(f"output {spec!r}: no host: expected {u.scheme}://HOST:PORT")
    if u.username is not None or u.password is not None:
        raise ValueError(f"output {spec!r}: no credentials in the URL: the API key goes in api_key or "
                         "OPENCWS_API_KEY")
    if u.query or u.fragment:
        raise ValueError(f"output {spec!r}: no query or fragment: HTTP settings go in the config's http section")
    return spec


def open_reporter(spec: str, *, api_key: str | None = None, http: dict[str, Any] | None = None) -> Reporter:
    """The reporter an output spec names. `ValueError` for a bad spec; `ReporterError` if the file cannot be
    opened, or the backend refuses the API key. `api_key` and `http` (the `HTTPReporter`'s keyword arguments)
    are for http(s) outputs."""
    parsed = parse_reporter_spec(spec)
    if parsed.kind == "http":
        from opencws.agent.http_reporter import HTTPReporter

        if not api_key:
            raise ValueError(f"output {spec}: needs an API key (api_key in the config, or OPENCWS_API_KEY)")
        return HTTPReporter(spec, api_key, **(http or {}))
    if parsed.kind == "stdout":
        return StdoutReporter()
    if parsed.kind == "stderr":
        return StreamReporter(sys.stderr.buffer, "stderr")
    assert parsed.path is not None
    return FileReporter(parsed.path, max_bytes=parsed.options.get("max_bytes", DEFAULT_MAX_BYTES),
                        keep=parsed.options.get("keep", DEFAULT_KEEP),
                        backlog=parsed.options.get("backlog", DEFAULT_BACKLOG))
