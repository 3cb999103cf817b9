"""Raw system calls the os module does not expose (x86_64 numbers), through ctypes; immutable decoys."""

from __future__ import annotations

import array
import ctypes
import fcntl
import os
import struct
from contextlib import contextmanager

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

AT_FDCWD = -100
AT_REMOVEDIR = 0x200


def _call(nr: int, *args) -> int:
    conv = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    rc = libc.syscall(ctypes.c_long(nr), *conv)
    if rc < 0:
        return -ctypes.get_errno()
    return rc


def _p(path) -> bytes:
    return os.fsencode(path)


def openat2(dirfd: int, path, flags: int, mode: int = 0, resolve: int = 0) -> int:
    how = struct.pack("<QQQ", flags, mode, resolve)
    return _call(437, dirfd, _p(path), how, 24)


def creat(path, mode: int) -> int:
    return _call(85, _p(path), mode)


def fchmodat(dirfd: int, path, mode: int) -> int:
    return _call(268, dirfd, _p(path), mode)


def fchownat(dirfd: int, path, uid: int, gid: int, flags: int = 0) -> int:
    return _call(260, dirfd, _p(path), uid, gid, flags)


def renameat2(olddir: int, old, newdir: int, new, flags: int = 0) -> int:
    return _call(316, olddir, _p(old), newdir, _p(new), flags)


def unlinkat(dirfd: int, path, flags: int = 0) -> int:
    return _call(263, dirfd, _p(path), flags)


def utime(path, atime: int, mtime: int) -> int:
    return _call(132, _p(path), struct.pack("<qq", atime, mtime))


def utimes(path, atime: tuple[int, int], mtime: tuple[int, int]) -> int:
    return _call(235, _p(path), struct.pack("<qqqq", *atime, *mtime))


def futimesat(dirfd: int, path, atime: tuple[int, int], mtime: tuple[int, int]) -> int:
    return _call(261, dirfd, _p(path), struct.pack("<qqqq", *atime, *mtime))


def mount(source, target, fstype, flags: int = 0, data: bytes | None = None) -> int:
    return _call(165, _p(source), _p(target), _p(fstype), flags, data)


def umount2(target, flags: int = 0) -> int:
    return _call(166, _p(target), flags)


def bpf(cmd: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr, len(attr))
    return _call(321, cmd, buf, len(attr))


def capset(effective: int, permitted: int, inheritable: int = 0) -> int:
    header = struct.pack("<Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = struct.pack("<6I", effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
                       effective >> 32, permitted >> 32, inheritable >> 32)
    return _call(126, header, data)


def capget() -> tuple[int, int, int]:
    header = struct.pack("<Ii", 0x20080522, 0)
    data = ctypes.create_string_buffer(24)
    _call(125, header, data)
    e0, p0, i0, e1, p1, i1 = struct.unpack("<6I", data.raw)
    return e0 | e1 << 32, p0 | p1 << 32, i0 | i1 << 32


def setxattrat(dirfd: int, path, at_flags: int, name: str, value: bytes, flags: int = 0) -> int:
    buf = ctypes.create_string_buffer(value, len(value))
    args = struct.pack("<QII", ctypes.addressof(buf), len(value), flags)
    return _call(463, dirfd, _p(path), at_flags, name.encode(), args, len(args))


def removexattrat(dirfd: int, path, at_flags: int, name: str) -> int:
    return _call(466, dirfd, _p(path), at_flags, name.encode())


# the new mount API
FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 1, 6
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
OPEN_TREE_CLONE = 1


def fsopen(fstype: str, flags: int = 0) -> int:
    return _call(430, fstype.encode(), flags)


def fsconfig(fd: int, cmd: int, key: str | None = None, value: bytes | None = None, aux: int = 0) -> int:
    return _call(431, fd, cmd, key.encode() if key else None, value, aux)


def fsmount(fd: int, flags: int = 0, attr_flags: int = 0) -> int:
    return _call(432, fd, flags, attr_flags)


def open_tree(dirfd: int, path, flags: int) -> int:
    return _call(428, dirfd, _p(path), flags)


def move_mount(from_dfd: int, from_path, to_dfd: int, to_path, flags: int = 0) -> int:
    return _call(429, from_dfd, _p(from_path), to_dfd, _p(to_path), flags)


def name_to_handle_at(dirfd: int, path, flags: int = 0) -> tuple[bytes, int]:
    """(struct file_handle, mount id) of a file."""
    handle = ctypes.create_string_buffer(struct.pack("<Ii", 128, 0) + bytes(128))
    mount_id = ctypes.c_int()
    rc = _call(303, dirfd, _p(path), handle, ctypes.byref(mount_id), flags)
    if rc < 0:
        raise OSError(-rc, os.strerror(-rc), path)
    return handle.raw, mount_id.value


def open_by_handle_at(mount_fd: int, handle: bytes, flags: int) -> int:
    return _call(304, mount_fd, ctypes.create_string_buffer(handle, len(handle)), flags)


FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_IMMUTABLE_FL = 0x80086601, 0x40086602, 0x10


@contextmanager
def immutable(path):
    """A decoy no call can change (chmod, setxattr, unlink and rename fail on it, even for root)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, array.array("i", [flags[0] | FS_IMMUTABLE_FL]), True)
        yield
    finally:
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, flags, True)
        os.close(fd)
