"""Path strings in pages not faulted in yet: the kernel faults them in to copy them, the probe must read them too
(real calls on strings in an untouched file mapping, whose pages no access has mapped yet)."""

from __future__ import annotations

import ctypes
import mmap
import os
import subprocess

import pytest

from opencws.probe import events as ev

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]

libc = ctypes.CDLL(None, use_errno=True)


def _untouched(tmp_path, *strings: bytes) -> tuple[list[mmap.mmap], list[int]]:
    """Each string, NUL-terminated, in a fresh private mapping of its own file (a mapping of its own: the kernel's
    fault-around on one cannot map another); (the mappings, the strings' addresses). No page is mapped before the
    call reads it."""
    maps, addresses = [], []
    for i, s in enumerate(strings):
        src = tmp_path / f"string{i}.bin"
        src.write_bytes(s + b"\0")
        with open(src, "r+b") as f:
            maps.append(mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE))
        addresses.append(ctypes.addressof(ctypes.c_char.from_buffer(maps[-1])))  # (no access)
    return maps, addresses


def test_unlink_rmdir_and_rename_of_paths_in_pages_not_faulted_in_are_resolved(watch, tmp_path):
    f, d, src, dst = tmp_path / "f", tmp_path / "d", tmp_path / "src", tmp_path / "dst"
    f.write_text("x")
    d.mkdir()
    src.write_text("y")
    maps, (pf, pd, psrc, pdst) = _untouched(tmp_path, *(os.fsencode(p) for p in (f, d, src, dst)))
    assert libc.unlink(ctypes.c_void_p(pf)) == 0
    assert libc.rmdir(ctypes.c_void_p(pd)) == 0
    assert libc.rename(ctypes.c_void_p(psrc), ctypes.c_void_p(pdst)) == 0
    got = watch.mine((ev.UnlinkEvent, ev.RmdirEvent, ev.RenameEvent), lambda e: e.pid == os.getpid()
                     and e.file.path.startswith(str(tmp_path)))
    assert [(type(e).type, e.file.path, e.file.path_resolution_error) for e in got] == [
        ("unlink", str(f), None), ("rmdir", str(d), None), ("rename", str(src), None)]
    assert got[2].destination.path == str(dst) and got[2].file.inode == dst.stat().st_ino
    assert len(maps) == 4  # (the mappings lived through the calls)


def test_an_umount_of_a_path_in_a_page_not_faulted_in_is_resolved(watch, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mnt)], check=True)
    try:
        maps, (pm,) = _untouched(tmp_path, os.fsencode(mnt))
        assert libc.umount2(ctypes.c_void_p(pm), 0) == 0
        assert len(maps) == 1  # (the mapping lived through the call)
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["umount", str(mnt)], check=True)
    got = watch.one(ev.UmountEvent, lambda e: e.pid == os.getpid())
    # the mount is gone when the string can be read: its path, without the unmounted mount's fields
    assert (got.file.path, got.file.path_resolution_error, got.retval) == (str(mnt), None, 0)
    assert got.file.inode is None


@pytest.mark.parametrize("fs", ["ext4", "tmpfs"])
def test_a_chown_of_a_path_in_a_page_not_faulted_in_reports_the_owner_before_or_none(watch, tmp_path, request, fs):
    # the probe cannot read the string at the call's start, where it reads the owner; ext4 shows the owner under the
    # inode lock; elsewhere the owner before is unknown, never the one after (at sys_exit the path is read)
    root = request.getfixturevalue(fs)
    f = (root.path if fs == "ext4" else root) / "f"
    f.write_text("x")
    maps, (pf,) = _untouched(tmp_path, os.fsencode(f))
    assert libc.chown(ctypes.c_void_p(pf), 1234, 1235) == 0
    e = watch.one(ev.ChownEvent, lambda e: e.pid == os.getpid() and e.file.path == str(f))
    assert (e.file.inode, e.file.path_resolution_error, e.new_uid, e.new_gid) == (f.stat().st_ino, None, 1234, 1235)
    assert (e.file.uid, e.file.gid) == ((0, 0) if fs == "ext4" else (None, None))
    assert len(maps) == 1
