"""zstd bodies (`Content-Encoding: zstd`, RFC 8878) decoded without trusting them.

A zstd frame may state its content size (a bomb of 1.6 KB can state 50 MiB), and python-zstandard's one-shot
`decompress` allocates what the frame states, whatever `max_output_size` says; its `stream_reader` stops quietly
at a truncated frame. So a body is read in two steps:

1. its frames are walked (headers and block headers only, no decoding): a frame cut short, bytes after the last
   frame that are not one, a reserved bit or block type, or a window over `MAX_WINDOW_BYTES` is a `Refused` 400;
   content sizes stated above the limit are a 413 before anything is decoded;
2. it is decoded through `stream_reader(read_across_frames=True)` in reads bounded by the limit (+1 byte to see
   it passed), so that a frame that states no size (a streaming encoder's) still never yields more than that.

Several frames one after the other are one stream (RFC 8878, 3.1); skippable frames are allowed and yield nothing.
"""

from __future__ import annotations

import zstandard

MAGIC = b"\x28\xb5\x2f\xfd"
"""A zstd frame starts with these bytes (0xFD2FB528 little-endian)."""
_MAGIC_INT = 0xFD2FB528
_SKIPPABLE = 0x184D2A50  # the 16 magic numbers 0x184D2A50..5F
MAX_WINDOW_BYTES = 8 << 20
"""The largest window a frame may need: RFC 9659 (zstd as an HTTP content coding) bounds it to 8 MiB; the
decoder's memory is about one window, whatever the body's size."""
MAX_FRAMES = 10_000
"""Frames (skippable ones included) in one body: a client sends one, a seekable archive a few per MiB; 16 MiB of
empty frames (9 bytes each) would otherwise cost a walk of 1.9 million turns (2.6 s of a core)."""
_MAX_BLOCK = 128 << 10
_READ_STEP = 1 << 20
"""Each read of a body whose frames do not all state their size: the output grows by this much at most."""
_DID_BYTES = (0, 1, 2, 4)
_FCS_BYTES = (0, 2, 4, 8)  # flag 0: 1 byte if Single_Segment


class Refused(Exception):
    """Why a body is refused, with its HTTP status (400 malformed, 413 too large once decompressed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def decompress(body: bytes, max_bytes: int) -> bytes:
    """The body's content, at most `max_bytes` (413 past it, never allocated); `Refused` with why otherwise."""
    stated = stated_size(body, max_bytes)
    reader = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW_BYTES).stream_reader(
        body, read_across_frames=True)
    try:
        if stated is not None:  # the agent's bodies: one read of exactly that size, then nothing more
            out = reader.read(stated)
            if len(out) != stated or reader.read(1):  # the decoder checks each frame's size: a defect otherwise
                raise Refused(400, f"invalid zstd body: its frames do not hold the {stated} bytes they state")
            return out
        parts: list[bytes] = []
        got, limit = 0, max_bytes + 1
        while got < limit:
            chunk = reader.read(min(_READ_STEP, limit - got))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
    except zstandard.ZstdError as e:
        raise Refused(400, f"invalid zstd body: {str(e).removeprefix('zstd decompress error: ')}") from None
    if got > max_bytes:
        raise Refused(413, f"the body is larger than {max_bytes} bytes once decompressed")
    return parts[0] if len(parts) == 1 else b"".join(parts)  # b"" when there are none


def stated_size(body: bytes, max_bytes: int) -> int | None:
    """The content size the frames state together (None when a frame states none), once the frames are
    walked: `Refused` 400 when the body is not whole zstd frames, 413 as soon as the sizes stated so far pass
    `max_bytes`."""
    n = len(body)
    if n == 0:
        raise Refused(400, "invalid zstd body: empty (not even one frame)")
    total: int | None = 0
    pos = frame = 0
    while pos < n:
        if frame == MAX_FRAMES:
            raise Refused(400, f"invalid zstd body: more than {MAX_FRAMES} frames")
        if n - pos < 4:
            raise _garbage(body, pos, frame)
        magic = int.from_bytes(body[pos:pos + 4], "little")
        if magic == _MAGIC_INT:
            end, size, window = _frame(body, pos, frame)
            if size is None:
                total = None
            elif total is not None:
                total += size
                if total > max_bytes:
                    raise Refused(413, f"the body is larger than {max_bytes} bytes once decompressed (its zstd "
                                       f"frames state {total} bytes at least)")
            if window > MAX_WINDOW_BYTES:
                raise Refused(400, f"invalid zstd body: frame {frame + 1} needs a window of {window} bytes (at "
                                   f"most {MAX_WINDOW_BYTES}: RFC 9659; zstd levels up to 19 stay within it)")
            pos = end
        elif magic & 0xFFFFFFF0 == _SKIPPABLE:
            end = pos + 8 + int.from_bytes(body[pos + 4:pos + 8], "little")
            if end > n:
                raise _truncated(frame, pos, "(a skippable frame)")
            pos = end
        else:
            raise _garbage(body, pos, frame)
        frame += 1
    return total


def _frame(body: bytes, start: int, frame: int) -> tuple[int, int | None, int]:
    """One zstd frame at `start`: (where it ends, the content size it states or None, its window)."""
    n = len(body)
    p = start + 4
    if p >= n:
        raise _truncated(frame, start, "in its header")
    fhd = body[p]
    p += 1
    fcs_flag, single, checksum = fhd >> 6, fhd >> 5 & 1, fhd >> 2 & 1
    if fhd & 0x08:
        raise Refused(400, f"invalid zstd body: frame {frame + 1} (byte {start}) sets a reserved bit")
    window = 0
    if not single:
        if p >= n:
            raise _truncated(frame, start, "in its header")
        exponent, mantissa = body[p] >> 3, body[p] & 7
        base = 1 << (10 + exponent)
        window = base + (base >> 3) * mantissa
        p += 1
    p += _DID_BYTES[fhd & 3]
    fcs_bytes = 1 if single and fcs_flag == 0 else _FCS_BYTES[fcs_flag]
    if p + fcs_bytes > n:
        raise _truncated(frame, start, "in its header")
    size: int | None = None
    if fcs_bytes:
        size = int.from_bytes(body[p:p + fcs_bytes], "little") + (256 if fcs_bytes == 2 else 0)
        p += fcs_bytes
    if single:  # the whole content is the window
        window = size or 0
    while True:
        if p + 3 > n:
            raise _truncated(frame, start, "(a block header is missing)")
        header = body[p] | body[p + 1] << 8 | body[p + 2] << 16
        last, kind, block = header & 1, header >> 1 & 3, header >> 3
        p += 3
        if kind == 3:
            raise Refused(400, f"invalid zstd body: frame {frame + 1} has a block of the reserved type (byte {p - 3})")
        if block > _MAX_BLOCK:
            raise Refused(400, f"invalid zstd body: frame {frame + 1} has a block of {block} bytes (at most "
                               f"{_MAX_BLOCK}, byte {p - 3})")
        p += 1 if kind == 1 else block
        if p > n:
            raise _truncated(frame, start, "(a block is cut)")
        if last:
            break
    if checksum:
        p += 4
        if p > n:
            raise _truncated(frame, start, "(its checksum is cut)")
    return p, size, window


def _truncated(frame: int, start: int, where: str) -> Refused:
    return Refused(400, f"invalid zstd body: truncated: frame {frame + 1} (from byte {start}) ends early {where}")


def _garbage(body: bytes, pos: int, frame: int) -> Refused:
    if frame == 0:
        return Refused(400, f"invalid zstd body: not a zstd frame (it starts with {body[:4].hex(' ')}, not "
                            f"{MAGIC.hex(' ')})")
    return Refused(400, f"invalid zstd body: {len(body) - pos} bytes after frame {frame} (from byte {pos}) are "
                        "not a zstd frame")
