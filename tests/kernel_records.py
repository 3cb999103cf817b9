"""Kernel records made by hand, as the probe's ring buffer holds them (no kernel needed): for decoder tests and
for what the agent builds from decoded events."""

from __future__ import annotations

from opencws.probe import records as r
from opencws.probe.eventtypes import EventType

FILE_EVENT_KINDS = [
    (EventType.OPEN, b"", b"", 257), (EventType.CHMOD, b"", b"", 90), (EventType.CHOWN, b"", b"", 92),
    (EventType.LINK, b"/d/\xff\xfe", b"", 86), (EventType.RENAME, b"/b", b"", 316),
    (EventType.UNLINK, b"", b"", 263), (EventType.RMDIR, b"", b"", 84), (EventType.MKDIR, b"", b"", 83),
    (EventType.UTIMES, b"", b"", 280), (EventType.SETXATTR, b"", b"user.x", 188),
    (EventType.REMOVEXATTR, b"", b"noname", 197), (EventType.MOUNT, b"/", b"tmpfs", 165),
    (EventType.UMOUNT, b"", b"", 166), (EventType.SELINUX, b"", b"1", 1),
]
"""Each file event type with a record that exercises it: (type, second path, extra bytes, syscall number)."""


def header(kind: int, etype: int, size: int, flags: int = 0) -> bytes:
    # every field of a width its own value (pid, tid, ppid, uid, gid...): a decoder swapping two shows
    return r.HEADER.pack(kind, etype, size, 123, 10, 11, 77, 12, flags, 1013, 1014, b"proc\0")


def file_info(path: bytes, flags: int = r.FI_PRESENT | r.FI_INODE, resolved: int | None = None,
              seed: int = 0) -> tuple:
    """A file_info record, each number its own (`seed` moves them all: the other file of a record)."""
    return (42 + seed, 31 + seed, 32 + seed, 33 + seed, 0o100644 + seed, 1001 + seed, 1002 + seed, 27 + seed,
            (254 << 20) | (1 + seed), 3 + seed, flags, 5 + seed, len(path),
            len(path) if resolved is None else resolved, 9 + seed, b"ext4\0", 7000 + seed, 0)


NO_FILE = (0,) * 12 + (0, 0, 0, b"", 0, 0)
"""An unused file_info slot."""


def file_record(etype: int, p0: bytes, p1: bytes = b"", extra: bytes = b"", *, nr: int = 257,
                flags_arg: int = 0, f0: tuple | None = None, size: int | None = None, retval: int = 0) -> bytes:
    f1 = file_info(p1, seed=100) if p1 else NO_FILE
    body = r.FILE_BODY.pack(retval, nr, flags_arg, 0o600, 0, 0, len(extra), 0, 0, *(f0 or file_info(p0)), *f1)
    tail = p0 + p1 + extra
    total = r.HEADER.size + len(body) + len(tail)
    return header(r.REC_FILE, etype, size if size is not None else total) + body + tail


def with_dd(data: bytes, span: int, trace: int) -> bytes:
    """The record with a dd trailer (a thread in a span): HF_DD set, the size grown by the trailer."""
    h = list(r.HEADER.unpack_from(data))
    h[2] += r.DD_TRAILER.size
    h[8] |= r.HF_DD
    return r.HEADER.pack(*h) + data[r.HEADER.size:] + r.DD_TRAILER.pack(span, trace)
