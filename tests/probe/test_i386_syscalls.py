"""i386 syscalls (`int $0x80`), from a 32-bit program and from a 64-bit one: the i386 table and argument
registers, never the x86_64 meaning of the same number (real calls, through the programs built from
abi_calls.c)."""

from __future__ import annotations

import os
import struct

import pytest
from probe_watch import paths_under

from inodes import inode_generation
from opencws.probe import events as ev

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]

AT_FDCWD = -100
O_CREAT_WRONLY = os.O_CREAT | os.O_WRONLY


def _ours(e: ev.KernelEvent) -> bool:
    """An event of the test programs (not of the compiler the set-up ran, also a child of this process)."""
    return e.comm.startswith("abi_calls")


def _x(data: bytes) -> str:
    return "x:" + data.hex()


@pytest.fixture(params=["32-bit program", "64-bit program, garbage in the upper halves"])
def run_i386(request, abi_calls):
    if request.param.startswith("32"):
        return abi_calls.run32
    return lambda *calls: abi_calls.run64(*calls, garbage=True)


def test_harmless_i386_calls_are_not_read_as_the_x86_64_calls_of_the_same_number(watch, tmp_path, abi_calls):
    decoy = tmp_path / "decoy"
    buf = _x(bytes(256))
    rets = abi_calls.run32(
        (83, "s:target", f"s:{decoy}"),           # symlink (x86_64 83: mkdir)
        (106, "s:/etc/hostname", buf),            # stat (setgid)
        (87, f"s:{tmp_path}/swapfile"),           # swapon (unlink)
        (199,),                                   # getuid32 (fremovexattr)
        (258, 0),                                 # set_tid_address (mkdirat)
        (94, 1, 0o600),                           # fchmod on stdout (lchown)
    )
    assert rets[0] == 0 and decoy.is_symlink()
    forged = (ev.MkdirEvent, ev.SetgidEvent, ev.UnlinkEvent, ev.RemoveXattrEvent, ev.ChownEvent)
    mine = watch.mine(forged, _ours)
    assert mine == []
    fchmod = watch.one(ev.ChmodEvent, _ours)
    assert (fchmod.syscall, fchmod.abi, fchmod.mode) == ("fchmod", "i386", 0o600)


def test_i386_file_calls_are_reported_as_their_x86_64_twins(watch, tmp_path, run_i386):
    p = str(tmp_path)
    rets = run_i386(
        (5, f"s:{p}/a", O_CREAT_WRONLY, 0o640),                             # open -> fd 3
        (8, f"s:{p}/b", 0o600),                                             # creat
        (295, AT_FDCWD, f"s:{p}/a", 0),                                     # openat
        (15, f"s:{p}/a", 0o604),                                            # chmod
        (94, 3, 0o606),                                                     # fchmod
        (212, f"s:{p}/a", 1234, 5678),                                      # chown32
        (182, f"s:{p}/a", 0xFFFF, 77),                                      # chown (16-bit ids)
        (207, 3, 4321, 0xFFFFFFFF),                                         # fchown32
        (30, f"s:{p}/a", _x(struct.pack("<ii", 1000, 2000))),               # utime (32-bit time_t)
        (271, f"s:{p}/a", _x(struct.pack("<iiii", 10, 5, 20, 6))),          # utimes
        (226, f"s:{p}/a", "s:user.k", _x(b"v"), 1, 0),                      # setxattr
        (235, f"s:{p}/a", "s:user.k"),                                      # removexattr
        (9, f"s:{p}/a", f"s:{p}/c"),                                        # link
        (38, f"s:{p}/c", f"s:{p}/d"),                                       # rename
        (10, f"s:{p}/d"),                                                   # unlink
        (39, f"s:{p}/dir", 0o755),                                          # mkdir
        (40, f"s:{p}/dir"),                                                 # rmdir
        (296, AT_FDCWD, f"s:{p}/dir2", 0o700),                              # mkdirat
        (301, AT_FDCWD, f"s:{p}/dir2", 0x200),                              # unlinkat(AT_REMOVEDIR)
    )
    assert rets[0] == 3 and all(r >= 0 for r in rets), rets
    a = f"{p}/a"
    got = [e for e in watch.mine(ev.FileEvent, paths_under(tmp_path)) if _ours(e)]
    assert all(e.abi == "i386" for e in got), got
    seen = [(type(e).type, e.syscall, e.file.path) for e in got]
    assert seen == [
        ("open", "open", a), ("open", "creat", f"{p}/b"), ("open", "openat", a), ("chmod", "chmod", a),
        ("chmod", "fchmod", a), ("chown", "chown32", a), ("chown", "chown", a), ("chown", "fchown32", a),
        ("utimes", "utime", a), ("utimes", "utimes", a), ("setxattr", "setxattr", a),
        ("removexattr", "removexattr", a), ("link", "link", a), ("rename", "rename", f"{p}/c"),
        ("unlink", "unlink", f"{p}/d"), ("mkdir", "mkdir", f"{p}/dir"), ("rmdir", "rmdir", f"{p}/dir"),
        ("mkdir", "mkdirat", f"{p}/dir2"), ("rmdir", "unlinkat", f"{p}/dir2"),
    ]
    by = {e.syscall: e for e in got}
    assert by["open"].flags & O_CREAT_WRONLY == O_CREAT_WRONLY and by["open"].mode == 0o640
    assert by["open"].file.inode == os.stat(a).st_ino
    assert (by["chmod"].mode, by["fchmod"].mode) == (0o604, 0o606)
    assert (by["chown32"].new_uid, by["chown32"].new_gid) == (1234, 5678)
    assert (by["chown"].new_uid, by["chown"].new_gid) == (-1, 77)
    assert (by["fchown32"].new_uid, by["fchown32"].new_gid) == (4321, -1)
    # the owner before each i386 chown (the file was made by root): ext4 shows it under the inode lock; elsewhere
    # it is unknown (the per-syscall tracepoints where the probe reads it at the call's start skip i386 calls)
    before = [(0, 0), (1234, 5678), (1234, 77)] if by["chown32"].file.fs_type == "ext4" else [(None, None)] * 3
    assert [(by[c].file.uid, by[c].file.gid) for c in ("chown32", "chown", "fchown32")] == before
    assert (by["utime"].access_time_ns, by["utime"].modification_time_ns) == (1000 * 10**9, 2000 * 10**9)
    assert (by["utimes"].access_time_ns, by["utimes"].modification_time_ns) == (10 * 10**9 + 5000,
                                                                                  20 * 10**9 + 6000)
    assert by["setxattr"].name == "user.k" and by["removexattr"].name == "user.k"
    assert by["link"].destination.path == f"{p}/c" and by["rename"].destination.path == f"{p}/d"
    assert by["mkdir"].mode == 0o755 and by["mkdirat"].mode == 0o700


def test_i386_mount_and_old_umount_are_mount_events(watch, tmp_path, abi_calls):
    m = tmp_path / "m"
    m.mkdir()
    rets = abi_calls.run32((21, "s:none", f"s:{m}", "s:tmpfs", 0, 0), (22, f"s:{m}"))
    assert rets == [0, 0]
    mount = watch.one(ev.MountEvent, _ours)
    umount = watch.one(ev.UmountEvent, _ours)
    assert (mount.syscall, mount.abi, mount.file.path, mount.fs_type) == ("mount", "i386", str(m), "tmpfs")
    assert (umount.syscall, umount.abi, umount.file.path, umount.flags) == ("umount", "i386", str(m), 0)


def test_an_i386_setresuid32_keeps_the_credential_cache_right(watch, abi_calls):
    # an i386 drop to 1000 (root kept as the saved uid), then a native regain of root: 1000 -> 0, not 0 -> 0
    rets = abi_calls.run64((208, 1000, 1000, 0), ("+117", 0, 0, 0))
    assert rets == [0, 0]
    drop, regain = watch.mine(ev.SetuidEvent, _ours)
    assert (drop.syscall, drop.abi, drop.before.uid, drop.after.uid, drop.after.suid) == (
        "setresuid32", "i386", 0, 1000, 0)
    assert (regain.syscall, regain.abi, regain.before.uid, regain.after.uid) == ("setresuid", "x86_64", 1000, 0)
    assert regain.before_known


def test_i386_16_bit_and_32_bit_credential_calls_are_setuid_and_setgid_events(watch, abi_calls):
    rets = abi_calls.run32((214, 2000), (46, 0xFFFF), (213, 3000))  # setgid32, setgid(-1): refused, setuid32
    assert rets[0] == 0 and rets[1] < 0 and rets[2] == 0
    gid32, gid16 = watch.mine(ev.SetgidEvent, _ours)
    (uid32,) = watch.mine(ev.SetuidEvent, _ours)
    assert (gid32.syscall, gid32.abi, gid32.before.gid, gid32.after.gid) == ("setgid32", "i386", 0, 2000)
    assert (gid16.syscall, gid16.retval) == ("setgid", rets[1])
    assert (uid32.syscall, uid32.before.uid, uid32.after.uid) == ("setuid32", 0, 3000)


def test_an_i386_setversion_bumps_the_discarder_generation_too(watch, probe, tmp_path, abi_calls):
    # FS_IOC32_SETVERSION (an int) through the compat ioctl: the file's new identity voids earlier discarders
    f = tmp_path / "f"
    f.write_text("x")
    generation = probe.discarder_generation
    rets = abi_calls.run32((5, f"s:{f}", 0), (54, 3, 0x40047602, "x:39300000"))  # open, ioctl(3, ..., &12345)
    assert rets == [3, 0]
    assert inode_generation(f) == 12345
    assert probe.discarder_generation > generation
