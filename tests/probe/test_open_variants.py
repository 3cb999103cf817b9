"""Opens without a path: open_by_handle_at names any file of a mount by a handle (a container-escape step).
The file is the one behind the fd the kernel returned (real calls)."""

from __future__ import annotations

import os

import probe_sysc as sysc
import pytest

from opencws.probe import events as ev

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]


def test_open_by_handle_at_is_an_open_of_the_file_behind_the_handle(watch, tmp_path):
    target = tmp_path / "secret"
    target.write_text("x")
    handle, _ = sysc.name_to_handle_at(sysc.AT_FDCWD, target)
    mount_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = sysc.open_by_handle_at(mount_fd, handle, os.O_RDONLY)
        assert fd >= 0
        os.close(fd)
        bad = sysc.open_by_handle_at(mount_fd, handle[:8] + bytes(len(handle) - 8), os.O_RDONLY)
        assert bad < 0
    finally:
        os.close(mount_fd)
    opened, refused = watch.mine(ev.OpenEvent, lambda e: e.syscall == "open_by_handle_at")
    assert opened.retval == fd and opened.file.path == str(target)
    assert opened.file.inode == target.stat().st_ino and opened.flags & os.O_ACCMODE == os.O_RDONLY
    # a refused handle names no file: the event carries the mount it was tried on
    assert refused.retval == bad and refused.file.path == str(tmp_path)


def test_an_i386_open_by_handle_at_is_an_open_too(watch, tmp_path, abi_calls):
    target = tmp_path / "secret32"
    target.write_text("x")
    handle, _ = sysc.name_to_handle_at(sysc.AT_FDCWD, target)
    rets = abi_calls.run32((5, f"s:{tmp_path}", os.O_RDONLY | os.O_DIRECTORY), (342, 3, "x:" + handle.hex(), 0))
    assert rets == [3, 4]
    e = watch.one(ev.OpenEvent, lambda e: e.syscall == "open_by_handle_at")
    assert (e.abi, e.retval, e.file.path, e.file.inode) == ("i386", 4, str(target), target.stat().st_ino)


def test_truncate_and_ftruncate_are_opens_that_truncate(watch, tmp_path):
    target = tmp_path / "truncated"
    target.write_text("xxxx")
    os.truncate(target, 1)
    fd = os.open(target, os.O_RDWR)
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)
    got = watch.mine(ev.OpenEvent, lambda e: e.pid == os.getpid() and e.syscall in ("truncate", "ftruncate"))
    assert [(e.syscall, e.retval, e.file.path, e.file.inode) for e in got] == [
        ("truncate", 0, str(target), target.stat().st_ino), ("ftruncate", 0, str(target), target.stat().st_ino)]
    assert all(e.flags == os.O_WRONLY | os.O_TRUNC for e in got)


def test_an_i386_truncate_is_an_open_that_truncates(watch, tmp_path, abi_calls):
    target = tmp_path / "truncated32"
    target.write_text("xxxx")
    assert abi_calls.run32((92, f"s:{target}", 1)) == [0]
    e = watch.one(ev.OpenEvent, lambda e: e.syscall == "truncate")
    assert (e.abi, e.file.path, e.flags) == ("i386", str(target), os.O_WRONLY | os.O_TRUNC)
