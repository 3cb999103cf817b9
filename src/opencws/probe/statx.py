"""statx(2) through ctypes: the mount id of a path, which os.stat does not give."""

from __future__ import annotations

import ctypes
import os
import struct

SYS_STATX = 332  # x86_64
STATX_BASIC_STATS = 0x7FF
STATX_MNT_ID = 0x1000
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100

_libc = ctypes.CDLL(None, use_errno=True)


def mount_id(path: str | os.PathLike[str], follow_symlinks: bool = True) -> int:
    """The mount id (as in /proc/self/mountinfo) of the mount holding `path`."""
    buf = ctypes.create_string_buffer(256)
    flags = 0 if follow_symlinks else AT_SYMLINK_NOFOLLOW
    rc = _libc.syscall(ctypes.c_long(SYS_STATX), ctypes.c_int(AT_FDCWD), os.fsencode(path), ctypes.c_int(flags),
                       ctypes.c_uint(STATX_BASIC_STATS | STATX_MNT_ID), buf)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(path))
    return struct.unpack_from("<Q", buf, 144)[0]
