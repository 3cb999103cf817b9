"""The HTTP reporter's batch bodies: JSON lines compressed with zstd (the default) or gzip, and back.

A body's coding is known from its first bytes (zstd frames start with 28 b5 2f fd, gzip members with 1f 8b), so
a body needs no label: a batch spooled by an older agent (gzip) is replayed with its own `Content-Encoding`.
"""

from __future__ import annotations

import zlib

import zstandard

ZSTD = "zstd"
GZIP = "gzip"
CODINGS = (ZSTD, GZIP)
"""The values of the `http.compression` setting, the default first."""

ZSTD_LEVEL = 3
"""`opencws bench reporter`, two runs at load average 2.2-2.8 (a batch of 2,000 events of the realistic mix,
9.3 KB each; CPU time): level 3 compresses 194:1 at 162,000-172,000 events/s of a core, 3.6-4.9x gzip level 3
(24:1 at 33,000-48,000), and the backend decodes it in 0.9-1.6 µs an event (gzip: 17-22 µs). Levels 1 and 2
are barely faster (182,000-200,000) for 130:1 and 163:1 and decode no faster; level 6 (247:1) is 2.7x slower."""
GZIP_LEVEL = 3
"""`opencws bench reporter`, the realistic event mix (9.3 KB an event): level 3 compresses 24:1 at about 53,000
events/s of a core, as fast as levels 1 and 2 (21:1, 23:1); level 6 45:1 at 29,000."""

_MAGIC = {b"\x28\xb5\x2f\xfd": ZSTD, b"\x1f\x8b": GZIP}
_GROUP = 32
"""Lines joined at a time for the compressor (about 300 KB): joining a whole batch first (18 MB) cost as much as
compressing it with zstd (a fresh buffer's page faults, then read again from memory, not from the cache)."""


class BatchCodingError(ValueError):
    """A body that is neither zstd nor gzip, or that does not decompress."""


def compress(lines: list[bytes], coding: str, level: int | None = None) -> bytes:
    """The body of a batch: its lines, each ended by a newline, compressed with `coding` at its level (or
    `level`). zstd: one frame that states its size, so that the backend decodes it in one read."""
    if coding == ZSTD:
        # A compressor per call: bodies are compressed on the sender's thread and, when it is held up, on the
        # pipeline's (a ZstdCompressor is not to be shared between threads); making one costs microseconds.
        size = sum(map(len, lines)) + len(lines)
        c = zstandard.ZstdCompressor(level=level or ZSTD_LEVEL).compressobj(size=size)
    elif coding == GZIP:
        c = zlib.compressobj(level or GZIP_LEVEL, zlib.DEFLATED, 31)
    else:
        raise ValueError(f"unknown compression {coding!r} (expected {' or '.join(CODINGS)})")
    parts = [c.compress(b"\n".join([*lines[i:i + _GROUP], b""])) for i in range(0, len(lines), _GROUP)]
    parts.append(c.flush())
    return b"".join(parts)


def coding_of(body: bytes) -> str:
    """`zstd` or `gzip`, from the body's first bytes."""
    for magic, coding in _MAGIC.items():
        if body.startswith(magic):
            return coding
    raise BatchCodingError(f"neither zstd nor gzip (it starts with {body[:4].hex(' ') or 'nothing'})")


def decompress(body: bytes) -> bytes:
    """A body of this agent (or of an older one, gzip) → its JSON lines; `BatchCodingError` when it is not one."""
    coding = coding_of(body)
    try:
        if coding == GZIP:
            return zlib.decompress(body, 31)
        out, rest = [], body
        while rest:  # several frames are one stream
            d = zstandard.ZstdDecompressor().decompressobj()
            out.append(d.decompress(rest))
            if not d.eof:  # (a stream_reader would stop there without a word)
                raise BatchCodingError("a zstd body cut short")
            rest = d.unused_data
        return b"".join(out)
    except (zstandard.ZstdError, zlib.error) as e:
        raise BatchCodingError(f"a {coding} body that does not decompress: {e}") from None


def lines_of(body: bytes) -> list[bytes]:
    """The JSON lines of a body, empty ones left out."""
    return [x for x in decompress(body).split(b"\n") if x]


def recoded(body: bytes, coding: str) -> bytes:
    """The same lines in another coding (a backend that refused zstd gets gzip)."""
    return body if coding_of(body) == coding else compress(lines_of(body), coding)
