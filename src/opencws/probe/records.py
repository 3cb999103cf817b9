"""Fixed record layouts of the ring buffer (mirror of bpf/probe.h) and their decoders.

A record is a 64-byte header, a fixed body chosen by `kind`, then variable bytes whose lengths the body
gives. Anything inconsistent raises DecodeError with the reason; the reader counts those, never crashes.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from opencws.probe import events as ev
from opencws.probe.errors import DecodeError
from opencws.probe.eventtypes import EventType
from opencws.probe.syscalls import NAME_BY_NR

# record kinds
REC_FILE, REC_EXEC, REC_FORK, REC_EXIT, REC_CRED, REC_BPF = 1, 2, 3, 4, 5, 6

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

HF_ARGV_TRUNCATED = 1 << 0
HF_ENVP_TRUNCATED = 1 << 1

PATH_MAX = 4095
EXTRA_MAX = 255
UTIME_NOW = (1 << 64) - 1
UTIME_OMIT = (1 << 64) - 2

_HEADER_FMT = "HHIQIIQIIII16s"
_FILE_INFO_FMT = "QQQQIIIIIIIIHHI16s"
_CREDS_FMT = "8I3Q"
HEADER = struct.Struct("<" + _HEADER_FMT)
FILE_INFO = struct.Struct("<" + _FILE_INFO_FMT)
CREDS = struct.Struct("<" + _CREDS_FMT)
FILE_BODY = struct.Struct("<qIIIIIIQQ" + _FILE_INFO_FMT * 2)
EXEC_BODY = struct.Struct("<" + _FILE_INFO_FMT + _CREDS_FMT + "IIIIQ")
FORK_BODY = struct.Struct("<IIQQ" + _CREDS_FMT)
EXIT_BODY = struct.Struct("<II")
CRED_BODY = struct.Struct("<qII" + _CREDS_FMT * 2)
BPF_BODY = struct.Struct("<qIIIIII4Q16s")

assert HEADER.size == 64 and FILE_INFO.size == 88 and CREDS.size == 56
assert FILE_BODY.size == 224 and EXEC_BODY.size == 168 and FORK_BODY.size == 80
assert EXIT_BODY.size == 8 and CRED_BODY.size == 128 and BPF_BODY.size == 80

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
    EventType.MOUNT, EventType.UMOUNT, EventType.SELINUX,
}
_CRED_TYPES = {EventType.SETUID, EventType.SETGID, EventType.CAPSET}
_KIND_OF_TYPE = {
    **{t: REC_FILE for t in _FILE_TYPES},
    **{t: REC_CRED for t in _CRED_TYPES},
    EventType.EXEC: REC_EXEC, EventType.FORK: REC_FORK, EventType.EXIT: REC_EXIT, EventType.BPF: REC_BPF,
}


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def resolution_error(flags: int) -> str | None:
    """A short reason when the kernel could not resolve the path completely."""
    if flags & FI_NO_USER_PATH:
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


def _file_info(fields: tuple, path: bytes) -> ev.FileInfo:
    (ino, atime, mtime, ctime, mode, uid, gid, mount_id, dev, nlink, flags, group_id,
     _path_len, resolved_len, _pad, fstype) = fields
    has_inode = bool(flags & FI_INODE)
    return ev.FileInfo(
        path=os.fsdecode(path),
        resolved_len=resolved_len,
        path_resolution_error=resolution_error(flags),
        inode=ino if has_inode else None,
        mode=mode if has_inode else None,
        uid=uid if has_inode else None,
        gid=gid if has_inode else None,
        nlink=nlink if has_inode else None,
        access_time_ns=atime if has_inode else None,
        modification_time_ns=mtime if has_inode else None,
        change_time_ns=ctime if has_inode else None,
        mount_id=mount_id,
        group_id=group_id,
        device=os.makedev(dev >> 20, dev & 0xFFFFF),  # kernel dev_t -> the st_dev encoding
        fs_type=_cstr(fstype),
        in_upper_layer=bool(flags & FI_UPPER_LAYER),
        negative=bool(flags & FI_NEGATIVE),
        flags=flags,
    )


def _creds(f: tuple) -> ev.Credentials:
    return ev.Credentials(uid=f[0], gid=f[1], euid=f[2], egid=f[3], suid=f[4], sgid=f[5], fsuid=f[6],
                          fsgid=f[7], cap_effective=f[8], cap_permitted=f[9], cap_inheritable=f[10])


def _common(h: tuple) -> dict:
    return {"pid": h[4], "tid": h[5], "ppid": h[7], "ktime_ns": h[3], "cgroup_id": h[6], "uid": h[9],
            "gid": h[10], "comm": _cstr(h[11])}


def _check_path_len(n: int, what: str) -> None:
    if n > PATH_MAX:
        raise DecodeError(f"{what} length {n} exceeds {PATH_MAX}")


def _decode_file(etype: EventType, h: tuple, data: bytes) -> ev.KernelEvent:
    end = HEADER.size + FILE_BODY.size
    if len(data) < end:
        raise DecodeError(f"file record of {len(data)} bytes, body needs {end}")
    b = FILE_BODY.unpack_from(data, HEADER.size)
    retval, nr, flags_arg, mode_arg, uid_arg, gid_arg, extra_len, atime_arg, mtime_arg = b[:9]
    f0, f1 = b[9:25], b[25:41]
    l0, l1 = f0[12], f1[12]
    _check_path_len(l0, "path")
    _check_path_len(l1, "destination path")
    for fi, ln in ((f0, l0), (f1, l1)):
        if fi[13] > ln:
            raise DecodeError(f"resolved length {fi[13]} beyond path length {ln}")
    if extra_len > EXTRA_MAX:
        raise DecodeError(f"extra length {extra_len} exceeds {EXTRA_MAX}")
    if end + l0 + l1 + extra_len != len(data):
        raise DecodeError(f"record size {len(data)} != {end} + paths {l0}+{l1} + extra {extra_len}")
    p0 = data[end:end + l0]
    p1 = data[end + l0:end + l0 + l1]
    extra = data[end + l0 + l1:]
    if not f0[10] & FI_PRESENT:
        raise DecodeError("file record without a file")
    file = _file_info(f0, p0)
    other = _file_info(f1, p1) if f1[10] & FI_PRESENT else None
    common = _common(h)
    common.update(syscall=NAME_BY_NR.get(nr, str(nr)), retval=retval, file=file)
    T = EventType
    if etype == T.OPEN:
        return ev.OpenEvent(**common, flags=flags_arg, mode=mode_arg)
    if etype == T.CHMOD:
        return ev.ChmodEvent(**common, mode=mode_arg)
    if etype == T.CHOWN:
        return ev.ChownEvent(**common, new_uid=_signed32(uid_arg), new_gid=_signed32(gid_arg), flags=flags_arg)
    if etype == T.LINK:
        return ev.LinkEvent(**common, destination=other, flags=flags_arg)
    if etype == T.RENAME:
        return ev.RenameEvent(**common, destination=other, flags=flags_arg)
    if etype == T.UNLINK:
        return ev.UnlinkEvent(**common, flags=flags_arg)
    if etype == T.RMDIR:
        return ev.RmdirEvent(**common, flags=flags_arg)
    if etype == T.MKDIR:
        return ev.MkdirEvent(**common, mode=mode_arg)
    if etype == T.UTIMES:
        return ev.UtimesEvent(
            **common,
            access_time_ns=None if atime_arg >= UTIME_OMIT else atime_arg,
            modification_time_ns=None if mtime_arg >= UTIME_OMIT else mtime_arg,
            access_time_omitted=atime_arg == UTIME_OMIT,
            modification_time_omitted=mtime_arg == UTIME_OMIT,
            flags=flags_arg,
        )
    if etype in (T.SETXATTR, T.REMOVEXATTR):
        name = extra.decode(errors="replace")
        namespace = name.split(".", 1)[0] if "." in name else ""
        if etype == T.SETXATTR:
            return ev.SetXattrEvent(**common, name=name, namespace=namespace, flags=flags_arg)
        return ev.RemoveXattrEvent(**common, name=name, namespace=namespace)
    if etype == T.MOUNT:
        return ev.MountEvent(**common, root=other, fs_type=extra.decode(errors="replace"), flags=flags_arg)
    if etype == T.UMOUNT:
        return ev.UmountEvent(**common, flags=flags_arg)
    if etype == T.SELINUX:
        kind = {1: "bool", 2: "commit", 3: "enforce"}.get(flags_arg)
        if kind is None:
            raise DecodeError(f"unknown selinux kind {flags_arg}")
        value = extra.split(b"\0", 1)[0].decode(errors="replace").strip()
        return ev.SelinuxEvent(**common, kind=kind, bool_name=file.basename if kind == "bool" else None,
                               value=value)
    raise DecodeError(f"type {etype} is not a file event")


def _signed32(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


def _split_strings(raw: bytes) -> list[str]:
    if not raw:
        return []
    parts = raw.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return [os.fsdecode(p) for p in parts]


def _decode_exec(etype: EventType, h: tuple, data: bytes) -> ev.KernelEvent:
    end = HEADER.size + EXEC_BODY.size
    if len(data) < end:
        raise DecodeError(f"exec record of {len(data)} bytes, body needs {end}")
    b = EXEC_BODY.unpack_from(data, HEADER.size)
    fi, cr = b[:16], b[16:27]
    argv_len, envp_len, _argv_total, _envp_total, start_time = b[27:32]
    plen = fi[12]
    _check_path_len(plen, "path")
    if argv_len > 2047 or envp_len > 2047:
        raise DecodeError(f"argv/envp lengths {argv_len}/{envp_len} exceed 2047")
    if end + plen + argv_len + envp_len != len(data):
        raise DecodeError(f"record size {len(data)} != {end} + {plen} + {argv_len} + {envp_len}")
    pos = end
    path = data[pos:pos + plen]
    pos += plen
    argv = data[pos:pos + argv_len]
    pos += argv_len
    envp = data[pos:pos + envp_len]
    return ev.ExecEvent(
        **_common(h), file=_file_info(fi, path), credentials=_creds(cr),
        argv=_split_strings(argv), argv_truncated=bool(h[8] & HF_ARGV_TRUNCATED),
        envp=_split_strings(envp), envp_truncated=bool(h[8] & HF_ENVP_TRUNCATED),
        start_time_ns=start_time,
    )


def _fixed(body: struct.Struct, data: bytes, what: str) -> tuple:
    if len(data) != HEADER.size + body.size:
        raise DecodeError(f"{what} record of {len(data)} bytes, expected {HEADER.size + body.size}")
    return body.unpack_from(data, HEADER.size)


def _decode_fork(etype: EventType, h: tuple, data: bytes) -> ev.KernelEvent:
    b = _fixed(FORK_BODY, data, "fork")
    return ev.ForkEvent(**_common(h), child_pid=b[0], child_tid=b[1], start_time_ns=b[2],
                        child_cgroup_id=b[3], credentials=_creds(b[4:]))


def _decode_exit(etype: EventType, h: tuple, data: bytes) -> ev.KernelEvent:
    b = _fixed(EXIT_BODY, data, "exit")
    return ev.ExitEvent(**_common(h), status=b[0])


_CRED_CLASSES = {EventType.SETUID: ev.SetuidEvent, EventType.SETGID: ev.SetgidEvent,
                 EventType.CAPSET: ev.CapsetEvent}


def _decode_cred(etype: EventType, h: tuple, data: bytes) -> ev.KernelEvent:
    b = _fixed(CRED_BODY, data, "credentials")
    cls = _CRED_CLASSES[etype]
    return cls(**_common(h), syscall=NAME_BY_NR.get(b[1], str(b[1])), retval=b[0],
               before=_creds(b[3:14]), after=_creds(b[14:25]))


def _decode_bpf(etype: EventType, h: tuple, data: bytes) -> ev.KernelEvent:
    b = _fixed(BPF_BODY, data, "bpf")
    retval, cmd, map_type, prog_type, attach_type, insn_cnt, _pad = b[:7]
    words, name = b[7:11], b[11]
    helpers = [w * 64 + bit for w, word in enumerate(words) for bit in range(64) if word >> bit & 1]
    is_map, is_prog = cmd == 0, cmd == 5
    return ev.BpfEvent(
        **_common(h), syscall="bpf", retval=retval, cmd=cmd,
        cmd_name=BPF_CMDS[cmd] if cmd < len(BPF_CMDS) else str(cmd),
        map_type=map_type if is_map else None,
        prog_type=prog_type if is_prog else None,
        attach_type=attach_type if is_prog else None,
        name=_cstr(name) if (is_map or is_prog) else "",
        insn_count=insn_cnt if is_prog else None,
        helpers=helpers,
    )


_DECODERS: dict[int, Callable[[EventType, tuple, bytes], ev.KernelEvent]] = {
    REC_FILE: _decode_file, REC_EXEC: _decode_exec, REC_FORK: _decode_fork, REC_EXIT: _decode_exit,
    REC_CRED: _decode_cred, REC_BPF: _decode_bpf,
}


def decode(data: bytes) -> ev.KernelEvent:
    """Decode one ring buffer record; DecodeError when it does not match its layout."""
    if len(data) < HEADER.size:
        raise DecodeError(f"record of {len(data)} bytes is shorter than the {HEADER.size}-byte header")
    h = HEADER.unpack_from(data)
    kind, type_, size = h[0], h[1], h[2]
    if size != len(data):
        raise DecodeError(f"header says {size} bytes, record has {len(data)}")
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise DecodeError(f"unknown record kind {kind}")
    try:
        etype = EventType(type_)
    except ValueError:
        raise DecodeError(f"unknown event type {type_}") from None
    if _KIND_OF_TYPE[etype] != kind:
        raise DecodeError(f"event type {etype.event_name} cannot have record kind {kind}")
    return decoder(etype, h, data)
