"""The event types OpenCWS adds to Datadog's set: mknod (device nodes, FIFOs, sockets, files), symlink (the link
and its target) and setgroups (the new supplementary groups), from real calls of every ABI."""

from __future__ import annotations

import os
import stat
import struct
import subprocess

import pytest

from inodes import ramfs_on_one_cpu
from opencws.probe import events as ev
from opencws.probe.statx import mount_id

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]


def test_mknod_reports_the_new_node_its_mode_and_device(watch, tmp_path):
    fifo, dev = tmp_path / "fifo", tmp_path / "null2"
    os.mkfifo(fifo, 0o600)
    os.mknod(dev, stat.S_IFCHR | 0o640, os.makedev(1, 3))
    made = watch.mine(ev.MknodEvent, lambda e: e.file.path in (str(fifo), str(dev)))
    assert [(e.file.path, e.syscall, e.retval) for e in made] == [(str(fifo), "mknodat", 0),
                                                                 (str(dev), "mknodat", 0)]
    f, d = made
    assert f.mode == stat.S_IFIFO | 0o600 and f.device == 0 and f.file.inode == fifo.stat().st_ino
    assert d.mode == stat.S_IFCHR | 0o640 and (os.major(d.device), os.minor(d.device)) == (1, 3)
    assert d.file.inode == dev.stat().st_ino and stat.S_ISCHR(d.file.mode)


def test_symlink_reports_the_link_and_its_target_as_given(watch, tmp_path):
    link, link2 = tmp_path / "link", tmp_path / "link2"
    dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.symlink("../does/not/exist", "link", dir_fd=dfd)  # symlinkat
    finally:
        os.close(dfd)
    os.symlink("/etc/shadow", link2)  # symlink
    made = watch.mine(ev.SymlinkEvent, lambda e: e.file.path.startswith(str(tmp_path)))
    assert [(e.syscall, e.file.path, e.target) for e in made] == [
        ("symlinkat", str(link), "../does/not/exist"), ("symlink", str(link2), "/etc/shadow")]
    assert made[0].file.inode == os.lstat(link).st_ino and stat.S_ISLNK(made[0].file.mode)


def test_setgroups_reports_the_groups_the_kernel_now_holds(watch):
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([7, 1234, 99999])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    (e,) = watch.mine(ev.SetgroupsEvent, lambda e: e.pid == pid)
    assert (e.syscall, e.retval, e.groups, e.groups_truncated) == ("setgroups", 0, [7, 1234, 99999], False)


def test_more_groups_than_a_record_carries_are_flagged(watch):
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups(list(range(100, 200)))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    (e,) = watch.mine(ev.SetgroupsEvent, lambda e: e.pid == pid)
    assert e.groups == list(range(100, 164)) and e.groups_truncated


def test_the_added_types_come_from_i386_calls_too(watch, tmp_path, abi_calls):
    p = str(tmp_path)
    rets = abi_calls.run32(
        (14, f"s:{p}/node", stat.S_IFIFO | 0o644, 0),           # mknod
        (83, "s:target", f"s:{p}/sym"),                          # symlink
        (206, 2, "x:" + struct.pack("<II", 5, 6).hex()),         # setgroups32
        (81, 1, "x:" + struct.pack("<H", 8).hex()),              # setgroups (16-bit gids)
    )
    assert rets == [0, 0, 0, 0]
    ours = lambda e: e.comm.startswith("abi_calls")  # noqa: E731
    (node,) = watch.mine(ev.MknodEvent, ours)
    (sym,) = watch.mine(ev.SymlinkEvent, ours)
    g32, g16 = watch.mine(ev.SetgroupsEvent, ours)
    assert (node.abi, node.syscall, node.file.path, node.mode) == ("i386", "mknod", f"{p}/node", stat.S_IFIFO | 0o644)
    assert (sym.syscall, sym.file.path, sym.target) == ("symlink", f"{p}/sym", "target")
    assert (g32.syscall, g32.groups, g16.syscall, g16.groups) == ("setgroups32", [5, 6], "setgroups", [8])


def test_an_io_uring_symlinkat_is_a_symlink_event(watch, tmp_path, uring_calls):
    link = tmp_path / "ulink"
    out = subprocess.run([str(uring_calls), "symlinkat", "/etc/passwd", "-100", str(link)], capture_output=True,
                         check=True, timeout=30).stdout
    assert int(out) == 0
    e = watch.one(ev.SymlinkEvent, lambda e: e.file.path == str(link))
    assert (e.syscall, e.target, e.file.inode) == ("io_uring:symlinkat", "/etc/passwd", os.lstat(link).st_ino)


def test_a_node_made_by_mknod_drops_a_stale_discarder_of_its_inode_number(watch, probe, tmp_path):
    # mknod events on: the node's birth still drops the discarder a dead inode of the same number left (on ramfs,
    # whose inodes have no identity: the key is the number and mount alone; the next 64 numbers get one)
    with ramfs_on_one_cpu(tmp_path / "ramfs") as fs:
        for attempt in range(20):
            last = fs / f"last-{attempt}"
            last.write_text("x")
            ino, mnt = last.stat().st_ino, mount_id(last)
            for n in range(ino + 1, ino + 65):
                probe.add_discarder_inode(n, mnt, ["open"], inode_generation=0)
            new = fs / f"new-{attempt}"
            os.mkfifo(new)
            if ino < new.stat().st_ino <= ino + 64:
                break
        else:
            raise AssertionError("other files of the machine always took the numbers")
        fd = os.open(new, os.O_RDONLY | os.O_NONBLOCK)
        os.close(fd)
        assert watch.mine(ev.OpenEvent, lambda e: e.file.path == str(new))
