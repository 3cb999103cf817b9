"""User and group names as a process sees them: from `/etc/passwd` and `/etc/group` under its own root.

A container has its own `/etc/passwd`: uid 1000 is `app` inside and maybe nobody on the host. So names are
read from `<root>/etc/passwd` where root is the process's root (`/proc/<pid>/root`), never through the host's
NSS (the `pwd` and `grp` modules), and the files are parsed here (the plain colon format; NIS `+`/`-` lines,
comments and malformed lines are skipped; the first line for an id wins, as getpwuid's file backend does).

The files belong to whoever controls the container, so they are read defensively: through `openat2` with
`RESOLVE_IN_ROOT` (an absolute symlink such as `etc/passwd -> /etc/shadow` resolves inside the container's
root, not the agent's), without blocking (a FIFO is refused, not waited on), regular files only, and at most
`MAX_FILE_BYTES` of each.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_FILE_BYTES = 8 << 20
"""Bytes of a passwd or group file parsed (tens of thousands of entries); beyond, lines are ignored."""

_SYS_OPENAT2 = 437  # the same number on every architecture (system calls added after 5.1 share one table)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_openat2_works = True


def open_in_root(root: str, relative: str, flags: int) -> int:
    """Open `relative` as if `root` were `/` (symlinks and `..` cannot leave it); returns a file descriptor.

    Falls back to a plain open of `root/relative` when the kernel has no openat2 (before 5.6)."""
    global _openat2_works
    if _openat2_works:
        dirfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            how = _OpenHow(flags | os.O_CLOEXEC, 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
            fd = _syscall(  # syscall(2) is variadic: every argument passed as a full register
                ctypes.c_long(_SYS_OPENAT2),
                ctypes.c_long(dirfd),
                ctypes.c_char_p(relative.encode()),
                ctypes.byref(how),
                ctypes.c_size_t(ctypes.sizeof(how)),
            )
            if fd >= 0:
                return fd
            err = ctypes.get_errno()
            if err != errno.ENOSYS:
                raise OSError(err, os.strerror(err), f"{root}/{relative}")
            _openat2_works = False
        finally:
            os.close(dirfd)
    return os.open(os.path.join(root, relative), flags | os.O_CLOEXEC)


Signature = tuple[int, int, int, int]
"""(st_dev, st_ino, st_mtime_ns, st_size) of a file: when it changes, the file is read again."""


def _signature(st: os.stat_result) -> Signature:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _file_signature(root: str, relative: str) -> Signature | None:
    try:
        fd = open_in_root(root, relative, os.O_PATH)
    except OSError:
        return None
    try:
        return _signature(os.fstat(fd))
    finally:
        os.close(fd)


def _read_file(root: str, relative: str) -> tuple[Signature | None, bytes | None]:
    """The file's signature and content; (signature or None, None) when it is missing, unreadable or not a
    regular file."""
    try:
        fd = open_in_root(root, relative, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return None, None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return _signature(st), None
        chunks, left = [], MAX_FILE_BYTES
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return _signature(st), b"".join(chunks)
    except OSError:
        return None, None
    finally:
        os.close(fd)


def parse_id_names(data: bytes, fields: int) -> dict[int, str]:
    """id -> name from a colon file whose lines have `fields` fields: name first, the id third (passwd: 7,
    group: 4). Skips comments, NIS `+`/`-` lines, lines with another number of fields, an empty name or an id
    that is not a decimal number; a line cut by `MAX_FILE_BYTES` is dropped."""
    if len(data) >= MAX_FILE_BYTES:
        data = data[: data.rfind(b"\n") + 1]
    names: dict[int, str] = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        if not line or line[0] in "#+-":
            continue
        parts = line.split(":")
        if len(parts) != fields:
            continue
        name, ident = parts[0], parts[2]
        if not name or not ident.isascii() or not ident.isdigit():
            continue
        names.setdefault(int(ident), name)
    return names


@dataclass(slots=True)
class _Root:
    checked_at: float
    passwd: Signature | None = None
    group: Signature | None = None
    users: dict[int, str] | None = None
    groups: dict[int, str] | None = None


class UserGroupResolver:
    """uid/gid -> names in a process's root, cached per root and refreshed when the files change.

    A root is keyed by what it is (st_dev and st_ino of the directory), not by its path: the many
    `/proc/<pid>/root` of one container's processes share one entry, and a dead pid's path is never used
    again (each lookup reads the files through the path it was given). The files of a root are looked at
    again at most every `check_interval` seconds (`clock`), and read again when their
    (st_dev, st_ino, st_mtime_ns, st_size) changed. At most `max_roots` roots are kept (least recently used
    dropped).
    """

    def __init__(
        self,
        *,
        check_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        max_roots: int = 256,
    ) -> None:
        self.check_interval = check_interval
        self._clock = clock
        self._max_roots = max_roots
        self._roots: OrderedDict[tuple[int, int], _Root] = OrderedDict()
        self._by_path: dict[str, tuple[float, _Root]] = {}
        """Hot path: a root path's entry, trusted without a stat for `check_interval`."""
        self._lookups = 0
        self._reloads = 0
        self._evictions = 0
        self._bad_roots = 0

    def user(self, uid: int, root: str = "/") -> str | None:
        """The name of `uid` in `<root>/etc/passwd`, or None (no such user, or no readable file)."""
        entry = self._entry(root)
        if entry is None or entry.users is None:
            return None
        return entry.users.get(uid)

    def group(self, gid: int, root: str = "/") -> str | None:
        """The name of `gid` in `<root>/etc/group`, or None (no such group, or no readable file)."""
        entry = self._entry(root)
        if entry is None or entry.groups is None:
            return None
        return entry.groups.get(gid)

    def _entry(self, root: str) -> _Root | None:
        self._lookups += 1
        hit = self._by_path.get(root)
        if hit is not None and self._clock() - hit[0] < self.check_interval:
            return hit[1]
        entry = self._entry_of_root(root)
        if entry is not None:
            if len(self._by_path) >= 4 * self._max_roots:
                self._by_path.clear()
            self._by_path[root] = (self._clock(), entry)
        return entry

    def _entry_of_root(self, root: str) -> _Root | None:
        try:
            st = os.stat(root)
        except OSError:
            self._bad_roots += 1
            return None
        key = (st.st_dev, st.st_ino)
        now = self._clock()
        entry = self._roots.get(key)
        if entry is None:
            entry = _Root(checked_at=now)
            self._load(root, entry)
            self._roots[key] = entry
            if len(self._roots) > self._max_roots:
                self._roots.popitem(last=False)
                self._evictions += 1
            return entry
        self._roots.move_to_end(key)
        if now - entry.checked_at >= self.check_interval:
            entry.checked_at = now
            if (_file_signature(root, "etc/passwd"), _file_signature(root, "etc/group")) != (
                entry.passwd,
                entry.group,
            ):
                self._load(root, entry)
        return entry

    def _load(self, root: str, entry: _Root) -> None:
        self._reloads += 1
        entry.passwd, data = _read_file(root, "etc/passwd")
        entry.users = None if data is None else parse_id_names(data, 7)
        entry.group, data = _read_file(root, "etc/group")
        entry.groups = None if data is None else parse_id_names(data, 4)

    def stats(self) -> dict[str, int]:
        return {
            "roots_cached": len(self._roots),
            "reloads": self._reloads,
            "lookups": self._lookups,
            "evictions": self._evictions,
            "unreachable_roots": self._bad_roots,
        }
