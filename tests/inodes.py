"""An inode's identity beside its number (its i_generation), read from user space as the tests need it to put an
inode discarder in place by hand: from the file handle `name_to_handle_at(2)` gives, whose layout each
filesystem chooses (only those the tests use are known here)."""

from __future__ import annotations

import ctypes
import os
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

AT_FDCWD = -100
EXT4_SUPER_MAGIC = 0xEF53
TMPFS_MAGIC = 0x01021994
FILEID_INO32_GEN = 1

_libc = ctypes.CDLL(None, use_errno=True)


class _FileHandle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int), ("f_handle", ctypes.c_ubyte * 128)]


class _Statfs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 112)]


def fs_magic(path: str | os.PathLike[str]) -> int:
    buf = _Statfs()
    if _libc.statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(path))
    return buf.f_type & 0xFFFFFFFF


def inode_generation(path: str | os.PathLike[str]) -> int:
    """The i_generation of the inode at `path` (ext2/3/4 and tmpfs: the filesystems the tests put files on)."""
    fh = _FileHandle(handle_bytes=128)
    mount = ctypes.c_int()
    if _libc.name_to_handle_at(AT_FDCWD, os.fsencode(path), ctypes.byref(fh), ctypes.byref(mount), 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(path))
    words = struct.unpack_from(f"<{fh.handle_bytes // 4}I", bytes(fh.f_handle))
    magic = fs_magic(path)
    if fh.handle_type == FILEID_INO32_GEN and magic == EXT4_SUPER_MAGIC:
        return words[1]  # (ino, generation)
    if fh.handle_type == FILEID_INO32_GEN and magic == TMPFS_MAGIC:
        return words[0]  # (generation, ino low, ino high)
    raise ValueError(f"{path}: no known file handle layout (filesystem magic {magic:#x}, type {fh.handle_type})")


@contextmanager
def ramfs_on_one_cpu(path: Path) -> Iterator[Path]:
    """A ramfs mounted on `path` (made), this process (and the children it starts) on one CPU meanwhile. A ramfs
    gives its inodes no identity (generation 0), and numbers them from the kernel's per-CPU counter: the next file
    made on the same CPU gets the last number + 1, unless something else took one there in between (a pipe, a
    socket, a /proc inode)."""
    path.mkdir()
    subprocess.run(["mount", "-t", "ramfs", "none", str(path)], check=True)
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        yield path
    finally:
        os.sched_setaffinity(0, cpus)
        subprocess.run(["umount", "-l", str(path)], check=True)
