"""Fixed record layouts of the ring buffer (mirror of bpf/probe.h) and their decoders.

A record is a 64-byte header, a fixed body chosen by `kind`, then variable bytes whose lengths the body
gives. Anything inconsistent raises DecodeError with the reason; the reader counts those, never crashes.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from opencws.probe import events as ev
from opencws.probe.errors import DecodeError
from opencws.probe.eventtypes import EventType
from opencws.probe.syscalls import I386_NAME_BY_NR, IO_URING_OPS, NAME_BY_NR

# record kinds
REC_FILE, REC_EXEC, REC_FORK, REC_EXIT, REC_CRED, REC_BPF, REC_GROUPS = 1, 2, 3, 4, 5, 6, 7

# file_info.flags
FI_PRESENT = 1 << 0
FI_INODE = 1 << 1
FI_NEGATIVE = 1 << 2
FI_INCOMPLETE = 1 << 3
FI_TRUNCATED = 1 << 4
FI_UPPER_LAYER = 1 << 5
FI_NO_USER_PATH = 1 << 6
FI_SYMLINK = 1 << 7
FI_NOT_CACHED = 1 << 8
FI_BAD_FD = 1 << 9
FI_NOT_CAPTURED = 1 << 11
FI_RAW_STRING = 1 << 12
FI_REWRITTEN = 1 << 13
FI_OWNER_UNKNOWN = 1 << 14

HF_ARGV_TRUNCATED = 1 << 0
HF_ENVP_TRUNCATED = 1 << 1
HF_CREDS_BEFORE_UNKNOWN = 1 << 2
HF_IN_CHROOT = 1 << 3
HF_I386 = 1 << 4
HF_IO_URING = 1 << 5
HF_SQPOLL = 1 << 6
HF_DD = 1 << 16
"""The record ends with a dd trailer (bpf/ddcontext.h): the thread's span id and the low 64 bits of its trace id."""
DD_TRAILER = struct.Struct("<QQ")
BPF_HELPERS_INCOMPLETE = 1 << 0

PATH_MAX = 4095
EXTRA_MAX = 255
UTIME_NOW = (1 << 64) - 1
UTIME_OMIT = (1 << 64) - 2

_HEADER_FMT = "HHIQIIQIIII16s"
_FILE_INFO_FMT = "QQQQIIIIIIIIHHI16sII"
_CREDS_FMT = "8I3Q"
HEADER = struct.Struct("<" + _HEADER_FMT)
FILE_INFO = struct.Struct("<" + _FILE_INFO_FMT)
CREDS = struct.Struct("<" + _CREDS_FMT)
FILE_BODY = struct.Struct("<qIIIIIIQQ" + _FILE_INFO_FMT * 2)
EXEC_BODY = struct.Struct("<" + _FILE_INFO_FMT + _CREDS_FMT + "IIIIQ128s64s" + _FILE_INFO_FMT)
FORK_BODY = struct.Struct("<IIQQ" + _CREDS_FMT + "128s64s")
EXIT_BODY = struct.Struct("<II")
CRED_BODY = struct.Struct("<qII" + _CREDS_FMT * 2)
BPF_BODY = struct.Struct("<qIIIIII4Q16s")
GROUPS_MAX = 64
GROUPS_BODY = struct.Struct(f"<qII{GROUPS_MAX}I")

_FI_N = 18
"""Fields of a file_info in an unpacked tuple."""
assert HEADER.size == 64 and FILE_INFO.size == 96 and CREDS.size == 56 and len(FILE_INFO.unpack(bytes(96))) == _FI_N
assert FILE_BODY.size == 240 and EXEC_BODY.size == 464 and FORK_BODY.size == 272
assert EXIT_BODY.size == 8 and CRED_BODY.size == 128 and BPF_BODY.size == 80 and GROUPS_BODY.size == 272

BPF_CMDS = (
    "BPF_MAP_CREATE", "BPF_MAP_LOOKUP_ELEM", "BPF_MAP_UPDATE_ELEM", "BPF_MAP_DELETE_ELEM",
    "BPF_MAP_GET_NEXT_KEY", "BPF_PROG_LOAD", "BPF_OBJ_PIN", "BPF_OBJ_GET", "BPF_PROG_ATTACH",
    "BPF_PROG_DETACH", "BPF_PROG_TEST_RUN", "BPF_PROG_GET_NEXT_ID", "BPF_MAP_GET_NEXT_ID",
    "BPF_PROG_GET_FD_BY_ID", "BPF_MAP_GET_FD_BY_ID", "BPF_OBJ_GET_INFO_BY_FD", "BPF_PROG_QUERY",
    "BPF_RAW_TRACEPOINT_OPEN", "BPF_BTF_LOAD", "BPF_BTF_GET_FD_BY_ID", "BPF_TASK_FD_QUERY",
    "BPF_MAP_LOOKUP_AND_DELETE_ELEM", "BPF_MAP_FREEZE", "BPF_BTF_GET_NEXT_ID", "BPF_MAP_LOOKUP_BATCH",
    "BPF_MAP_LOOKUP_AND_DELETE_BATCH", "BPF_MAP_UPDATE_BATCH", "BPF_MAP_DELETE_BATCH", "BPF_LINK_CREATE",
    "BPF_LINK_UPDATE", "BPF_LINK_GET_FD_BY_ID", "BPF_LINK_GET_NEXT_ID", "BPF_ENABLE_STATS",
    "BPF_ITER_CREATE", "BPF_LINK_DETACH", "BPF_PROG_BIND_MAP", "BPF_TOKEN_CREATE",
)

_FILE_TYPES = {
    EventType.OPEN, EventType.CHMOD, EventType.CHOWN, EventType.LINK, EventType.RENAME, EventType.UNLINK,
    EventType.RMDIR, EventType.MKDIR, EventType.UTIMES, EventType.SETXATTR, EventType.REMOVEXATTR,
    EventType.MOUNT, EventType.UMOUNT, EventType.SELINUX, EventType.MKNOD, EventType.SYMLINK,
}
_CRED_TYPES = {EventType.SETUID, EventType.SETGID, EventType.CAPSET}
_KIND_OF_TYPE = {
    **{t: REC_FILE for t in _FILE_TYPES},
    **{t: REC_CRED for t in _CRED_TYPES},
    EventType.EXEC: REC_EXEC, EventType.FORK: REC_FORK, EventType.EXIT: REC_EXIT, EventType.BPF: REC_BPF,
    EventType.SETGROUPS: REC_GROUPS,
}


def mknod_device(raw: int) -> int:
    """mknod's device argument (the kernel's new_encode_dev of 32 bits) in st_rdev's encoding."""
    return os.makedev((raw & 0xFFF00) >> 8, (raw & 0xFF) | ((raw >> 12) & 0xFFF00))


def _cstr(raw: bytes) -> str:
    """A kernel C string, losslessly (bytes that are not UTF-8 as surrogates: opencws.model.jsontext)."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def resolution_error(flags: int) -> str | None:
    """A short reason when the kernel could not resolve the path completely."""
    if flags & FI_NO_USER_PATH:
        if flags & FI_NOT_CAPTURED:
            return "io_uring operation submitted before the probe saw it (its path was not captured)"
        return "path argument unreadable"
    if flags & FI_BAD_FD:
        return "file descriptor not open"
    if flags & FI_SYMLINK:
        return "symlink not followed in the kernel"
    if flags & FI_NOT_CACHED:
        return "component not in the dentry cache"
    if flags & FI_TRUNCATED:
        return "path truncated"
    if flags & FI_INCOMPLETE:
        return "path walk incomplete"
    return None


_FILE_INFO = ev.positional_builder(ev.FileInfo)
_CREDS = ev.positional_builder(ev.Credentials)
_HEADER_FIELDS = {"pid": 4, "tid": 5, "ppid": 7, "ktime_ns": 3, "cgroup_id": 6, "uid": 9, "gid": 10}
"""Event field -> index in the HEADER tuple (comm, which needs decoding, is passed apart)."""


_DD_FIELDS = ("span_id", "trace_id")


def _B(cls: type) -> Callable[..., ev.KernelEvent]:
    """A builder taking (object to fill or None, header tuple, comm, the class's other fields in order):
    the common fields are copied from the header tuple without building an intermediate tuple."""
    names = [f.name for f in fields(cls) if not f.name.startswith("_")]
    rest = [n for n in names if n not in _HEADER_FIELDS and n not in ("comm", "in_chroot", "abi", "sqpoll", *_DD_FIELDS)]
    lines = [f"    o.{n} = h[{i}]" for n, i in _HEADER_FIELDS.items()]
    lines += ["    o.comm = comm", f"    o.in_chroot = h[8] & {HF_IN_CHROOT} != 0"]
    lines += [f"    o.{n} = None" for n in _DD_FIELDS]  # (`decode` sets them from the record's dd trailer)
    if "abi" in names:
        lines += [f"    o.abi = 'i386' if h[8] & {HF_I386} else 'x86_64'"]
    if "sqpoll" in names:
        lines += [f"    o.sqpoll = h[8] & {HF_SQPOLL} != 0"]
    lines += [f"    o.{n} = {n}" for n in rest]
    params = ", ".join(["o", "h", "comm", *rest])
    src = f"def build({params}):\n    if o is None:\n        o = new(cls)\n" + "\n".join(lines) + "\n    return o\n"
    namespace: dict = {"new": object.__new__, "cls": cls}
    exec(src, namespace)
    return namespace["build"]
_STR_CACHE: dict[bytes, str] = {}


def _cached_cstr(raw: bytes) -> str:
    """comm and fs type names repeat: decode each distinct value once."""
    s = _STR_CACHE.get(raw)
    if s is None:
        if len(_STR_CACHE) > 4096:
            _STR_CACHE.clear()
        s = _STR_CACHE[raw] = _cstr(raw)
    return s


_DEVICES: dict[int, int] = {}


def _device(dev: int) -> int:
    """The kernel's dev_t (major << 20 | minor) in st_dev's encoding."""
    d = _DEVICES.get(dev)
    if d is None:
        if len(_DEVICES) > 1024:
            _DEVICES.clear()
        d = _DEVICES[dev] = os.makedev(dev >> 20, dev & 0xFFFFF)
    return d


def _file_info(f: tuple, path: bytes) -> ev.FileInfo:
    # f: ino, atime, mtime, ctime, mode, uid, gid, mount_id, dev, nlink, flags, group_id, path_len,
    #    resolved_len, generation, fstype, i_generation, pad
    flags = f[10]
    error = resolution_error(flags) if flags & _UNRESOLVED else None
    if flags & FI_INODE:
        uid, gid = (None, None) if flags & FI_OWNER_UNKNOWN else (f[5], f[6])
        return _FILE_INFO(None, path.decode("utf-8", "surrogateescape"), f[13], error, f[0], f[4], uid, gid,
                          f[9], f[1], f[2], f[3], f[7], f[11], _device(f[8]), _cached_cstr(f[15]),
                          flags & FI_UPPER_LAYER != 0, flags & FI_NEGATIVE != 0, flags, f[14], f[16])
    return _FILE_INFO(None, path.decode("utf-8", "surrogateescape"), f[13], error, None, None, None, None, None,
                      None, None, None, f[7], f[11], _device(f[8]), _cached_cstr(f[15]),
                      flags & FI_UPPER_LAYER != 0, flags & FI_NEGATIVE != 0, flags, f[14], None)


_UNRESOLVED = FI_NO_USER_PATH | FI_BAD_FD | FI_SYMLINK | FI_NOT_CACHED | FI_TRUNCATED | FI_INCOMPLETE


def _check_path_len(n: int, what: str) -> None:
    if n > PATH_MAX:
        raise DecodeError(f"{what} length {n} exceeds {PATH_MAX}")


_OPEN, _CHMOD, _CHOWN = _B(ev.OpenEvent), _B(ev.ChmodEvent), _B(ev.ChownEvent)
_LINK, _RENAME, _UNLINK, _RMDIR = _B(ev.LinkEvent), _B(ev.RenameEvent), _B(ev.UnlinkEvent), _B(ev.RmdirEvent)
_MKDIR, _UTIMES, _SETXATTR = _B(ev.MkdirEvent), _B(ev.UtimesEvent), _B(ev.SetXattrEvent)
_REMOVEXATTR, _MOUNT, _UMOUNT = _B(ev.RemoveXattrEvent), _B(ev.MountEvent), _B(ev.UmountEvent)
_SELINUX = _B(ev.SelinuxEvent)
_MKNOD, _SYMLINK = _B(ev.MknodEvent), _B(ev.SymlinkEvent)
_SYSCALL_NAMES = dict(NAME_BY_NR)
_I386_NAMES = dict(I386_NAME_BY_NR)
_URING_NAMES = {op: f"io_uring:{name}" for op, name in IO_URING_OPS.items()}


def _syscall_name(nr: int, hflags: int) -> str:
    if hflags & HF_IO_URING:
        return _URING_NAMES.get(nr) or f"io_uring:{nr}"
    return (_I386_NAMES if hflags & HF_I386 else _SYSCALL_NAMES).get(nr) or str(nr)

_FILE_END = HEADER.size + FILE_BODY.size
_SELINUX_KINDS = {1: "bool", 2: "commit", 3: "enforce"}


def _requested(f0: tuple, f1: tuple, data: bytes, at: int, n: int) -> ev.FileInfo | None:
    """The second slot of a one-file event whose path string was rewritten: the file the string named."""
    if f0[10] & FI_REWRITTEN and f1[10] & FI_PRESENT:
        return _file_info(f1, data[at:at + n])
    return None


def _decode_file(etype: EventType, h: tuple, data: bytes, o: ev.KernelEvent | None = None) -> ev.KernelEvent:
    end = _FILE_END
    size = len(data)
    if size < end:
        raise DecodeError(f"file record of {size} bytes, body needs {end}")
    b = FILE_BODY.unpack_from(data, HEADER.size)
    retval, nr, flags_arg, mode_arg, uid_arg, gid_arg, extra_len, atime_arg, mtime_arg = b[:9]
    f0, f1 = b[9:9 + _FI_N], b[9 + _FI_N:9 + 2 * _FI_N]
    l0, l1 = f0[12], f1[12]
    if l0 > PATH_MAX or l1 > PATH_MAX:
        _check_path_len(l0, "path")
        _check_path_len(l1, "destination path")
    if f0[13] > l0 or f1[13] > l1:
        bad = f0 if f0[13] > l0 else f1
        raise DecodeError(f"resolved length {bad[13]} beyond path length {bad[12]}")
    if extra_len > EXTRA_MAX:
        raise DecodeError(f"extra length {extra_len} exceeds {EXTRA_MAX}")
    if end + l0 + l1 + extra_len != size:
        raise DecodeError(f"record size {size} != {end} + paths {l0}+{l1} + extra {extra_len}")
    if not f0[10] & FI_PRESENT:
        raise DecodeError("file record without a file")
    file = _file_info(f0, data[end:end + l0])
    c = _cached_cstr(h[11])
    syscall = _syscall_name(nr, h[8])
    T = EventType
    # positional order: the common fields, syscall, retval, file, then the class's own fields
    if etype == T.OPEN:
        return _OPEN(o, h, c, syscall, retval, file, flags_arg, mode_arg)
    if etype == T.CHMOD:
        return _CHMOD(o, h, c, syscall, retval, file, mode_arg, _requested(f0, f1, data, end + l0, l1))
    if etype == T.UNLINK:
        return _UNLINK(o, h, c, syscall, retval, file, flags_arg, _requested(f0, f1, data, end + l0, l1))
    other = _file_info(f1, data[end + l0:end + l0 + l1]) if f1[10] & FI_PRESENT else None
    extra = data[end + l0 + l1:]
    if etype == T.CHOWN:
        return _CHOWN(o, h, c, syscall, retval, file, _signed32(uid_arg), _signed32(gid_arg), flags_arg,
                      _requested(f0, f1, data, end + l0, l1))
    if etype == T.LINK:
        return _LINK(o, h, c, syscall, retval, file, other, flags_arg)
    if etype == T.RENAME:
        if atime_arg:  # (the overwritten inode, in the fields renames leave unused: probe.bpf.c)
            return _RENAME(o, h, c, syscall, retval, file, other, flags_arg, atime_arg, mode_arg, uid_arg, gid_arg,
                           mtime_arg)
        return _RENAME(o, h, c, syscall, retval, file, other, flags_arg, None, None, None, None, None)
    if etype == T.RMDIR:
        return _RMDIR(o, h, c, syscall, retval, file, flags_arg, _requested(f0, f1, data, end + l0, l1))
    if etype == T.MKDIR:
        return _MKDIR(o, h, c, syscall, retval, file, mode_arg, _requested(f0, f1, data, end + l0, l1))
    if etype == T.MKNOD:
        return _MKNOD(o, h, c, syscall, retval, file, mode_arg, mknod_device(uid_arg))
    if etype == T.SYMLINK:
        return _SYMLINK(o, h, c, syscall, retval, file, other.path if other is not None else "")
    if etype == T.UTIMES:
        return _UTIMES(o, h, c, syscall, retval, file,
                       None if atime_arg >= UTIME_OMIT else atime_arg,
                       None if mtime_arg >= UTIME_OMIT else mtime_arg,
                       atime_arg == UTIME_OMIT, mtime_arg == UTIME_OMIT, flags_arg,
                       _requested(f0, f1, data, end + l0, l1))
    if etype in (T.SETXATTR, T.REMOVEXATTR):
        name = extra.decode("utf-8", "surrogateescape")
        namespace = name.split(".", 1)[0] if "." in name else ""
        if etype == T.SETXATTR:
            return _SETXATTR(o, h, c, syscall, retval, file, name, namespace, flags_arg,
                             _requested(f0, f1, data, end + l0, l1))
        return _REMOVEXATTR(o, h, c, syscall, retval, file, name, namespace, _requested(f0, f1, data, end + l0, l1))
    if etype == T.MOUNT:
        return _MOUNT(o, h, c, syscall, retval, file, other, extra.decode("utf-8", "surrogateescape"), flags_arg)
    if etype == T.UMOUNT:
        return _UMOUNT(o, h, c, syscall, retval, file, flags_arg)
    if etype == T.SELINUX:
        kind = _SELINUX_KINDS.get(flags_arg)
        if kind is None:
            raise DecodeError(f"unknown selinux kind {flags_arg}")
        value = extra.split(b"\0", 1)[0].decode("utf-8", "surrogateescape").strip()
        return _SELINUX(o, h, c, syscall, retval, file, kind, file.basename if kind == "bool" else None, value)
    raise DecodeError(f"type {etype} is not a file event")


def _picker(fields: list[tuple[int, str]]) -> struct.Struct:
    """A Struct reading only these (offset, code) fields of a record."""
    fmt, pos = "<", 0
    for off, code in fields:
        fmt += f"{off - pos}x{code}" if off > pos else code
        pos = off + struct.calcsize("<" + code)
    return struct.Struct(fmt)


# ---------------------------------------------------------------------------------------------- views
# The reader's file events are views: an instance of (a subclass of) the event's class with `pid` and `file`
# set; the file's view holds the bytes the record was read from and its offset, with `path` and `inode` set;
# every other field is decoded from those bytes when read (one unpack_from). The record is checked in full
# before the view is made: a view never raises on access.

_F0 = _FILE_END - 2 * FILE_INFO.size
_F1 = _F0 + FILE_INFO.size
_FI_FLAGS, _FI_PATH_LEN = struct.calcsize("<QQQQIIIIII"), struct.calcsize("<QQQQIIIIIIII")
_FI_I_GENERATION = struct.calcsize("<QQQQIIIIIIIIHHI16s")
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_U64 = struct.Struct("<Q").unpack_from


def _get(fmt: str, off: int, convert: Callable[[Any], Any] | None = None) -> property:
    """A property reading one field at `off` from the start of the view's record (or FileInfo)."""
    unpack = struct.Struct("<" + fmt).unpack_from
    if convert is None:
        def get(self: Any) -> Any:
            return unpack(self._b, self._o + off)[0]
    else:
        def get(self: Any) -> Any:
            return convert(unpack(self._b, self._o + off)[0])
    return property(get)


def _eget(fmt: str, off: int, convert: Callable[[Any], Any] | None = None) -> property:
    """A property of a file event reading the field at `off` from the start of its record. The event keeps no
    buffer itself: its file's view has it (one reference and one offset to set per event, not two)."""
    unpack = struct.Struct("<" + fmt).unpack_from
    rel = off - _F0
    if convert is None:
        def get(self: Any) -> Any:
            f = self.file
            return unpack(f._b, f._o + rel)[0]
    else:
        def get(self: Any) -> Any:
            f = self.file
            return convert(unpack(f._b, f._o + rel)[0])
    return property(get)


def _get_if_inode(fmt: str, off: int, unread: int = 0) -> property:
    """A FileInfo field the kernel fills only with FI_INODE, and not when a flag of `unread` says it could not tell
    (None then)."""
    if off > _FI_FLAGS:
        unpack_after = _picker([(_FI_FLAGS, "I"), (off, fmt)]).unpack_from

        def get_after(self: Any) -> Any:
            flags, value = unpack_after(self._b, self._o)
            return value if flags & FI_INODE and not flags & unread else None
        return property(get_after)
    unpack = _picker([(off, fmt), (_FI_FLAGS, "I")]).unpack_from

    def get(self: Any) -> Any:
        value, flags = unpack(self._b, self._o)
        return value if flags & FI_INODE and not flags & unread else None
    return property(get)


def _flag(bit: int) -> property:
    return _get("I", _FI_FLAGS, lambda f: f & bit != 0)


class _View:
    """Equality and repr of a view are those of the dataclass it stands for (and compare with one)."""

    __slots__ = ()
    _names: tuple[str, ...] = ()
    _base: type = object

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, self._base):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._names)

    __hash__ = None  # type: ignore[assignment]  (as the dataclasses: eq without frozen)


def _view_class(cls: type, props: dict[str, property], slots: tuple[str, ...]) -> type:
    # __init__: object's, so that `view()` makes an empty one (cheaper than object.__new__(view))
    view = type(cls.__name__, (_View, cls), {"__slots__": slots, "__init__": object.__init__, **props})
    view.__qualname__ = cls.__qualname__
    view.__module__ = __name__
    view.__doc__ = f"A view over the bytes of a record: {cls.__name__}, its fields decoded on access."
    view._names = tuple(f.name for f in fields(cls))
    view._base = cls
    return view


_FILE_INFO_VIEW = _view_class(ev.FileInfo, {
    "resolved_len": _get("H", _FI_PATH_LEN + 2),
    "path_resolution_error": _get("I", _FI_FLAGS, lambda f: resolution_error(f) if f & _UNRESOLVED else None),
    "access_time_ns": _get_if_inode("Q", 8),
    "modification_time_ns": _get_if_inode("Q", 16),
    "change_time_ns": _get_if_inode("Q", 24),
    "mode": _get_if_inode("I", 32),
    "uid": _get_if_inode("I", 36, FI_OWNER_UNKNOWN),
    "gid": _get_if_inode("I", 40, FI_OWNER_UNKNOWN),
    "mount_id": _get("I", 44),
    "device": _get("I", 48, _device),
    "nlink": _get_if_inode("I", 52),
    "flags": _get("I", _FI_FLAGS),
    "group_id": _get("I", 60),
    "fs_type": _get("16s", 72, _cached_cstr),
    "generation": _get("I", _FI_PATH_LEN + 4),
    "inode_generation": _get_if_inode("I", _FI_I_GENERATION),
    "in_upper_layer": _flag(FI_UPPER_LAYER),
    "negative": _flag(FI_NEGATIVE),
}, ("_b", "_o"))
"""FileInfo over a file_info in a record: `path` and `inode` (slots) are set when the view is made, the other
fields decoded when read."""


_PATHS: dict[bytes, str] = {}
"""Decoded paths by their bytes: the same files come back again and again (bounded: cleared when full)."""


def _path(raw: bytes) -> str:
    s = _PATHS.get(raw)
    if s is None:
        if len(_PATHS) >= 8192:
            _PATHS.clear()
        s = _PATHS[raw] = raw.decode("utf-8", "surrogateescape")
    return s


_INODE_FLAGS = _picker([(0, "Q"), (_FI_FLAGS, "I"), (_FI_PATH_LEN, "H")]).unpack_from


def _file_view(b: bytes, fi: int, path_at: int) -> ev.FileInfo:
    ino, flags, n = _INODE_FLAGS(b, fi)
    f = _FILE_INFO_VIEW()
    f._b = b
    f._o = fi
    f.path = _path(b[path_at:path_at + n])
    f.inode = ino if flags & FI_INODE else None
    return f


def _other_file(self: Any) -> ev.FileInfo | None:
    """The second file_info (a rename's or link's destination, a mount's new root), when present."""
    b, o = self.file._b, self.file._o - _F0
    if not _U32(b, o + _F1 + _FI_FLAGS)[0] & FI_PRESENT:
        return None
    return _file_view(b, o + _F1, o + _FILE_END + _U16(b, o + _F0 + _FI_PATH_LEN)[0])


def _requested_view(self: Any) -> ev.FileInfo | None:
    """A one-file event's requested_file: the second slot, when the first says the string was rewritten."""
    if not _U32(self.file._b, self.file._o + _FI_FLAGS)[0] & FI_REWRITTEN:
        return None
    return _other_file(self)


def _target(self: Any) -> str:
    """A symlink's target: the second slot's string, as the process passed it."""
    other = _other_file(self)
    return other.path if other is not None else ""


_EXTRA_LENS = _picker([(HEADER.size + 28, "I"), (_F0 + _FI_PATH_LEN, "H"), (_F1 + _FI_PATH_LEN, "H")])


def _extra(self: Any) -> str:
    """The variable bytes after the paths (an xattr name, a mount's fs type) as text."""
    b, o = self.file._b, self.file._o - _F0
    n, l0, l1 = _EXTRA_LENS.unpack_from(b, o)
    start = o + _FILE_END + l0 + l1
    return b[start:start + n].decode("utf-8", "surrogateescape")


def _xattr_namespace(self: Any) -> str:
    name = self.name
    return name.split(".", 1)[0] if "." in name else ""


_B0 = HEADER.size  # the file body


def _overwritten(fmt: str, off: int) -> property:
    """A field of a rename's overwritten inode (None when there was none: its inode number, at _B0 + 32, is 0)."""
    unpack = struct.Struct("<" + fmt).unpack_from

    def get(self: Any) -> Any:
        f = self.file
        base = f._o - _F0
        if not _U64(f._b, base + _B0 + 32)[0]:
            return None
        return unpack(f._b, base + off)[0]
    return property(get)


_HFLAGS_NR = _picker([(36, "I"), (_B0 + 8, "I")]).unpack_from


def _view_syscall(self: Any) -> str:
    f = self.file
    hflags, nr = _HFLAGS_NR(f._b, f._o - _F0)
    return _syscall_name(nr, hflags)

_HFLAGS_SIZE = _picker([(4, "I"), (36, "I")]).unpack_from


def _dd_field(index: int) -> property:
    """span_id (0) or trace_id (1) of a view: from the record's dd trailer, None without one."""
    def get(self: Any) -> Any:
        f = self.file
        start = f._o - _F0
        size, hflags = _HFLAGS_SIZE(f._b, start)
        if not hflags & HF_DD:
            return None
        return DD_TRAILER.unpack_from(f._b, start + size - DD_TRAILER.size)[index]
    return property(get)


_COMMON = {
    "span_id": _dd_field(0), "trace_id": _dd_field(1),
    "tid": _eget("I", 20), "ppid": _eget("I", 32), "ktime_ns": _eget("Q", 8), "cgroup_id": _eget("Q", 24),
    "uid": _eget("I", 40), "gid": _eget("I", 44), "comm": _eget("16s", 48, _cached_cstr),
    "in_chroot": _eget("I", 36, lambda f: f & HF_IN_CHROOT != 0),
    "syscall": property(_view_syscall),
    "abi": _eget("I", 36, lambda f: "i386" if f & HF_I386 else "x86_64"),
    "sqpoll": _eget("I", 36, lambda f: f & HF_SQPOLL != 0),
    "retval": _eget("q", _B0),
}
_FLAGS_ARG, _MODE_ARG = _eget("I", _B0 + 12), _eget("I", _B0 + 16)
_OWN: dict[EventType, dict[str, property]] = {
    EventType.OPEN: {"flags": _FLAGS_ARG, "mode": _MODE_ARG},
    EventType.CHMOD: {"mode": _MODE_ARG, "requested_file": property(_requested_view)},
    EventType.MKDIR: {"mode": _MODE_ARG, "requested_file": property(_requested_view)},
    EventType.CHOWN: {"new_uid": _eget("I", _B0 + 20, lambda v: _signed32(v)),
                      "new_gid": _eget("I", _B0 + 24, lambda v: _signed32(v)), "flags": _FLAGS_ARG,
                      "requested_file": property(_requested_view)},
    EventType.LINK: {"destination": property(_other_file), "flags": _FLAGS_ARG},
    EventType.RENAME: {"destination": property(_other_file), "flags": _FLAGS_ARG,
                       "overwritten_inode": _overwritten("Q", _B0 + 32), "overwritten_mode": _overwritten("I", _B0 + 16),
                       "overwritten_uid": _overwritten("I", _B0 + 20), "overwritten_gid": _overwritten("I", _B0 + 24),
                       "overwritten_nlink": _overwritten("Q", _B0 + 40)},
    EventType.UNLINK: {"flags": _FLAGS_ARG, "requested_file": property(_requested_view)},
    EventType.RMDIR: {"flags": _FLAGS_ARG, "requested_file": property(_requested_view)},
    EventType.UMOUNT: {"flags": _FLAGS_ARG},
    EventType.UTIMES: {
        "access_time_ns": _eget("Q", _B0 + 32, lambda t: None if t >= UTIME_OMIT else t),
        "modification_time_ns": _eget("Q", _B0 + 40, lambda t: None if t >= UTIME_OMIT else t),
        "access_time_omitted": _eget("Q", _B0 + 32, lambda t: t == UTIME_OMIT),
        "modification_time_omitted": _eget("Q", _B0 + 40, lambda t: t == UTIME_OMIT),
        "flags": _FLAGS_ARG, "requested_file": property(_requested_view)},
    EventType.SETXATTR: {"name": property(_extra), "namespace": property(_xattr_namespace), "flags": _FLAGS_ARG,
                         "requested_file": property(_requested_view)},
    EventType.REMOVEXATTR: {"name": property(_extra), "namespace": property(_xattr_namespace),
                            "requested_file": property(_requested_view)},
    EventType.MOUNT: {"root": property(_other_file), "fs_type": property(_extra), "flags": _FLAGS_ARG},
    EventType.MKNOD: {"mode": _MODE_ARG, "device": _eget("I", _B0 + 20, mknod_device)},
    EventType.SYMLINK: {"target": property(_target)},
}
_FILE_CLASSES = {
    EventType.OPEN: ev.OpenEvent, EventType.CHMOD: ev.ChmodEvent, EventType.CHOWN: ev.ChownEvent,
    EventType.LINK: ev.LinkEvent, EventType.RENAME: ev.RenameEvent, EventType.UNLINK: ev.UnlinkEvent,
    EventType.RMDIR: ev.RmdirEvent, EventType.MKDIR: ev.MkdirEvent, EventType.UTIMES: ev.UtimesEvent,
    EventType.SETXATTR: ev.SetXattrEvent, EventType.REMOVEXATTR: ev.RemoveXattrEvent,
    EventType.MOUNT: ev.MountEvent, EventType.UMOUNT: ev.UmountEvent, EventType.MKNOD: ev.MknodEvent,
    EventType.SYMLINK: ev.SymlinkEvent,
}
FILE_VIEWS: dict[EventType, type] = {
    t: _view_class(cls, {**_COMMON, **_OWN[t]}, ()) for t, cls in _FILE_CLASSES.items()
}
"""The view class of each file event type (selinux records, rare, are decoded eagerly).

The only writable fields of a view are those the reader sets: `pid` and `file` of an event, `path`, `inode`,
`_b` and `_o` of its FileInfo; everything else is a read-only property. The compiled reader relies on it: it
leaves its views out of the cycle collector (they hold nothing that can refer back to them), so a view must not
be given a container to hold."""
_new = object.__new__

_FILE_CHECK = _picker([
    (16, "I"), (HEADER.size + 28, "I"),  # pid, extra_len
    (_F0 + _FI_FLAGS, "I"), (_F0 + _FI_PATH_LEN, "HH"), (_F1 + _FI_PATH_LEN, "HH"),
])


def _file_view_of(etype: EventType, data: bytes, dd: int = 0) -> ev.KernelEvent:
    """Check everything _decode_file would reject (it raises the reason), then make the view. dd: the size of
    the record's dd trailer (0: none)."""
    size = len(data) - dd
    view = FILE_VIEWS.get(etype)
    if view is None or size < _FILE_END:
        return _decode_file(etype, HEADER.unpack_from(data), data[:size])
    pid, extra_len, fl0, l0, r0, l1, r1 = _FILE_CHECK.unpack_from(data)
    if not (_FILE_END + l0 + l1 + extra_len == size and r0 <= l0 <= PATH_MAX and r1 <= l1 <= PATH_MAX
            and extra_len <= EXTRA_MAX and fl0 & FI_PRESENT):
        return _decode_file(etype, HEADER.unpack_from(data), data[:size])  # raises the precise DecodeError
    o = view()
    o.pid = pid
    o.file = _file_view(data, _F0, _FILE_END)
    return o


def _signed32(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


def _split_strings(raw: bytes) -> list[str]:
    if not raw:
        return []
    parts = raw.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return [os.fsdecode(p) for p in parts]


_EXEC, _FORK, _EXIT, _BPF = _B(ev.ExecEvent), _B(ev.ForkEvent), _B(ev.ExitEvent), _B(ev.BpfEvent)


def _decode_exec(etype: EventType, h: tuple, data: bytes) -> ev.KernelEvent:
    end = HEADER.size + EXEC_BODY.size
    if len(data) < end:
        raise DecodeError(f"exec record of {len(data)} bytes, body needs {end}")
    b = EXEC_BODY.unpack_from(data, HEADER.size)
    n = _FI_N
    fi, cr = b[:n], b[n:n + 11]
    argv_len, envp_len, _argv_total, _envp_total, start_time, cgroup, tty = b[n + 11:n + 18]
    interp = b[n + 18:2 * n + 18]
    plen, ilen = fi[12], interp[12]
    _check_path_len(plen, "path")
    _check_path_len(ilen, "interpreter path")
    if fi[13] > plen or interp[13] > ilen:
        raise DecodeError("resolved length beyond path length")
    if not fi[10] & FI_PRESENT:
        raise DecodeError("exec record without a file")
    if argv_len > 2047 or envp_len > 2047:
        raise DecodeError(f"argv/envp lengths {argv_len}/{envp_len} exceed 2047")
    if end + plen + ilen + argv_len + envp_len != len(data):
        raise DecodeError(f"record size {len(data)} != {end} + {plen} + {ilen} + {argv_len} + {envp_len}")
    pos = end
    path = data[pos:pos + plen]
    pos += plen
    interpreter = _file_info(interp, data[pos:pos + ilen]) if interp[10] & FI_PRESENT else None
    pos += ilen
    argv = data[pos:pos + argv_len]
    pos += argv_len
    envp = data[pos:pos + envp_len]
    return _EXEC(None, h, _cached_cstr(h[11]), _file_info(fi, path), _CREDS(None, *cr), _split_strings(argv),
                 bool(h[8] & HF_ARGV_TRUNCATED), _split_strings(envp), bool(h[8] & HF_ENVP_TRUNCATED),
                 start_time, _cached_cstr(cgroup), _cached_cstr(tty), interpreter)


def _fixed(body: struct.Struct, data: bytes, what: str) -> tuple:
    if len(data) != HEADER.size + body.size:
        raise DecodeError(f"{what} record of {len(data)} bytes, expected {HEADER.size + body.size}")
    return body.unpack_from(data, HEADER.size)


def _decode_fork(etype: EventType, h: tuple, data: bytes) -> ev.KernelEvent:
    b = _fixed(FORK_BODY, data, "fork")
    # child_pid, child_tid, child_cgroup_id, start_time_ns, credentials, cgroup, tty
    return _FORK(None, h, _cached_cstr(h[11]), b[0], b[1], b[3], b[2], _CREDS(None, *b[4:15]), _cached_cstr(b[15]),
                 _cached_cstr(b[16]))


def _decode_exit(etype: EventType, h: tuple, data: bytes) -> ev.KernelEvent:
    b = _fixed(EXIT_BODY, data, "exit")
    return _EXIT(None, h, _cached_cstr(h[11]), b[0])


_CRED_CLASSES = {EventType.SETUID: _B(ev.SetuidEvent), EventType.SETGID: _B(ev.SetgidEvent),
                 EventType.CAPSET: _B(ev.CapsetEvent)}


def _decode_cred(etype: EventType, h: tuple, data: bytes) -> ev.KernelEvent:
    b = _fixed(CRED_BODY, data, "credentials")
    cls = _CRED_CLASSES[etype]
    return cls(None, h, _cached_cstr(h[11]), _syscall_name(b[1], h[8]), b[0], _CREDS(None, *b[3:14]),
               _CREDS(None, *b[14:25]), not h[8] & HF_CREDS_BEFORE_UNKNOWN)


def _decode_bpf(etype: EventType, h: tuple, data: bytes) -> ev.KernelEvent:
    b = _fixed(BPF_BODY, data, "bpf")
    retval, cmd, map_type, prog_type, attach_type, insn_cnt, flags = b[:7]
    words, name = b[7:11], b[11]
    helpers = [w * 64 + bit for w, word in enumerate(words) for bit in range(64) if word >> bit & 1]
    is_map, is_prog = cmd == 0, cmd == 5
    # cmd, cmd_name, map_type, prog_type, attach_type, name, insn_count, helpers
    return _BPF(None, h, _cached_cstr(h[11]), "bpf", retval, cmd, BPF_CMDS[cmd] if cmd < len(BPF_CMDS) else str(cmd),
                map_type if is_map else None, prog_type if is_prog else None,
                attach_type if is_prog else None, _cstr(name) if (is_map or is_prog) else "",
                insn_cnt if is_prog else None, helpers, not flags & BPF_HELPERS_INCOMPLETE)


_SETGROUPS = _B(ev.SetgroupsEvent)


def _decode_groups(etype: EventType, h: tuple, data: bytes) -> ev.KernelEvent:
    b = _fixed(GROUPS_BODY, data, "setgroups")
    retval, nr, ngroups = b[:3]
    return _SETGROUPS(None, h, _cached_cstr(h[11]), _syscall_name(nr, h[8]), retval,
                      list(b[3:3 + min(ngroups, GROUPS_MAX)]), ngroups > GROUPS_MAX)


_DECODERS: dict[int, Callable[[EventType, tuple, bytes], ev.KernelEvent]] = {
    REC_FILE: _decode_file, REC_EXEC: _decode_exec, REC_FORK: _decode_fork, REC_EXIT: _decode_exit,
    REC_CRED: _decode_cred, REC_BPF: _decode_bpf, REC_GROUPS: _decode_groups,
}


_TYPE_BY_NUMBER = {int(t): t for t in EventType}
_KIND_TYPE_SIZE = struct.Struct("<HHI")


def decode(data: bytes, lazy: bool = True) -> ev.KernelEvent:
    """Decode one ring buffer record; DecodeError when it does not match its layout.

    lazy: file events (the high-volume kinds) keep their bytes and decode their fields on first access;
    the layout is checked here either way."""
    if len(data) < HEADER.size:
        raise DecodeError(f"record of {len(data)} bytes is shorter than the {HEADER.size}-byte header")
    kind, type_, size = _KIND_TYPE_SIZE.unpack_from(data)
    if size != len(data):
        raise DecodeError(f"header says {size} bytes, record has {len(data)}")
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise DecodeError(f"unknown record kind {kind}")
    etype = _TYPE_BY_NUMBER.get(type_)  # (an Enum call costs a microsecond)
    if etype is None:
        raise DecodeError(f"unknown event type {type_}")
    if _KIND_OF_TYPE[etype] != kind:
        raise DecodeError(f"event type {etype.event_name} cannot have record kind {kind}")
    if _U32(data, 36)[0] & HF_DD:
        return _decode_with_dd(etype, kind, data, lazy)
    if lazy and kind == REC_FILE:
        return _file_view_of(etype, data)
    return decoder(etype, HEADER.unpack_from(data), data)


def _decode_with_dd(etype: EventType, kind: int, data: bytes, lazy: bool) -> ev.KernelEvent:
    """A record ending with a dd trailer (HF_DD): the event of the bytes before it, with its ids."""
    body = len(data) - DD_TRAILER.size
    if body < HEADER.size:
        raise DecodeError(f"record of {len(data)} bytes is too short for its header and dd trailer")
    if lazy and kind == REC_FILE:
        o = _file_view_of(etype, data, DD_TRAILER.size)
        if o.file.__class__ is _FILE_INFO_VIEW:  # (a view reads its ids from the trailer)
            return o
    else:
        o = _DECODERS[kind](etype, HEADER.unpack_from(data), data[:body])
    o.span_id, o.trace_id = DD_TRAILER.unpack_from(data, body)
    return o


# ---------------------------------------------------------------------------------------------- the reader

_RING_FIELDS = {  # what the reader reads of every record: (offset from the record's ring header, format)
    "length": (0, "I"),  # the ring's length word (BUSY, DISCARD)
    "kind_type": (8, "I"),  # kind | type << 16
    "size": (8 + 4, "I"),
    "pid": (8 + 16, "I"),
    "hflags": (8 + 36, "I"),
    "extra_len": (8 + HEADER.size + 28, "I"),
    "inode": (8 + _F0, "Q"),
    "file_flags": (8 + _F0 + _FI_FLAGS, "I"),
    "path_lens": (8 + _F0 + _FI_PATH_LEN, "HH"),  # path and resolved lengths of the file
    "other_path_lens": (8 + _F1 + _FI_PATH_LEN, "HH"),  # and of the second file
}
_RING_CHECK = _picker(list(_RING_FIELDS.values()))
RING_PAD = _RING_CHECK.size
"""Bytes the reader reads from a record's start whatever its size: a region must extend this far past its end."""
assert PATH_MAX >> 4 == EXTRA_MAX == 255  # decode_ring checks both bounds at once
MAX_FILE_RECORD = 8 + _FILE_END + 2 * PATH_MAX + EXTRA_MAX
"""The largest file record with its ring header: a file record starting before `stop` ends before `end`."""
_RING_VIEWS = {REC_FILE | t << 16: view for t, view in FILE_VIEWS.items()}
_BUSY, _DISCARD = 1 << 31, 1 << 30


def decode_ring_py(buf: bytes, end: int, lazy: bool = True,
                   stop: int | None = None) -> tuple[list[ev.KernelEvent], int, list[str]]:
    """Decode the records of a copy of a BPF ring buffer's data, `buf[:end]` (each record behind the ring's
    8-byte header; `buf` extends at least RING_PAD bytes past `end`, whatever they hold), those that start
    before `stop` (default `end`; at most `end - MAX_FILE_RECORD` when the copy may cut a record).

    Returns the events, how many bytes were consumed (up to the first record not committed yet, or not
    wholly copied), and the DecodeError reasons of the records rejected. With `lazy`, file events are views
    over `buf` (a record is checked in full before its view is made); every other record is decoded from its
    own bytes by `decode`. This is the reader's hot loop: one unpack_from per record, one object per event.

    `decode_ring` is this loop compiled (_ringdecoder.c) when the extension is built; this one is the
    reference the tests hold it to, and the fallback."""
    out: list[ev.KernelEvent] = []
    append = out.append
    errors: list[str] = []
    check = _RING_CHECK.unpack_from
    views = _RING_VIEWS if lazy else {}
    file_view = _FILE_INFO_VIEW
    paths = _PATHS
    fe = _FILE_END
    at_file, at_path = 8 + _F0, 8 + _FILE_END  # from a record's ring header
    present, has_inode, discard = FI_PRESENT, FI_INODE, _DISCARD
    has_dd, dd = HF_DD, DD_TRAILER.size  # (a record of a registered thread ends with the dd trailer)
    pos = 0
    if stop is None or stop > end:
        stop = end
    while pos < stop:
        ln, kt, size, pid, hflags, extra_len, ino, fl0, l0, r0, l1, r1 = check(buf, pos)
        if ln >= discard:  # BUSY (not committed yet: stop here) or DISCARD
            if ln & _BUSY:
                break
            pos += ((ln & (_DISCARD - 1)) + 15) & ~7
            continue
        view = views.get(kt)
        # a file record of a type with a view: the checks of _decode_file (which gives the reason otherwise)
        # ((l0 | l1) >> 4 | extra_len) < 256: both paths <= PATH_MAX and extra_len <= EXTRA_MAX
        whole = pos + 8 + ln <= end
        if (view is not None and whole and size == ln == fe + l0 + l1 + extra_len + (dd if hflags & has_dd else 0)
                and ((l0 | l1) >> 4 | extra_len) < 256 and r0 <= l0 and r1 <= l1 and fl0 & present):
            # the event and its file (what nearly every consumer reads: made here, _file_view inlined)
            o = view()
            o.pid = pid
            f = o.file = file_view()
            f._b = buf
            f._o = pos + at_file
            p = pos + at_path
            raw = buf[p:p + l0]
            path = paths.get(raw)
            f.path = path if path is not None else _path(raw)
            f.inode = ino if fl0 & has_inode else None
            append(o)
        else:
            if not whole:
                break  # not wholly copied: the next read has it
            try:
                append(decode(buf[pos + 8:pos + 8 + ln], lazy))
            except DecodeError as exc:
                errors.append(str(exc))
        pos += (ln + 15) & ~7
    return out, pos, errors


_AT = {name: off for name, (off, _) in _RING_FIELDS.items()}
RING_LAYOUT = {
    "offsets": (_AT["kind_type"], _AT["size"], _AT["pid"], _AT["extra_len"], _AT["inode"], _AT["file_flags"],
                _AT["path_lens"], _AT["other_path_lens"], _FILE_END, 8 + _F0, 8 + _FILE_END, RING_PAD),
    "limits": (PATH_MAX, EXTRA_MAX, FI_PRESENT, FI_INODE),
    "views": _RING_VIEWS, "file_view": _FILE_INFO_VIEW, "event_class": ev.KernelEvent,
    "file_event_class": ev.FileEvent, "decode": decode, "decode_error": DecodeError,
    "trailer": (_AT["hflags"], HF_DD, DD_TRAILER.size),
}
"""What the compiled loop is configured with: the layout (offsets from a record's ring header) and classes."""


def _compiled_decode_ring() -> tuple[Callable[..., tuple[list[ev.KernelEvent], int, list[str]]] | None, str]:
    """The C loop configured with this module's layout and classes, or None and why it is not available."""
    try:
        from opencws.probe import _ringdecoder
    except ImportError as exc:
        return None, f"the C decoder is not built ({exc}): run scripts/setup.sh"
    try:
        _ringdecoder.configure(**RING_LAYOUT)
    except (TypeError, ValueError) as exc:  # a build older than this module
        return None, f"the C decoder does not fit this module ({exc}): run scripts/setup.sh"
    return _ringdecoder.decode_ring, "C"


decode_ring_c, DECODER = _compiled_decode_ring()
"""DECODER: "C" when the compiled loop is in use, else why not (the reader then runs decode_ring_py)."""
decode_ring = decode_ring_c or decode_ring_py


def file_record_key(event: Any, ids: bool = False) -> bytes | None:
    """What a file event's record says after its header and return value: its syscall, arguments, files and
    paths. Two events with the same key describe the same files the same way (the agent serializes such a
    file block once). `ids`: the dd trailer's span and trace ids too (two events of different spans then have
    different keys). None for an event that is not a reader's view (eagerly decoded events keep no bytes)."""
    f = getattr(event, "file", None)
    b = getattr(f, "_b", None)
    if b is None:
        return None
    start = f._o - _F0
    size, hflags = _HFLAGS_SIZE(b, start)
    if hflags & HF_DD and not ids:
        size -= DD_TRAILER.size
    return b[start + HEADER.size + 8:start + size]
