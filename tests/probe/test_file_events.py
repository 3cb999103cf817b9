"""File syscalls, checked against os.stat and statx (real kernel, as root)."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import probe_sysc as sysc
import pytest
from probe_watch import paths_under

from opencws.probe import events as ev
from opencws.probe.statx import mount_id

AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH = 0x100, 0x1000

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]


def assert_matches_stat(f: ev.FileInfo, path, follow: bool = True) -> None:
    st = os.stat(path, follow_symlinks=follow)
    assert f.path_resolution_error is None, f
    assert f.path == str(path)
    assert f.inode == st.st_ino
    assert f.mode == st.st_mode
    assert (f.uid, f.gid) == (st.st_uid, st.st_gid)
    assert f.nlink == st.st_nlink
    assert f.device == st.st_dev
    assert f.mount_id == mount_id(path, follow_symlinks=follow)
    assert f.modification_time_ns == st.st_mtime_ns
    assert f.change_time_ns == st.st_ctime_ns


def test_a_file_opened_through_a_dirfd_is_reported_with_its_absolute_path(watch, tmp_path):
    (tmp_path / "dir").mkdir()
    dfd = os.open(tmp_path / "dir", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = os.open("created.txt", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o640, dir_fd=dfd)
        os.close(fd)
    finally:
        os.close(dfd)
    target = tmp_path / "dir" / "created.txt"
    e = watch.one(ev.OpenEvent, lambda e: e.file.path == str(target))
    assert e.syscall == "openat"
    assert e.retval >= 0
    assert e.flags & os.O_CREAT and e.flags & os.O_EXCL
    assert e.mode == 0o640
    assert e.pid == os.getpid() and e.tid == os.getpid()
    assert_matches_stat(e.file, target)
    assert e.file.fs_type in ("ext4", "tmpfs", "xfs", "btrfs", "overlay")


def test_the_times_of_a_file_whose_ctime_was_already_queried_are_its_own(watch, tmp_path):
    # since 6.13 a stat() marks the ctime as queried with a flag bit kept beside the nanoseconds
    f = tmp_path / "old.txt"
    f.write_text("x")
    os.utime(f, ns=(1_700_000_000_123_456_789, 1_700_000_000_987_654_321))
    before = os.stat(f)
    fd = os.open(f, os.O_RDONLY)
    os.close(fd)
    e = watch.mine(ev.OpenEvent, lambda e: e.file.path == str(f))[-1]  # (write_text opened it first)
    assert_matches_stat(e.file, f)
    assert (e.file.access_time_ns, e.file.modification_time_ns) == (before.st_atime_ns, before.st_mtime_ns)


def test_a_relative_path_with_dot_dot_is_resolved_against_the_cwd(watch, tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "f").write_text("x")
    old = os.getcwd()
    os.chdir(tmp_path / "a" / "b")
    try:
        os.chmod("../../c/./f", 0o600)
    finally:
        os.chdir(old)
    e = watch.one(ev.ChmodEvent, paths_under(tmp_path))
    assert e.mode == 0o600
    assert_matches_stat(e.file, tmp_path / "c" / "f")


def test_a_failed_open_reports_the_error_and_no_inode(watch, tmp_path):
    with pytest.raises(FileNotFoundError):
        os.open(tmp_path / "missing", os.O_RDONLY)
    e = watch.one(ev.OpenEvent, paths_under(tmp_path))
    assert e.retval == -errno.ENOENT
    assert e.outcome == "Error"
    assert e.file.inode is None
    # a failed lookup leaves a negative dentry: the path is still resolved completely, or marked
    if e.file.path_resolution_error is None:
        assert e.file.path == str(tmp_path / "missing") and e.file.negative
    else:
        assert e.file.path.startswith(str(tmp_path))


def test_openat2_and_creat_are_reported(watch, tmp_path):
    fd = sysc.openat2(sysc.AT_FDCWD, tmp_path / "o2", os.O_CREAT | os.O_RDWR, 0o600)
    assert fd >= 0
    os.close(fd)
    fd = sysc.creat(tmp_path / "cr", 0o644)
    assert fd >= 0
    os.close(fd)
    events = {e.syscall: e for e in watch.mine(ev.OpenEvent, paths_under(tmp_path))}
    assert events["openat2"].flags & os.O_CREAT and events["openat2"].mode == 0o600
    assert_matches_stat(events["openat2"].file, tmp_path / "o2")
    assert events["creat"].flags & os.O_CREAT and events["creat"].flags & os.O_TRUNC
    assert_matches_stat(events["creat"].file, tmp_path / "cr")


def test_the_chmod_family_reports_the_requested_mode_and_the_new_state(watch, tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    os.chmod(f, 0o700)
    fd = os.open(f, os.O_RDONLY)
    os.fchmod(fd, 0o640)
    os.close(fd)
    assert sysc.fchmodat(sysc.AT_FDCWD, f, 0o604) == 0
    got = watch.mine(ev.ChmodEvent, paths_under(tmp_path))
    assert [(e.syscall, e.mode) for e in got] == [("chmod", 0o700), ("fchmod", 0o640), ("fchmodat", 0o604)]
    assert stat.S_IMODE(got[0].file.mode) == 0o700
    assert_matches_stat(got[-1].file, f)


def test_the_chown_family_reports_the_owner_before_the_call_and_the_one_asked_for(watch, tmp_path):
    f = tmp_path / "f"
    f.write_text("x")  # (root's)
    os.symlink(f, tmp_path / "link")
    os.chown(f, 1000, 1001)
    fd = os.open(f, os.O_RDONLY)
    os.fchown(fd, 1002, -1)
    os.close(fd)
    os.lchown(tmp_path / "link", 1003, 1003)
    assert sysc.fchownat(sysc.AT_FDCWD, f, 1004, 1005) == 0
    got = watch.mine(ev.ChownEvent, paths_under(tmp_path))
    assert [(e.syscall, e.file.uid, e.file.gid, e.new_uid, e.new_gid) for e in got] == [
        ("chown", 0, 0, 1000, 1001), ("fchown", 1000, 1001, 1002, -1), ("lchown", 0, 0, 1003, 1003),
        ("fchownat", 1002, 1001, 1004, 1005)]
    assert got[2].file.path == str(tmp_path / "link")
    assert stat.S_ISLNK(got[2].file.mode)
    st = f.stat()  # (the rest of the file as it is after the call)
    assert (got[3].file.inode, got[3].file.mode, got[3].file.change_time_ns) == (st.st_ino, st.st_mode, st.st_ctime_ns)
    assert (st.st_uid, st.st_gid) == (1004, 1005)


def test_a_chown_through_a_symlink_reports_the_owner_of_the_file_it_changed(watch, tmp_path):
    f, link = tmp_path / "f", tmp_path / "link"
    f.write_text("x")
    os.chown(f, 2000, 2000)
    os.symlink("f", link)  # (a target kept in the inode whatever tmp_path is; one over 60 bytes is not followed:
    # test_a_symlink_whose_target_is_not_in_memory_is_reported_unresolved)
    os.lchown(link, 3000, 3000)
    os.chown(link, 2001, 2001)  # follows: the file
    assert sysc.fchownat(sysc.AT_FDCWD, link, 2002, -1) == 0  # follows too
    assert sysc.fchownat(sysc.AT_FDCWD, link, 3001, -1, AT_SYMLINK_NOFOLLOW) == 0  # the link itself
    got = watch.mine(ev.ChownEvent, lambda e: e.file.path.startswith(str(tmp_path)) and e.new_uid not in (2000, 3000))
    assert [(e.syscall, e.file.path, e.file.uid, e.file.gid, e.new_uid) for e in got] == [
        ("chown", str(f), 2000, 2000, 2001), ("fchownat", str(f), 2001, 2001, 2002),
        ("fchownat", str(link), 3000, 3000, 3001)]


def test_fchownat_with_an_empty_path_reports_the_owner_its_fd_had(watch, tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    os.chown(f, 4000, 4001)
    for flags in (os.O_RDONLY, os.O_PATH):
        fd = os.open(f, flags)
        try:
            assert sysc.fchownat(fd, "", 4002 + flags % 2, 4003, AT_EMPTY_PATH) == 0
        finally:
            os.close(fd)
    got = watch.mine(ev.ChownEvent, paths_under(tmp_path))
    assert [(e.syscall, e.flags, e.file.uid, e.file.gid, e.new_uid, e.new_gid) for e in got][-2:] == [
        ("fchownat", AT_EMPTY_PATH, 4000, 4001, 4002, 4003), ("fchownat", AT_EMPTY_PATH, 4002, 4003, 4002, 4003)]
    assert got[-1].file.path == str(f)


def test_a_refused_chown_reports_the_unchanged_owner(watch):
    d = Path(tempfile.mkdtemp(prefix="opencws-chown-", dir="/tmp"))  # (one nobody may enter)
    os.chmod(d, 0o755)
    f = d / "f"
    f.write_text("x")  # (root's: nobody may not give it away)
    pid = os.fork()
    if pid == 0:
        os.setgid(65534)
        os.setuid(65534)
        try:
            os.chown(f, 1234, 1234)
        except PermissionError:
            os._exit(0)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    try:
        assert os.waitstatus_to_exitcode(status) == 0, "the chown was not refused"
        e = watch.one(ev.ChownEvent, lambda e: e.pid == pid)
        assert (e.retval, e.file.path, e.file.uid, e.file.gid, e.new_uid, e.new_gid) == (
            -errno.EPERM, str(f), 0, 0, 1234, 1234)
    finally:
        shutil.rmtree(d)


def _root(request, fs: str) -> Path:
    """The folder of a fresh ext4 (`ext4` fixture) or tmpfs (`tmpfs` fixture) file system."""
    root = request.getfixturevalue(fs)
    return root.path if fs == "ext4" else root


@pytest.mark.parametrize("fs", ["ext4", "tmpfs"])
def test_a_chown_whose_file_another_chown_changed_after_its_start_reports_that_owner_or_none(
        watch, request, fs, owner_race):
    # two chowns read the owner (root's) at their start, then wait on the inode lock a blocked write holds: the one
    # that changes the owner second had the other's owner before it. ext4 shows it under the lock; elsewhere the
    # probe can only tell that the owner it read at the start is stale
    f = _root(request, fs) / "f"
    f.write_text("x")
    out = subprocess.run([str(owner_race), str(f)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    last = f.stat().st_uid  # (the lock's queue decides the order: 2000 then 1000, as a rule)
    got = {e.new_uid: e for e in watch.mine(ev.ChownEvent, paths_under(f.parent))}
    assert set(got) == {1000, 2000}
    first = got[3000 - last]
    assert (first.file.uid, first.file.gid) == (0, 0)
    before_last = (3000 - last, 3000 - last) if fs == "ext4" else (None, None)  # (never root's)
    assert (got[last].file.uid, got[last].file.gid) == before_last


def test_a_chown_of_a_name_not_in_the_dentry_cache_reports_its_owner_before_on_ext4(watch, ext4):
    f = ext4.path / "cold"
    f.write_text("x")
    os.chown(f, 3000, 3001)
    ext4.remount()  # (a fresh mount: no dentry of the name, which the walk at the call's start cannot read)
    os.chown(f, 1000, 1000)
    e = watch.one(ev.ChownEvent, lambda e: e.file.path == str(f) and e.new_uid == 1000)
    assert (e.file.uid, e.file.gid, e.file.fs_type) == (3000, 3001, "ext4")


def test_a_hard_link_reports_both_sides(watch, tmp_path):
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    src = tmp_path / "d1" / "src"
    src.write_text("x")
    os.link(src, tmp_path / "d2" / "dst")
    e = watch.one(ev.LinkEvent, paths_under(tmp_path))
    assert e.retval == 0
    assert_matches_stat(e.file, src)
    assert e.destination is not None
    assert_matches_stat(e.destination, tmp_path / "d2" / "dst")
    assert e.file.inode == e.destination.inode and e.destination.nlink == 2


def test_a_rename_across_directories_reports_the_source_before_and_the_destination_after(watch, tmp_path):
    (tmp_path / "from").mkdir()
    (tmp_path / "to").mkdir()
    src = tmp_path / "from" / "a.txt"
    src.write_text("x")
    before = os.stat(src)
    dfd = os.open(tmp_path / "to", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.rename(src, "b.txt", dst_dir_fd=dfd)
    finally:
        os.close(dfd)
    e = watch.one(ev.RenameEvent, paths_under(tmp_path))
    assert e.syscall == "renameat" and e.retval == 0
    assert e.file.path == str(src) and e.file.inode == before.st_ino
    assert e.destination is not None
    assert_matches_stat(e.destination, tmp_path / "to" / "b.txt")


def test_renameat2_flags_are_reported(watch, tmp_path):
    (tmp_path / "x").write_text("1")
    RENAME_NOREPLACE = 1  # (an exchange is two events: test_renames.py)
    assert sysc.renameat2(sysc.AT_FDCWD, tmp_path / "x", sysc.AT_FDCWD, tmp_path / "y", RENAME_NOREPLACE) == 0
    e = watch.one(ev.RenameEvent, paths_under(tmp_path))
    assert e.syscall == "renameat2" and e.flags == RENAME_NOREPLACE


def test_an_unlink_reports_the_state_of_the_removed_file(watch, tmp_path):
    f = tmp_path / "gone"
    f.write_text("x")
    st = os.stat(f)
    mid = mount_id(f)
    os.unlink(f)
    e = watch.one(ev.UnlinkEvent, paths_under(tmp_path))
    assert e.retval == 0
    assert e.file.path == str(f)
    assert (e.file.inode, e.file.mode, e.file.mount_id, e.file.device) == (st.st_ino, st.st_mode, mid, st.st_dev)


def test_an_unlink_that_fails_reports_its_error(watch, tmp_path):
    with pytest.raises(FileNotFoundError):
        os.unlink(tmp_path / "never")
    e = watch.one(ev.UnlinkEvent, paths_under(tmp_path))
    assert e.retval == -errno.ENOENT and e.file.inode is None


def test_unlinkat_with_at_removedir_is_an_rmdir(watch, tmp_path):
    d = tmp_path / "victim"
    d.mkdir()
    st = os.stat(d)
    assert sysc.unlinkat(sysc.AT_FDCWD, d, sysc.AT_REMOVEDIR) == 0
    e = watch.one(ev.RmdirEvent, paths_under(tmp_path))
    assert e.syscall == "unlinkat" and e.flags == sysc.AT_REMOVEDIR
    assert e.file.inode == st.st_ino and stat.S_ISDIR(e.file.mode)
    assert not watch.mine(ev.UnlinkEvent, paths_under(tmp_path))


def test_mkdir_and_rmdir_are_reported(watch, tmp_path):
    d = tmp_path / "newdir"
    os.mkdir(d, 0o750)
    st = os.stat(d)
    mk = watch.one(ev.MkdirEvent, paths_under(tmp_path))
    assert mk.mode == 0o750
    assert_matches_stat(mk.file, d)
    os.rmdir(d)
    rm = watch.one(ev.RmdirEvent, paths_under(tmp_path))
    assert rm.syscall == "rmdir" and rm.file.inode == st.st_ino


def test_the_utimes_family_reports_the_requested_times(watch, tmp_path):
    f = tmp_path / "t"
    f.write_text("x")
    assert sysc.utime(f, 1000, 2000) == 0
    assert sysc.utimes(f, (3000, 5), (4000, 6)) == 0
    assert sysc.futimesat(sysc.AT_FDCWD, f, (5000, 0), (6000, 0)) == 0
    os.utime(f, ns=(7_000_000_000_123, 8_000_000_000_456))
    os.utime(f)  # now
    got = watch.mine(ev.UtimesEvent, paths_under(tmp_path))
    assert [(e.syscall, e.access_time_ns, e.modification_time_ns) for e in got] == [
        ("utime", 1000 * 10**9, 2000 * 10**9),
        ("utimes", 3000 * 10**9 + 5000, 4000 * 10**9 + 6000),
        ("futimesat", 5000 * 10**9, 6000 * 10**9),
        ("utimensat", 7_000_000_000_123, 8_000_000_000_456),
        ("utimensat", None, None),
    ]
    assert_matches_stat(got[-1].file, f)


def test_setxattr_and_removexattr_report_the_name_and_namespace(watch, tmp_path):
    f = tmp_path / "x"
    f.write_text("x")
    try:
        os.setxattr(f, "user.opencws", b"1")
    except OSError as exc:
        pytest.skip(f"user xattrs unsupported here: {exc}")
    os.removexattr(f, "user.opencws")
    s = watch.one(ev.SetXattrEvent, paths_under(tmp_path))
    assert (s.syscall, s.name, s.namespace, s.retval) == ("setxattr", "user.opencws", "user", 0)
    assert_matches_stat(s.file, f)
    r = watch.one(ev.RemoveXattrEvent, paths_under(tmp_path))
    assert (r.syscall, r.name, r.namespace) == ("removexattr", "user.opencws", "user")


def test_a_path_not_in_the_dentry_cache_is_marked_unresolved_never_guessed(watch, tmp_path):
    deep = tmp_path / "cold" / "er"
    deep.mkdir(parents=True)
    victim = deep / "victim"
    victim.write_text("x")
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:  # evict the unused dentries: the walk must stop
        f.write("2")
    os.unlink(victim)
    e = watch.one(ev.UnlinkEvent, lambda e: e.file.path.endswith("/cold/er/victim"))
    assert e.retval == 0
    if e.file.path_resolution_error is None:
        pytest.skip("the dentries survived drop_caches (something else holds them)")
    assert e.file.path_resolution_error == "component not in the dentry cache"
    assert e.file.inode is None
    assert e.file.path == str(victim)  # the resolved prefix + the rest of the string the process passed
    assert e.file.resolved_len < len(e.file.path)
    assert str(victim).startswith(e.file.path[: e.file.resolved_len])


def test_the_at_variants_of_setxattr_and_removexattr_resolve_against_the_dirfd(watch, tmp_path):
    (tmp_path / "d").mkdir()
    f = tmp_path / "d" / "x"
    f.write_text("x")
    dfd = os.open(tmp_path / "d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        rc = sysc.setxattrat(dfd, "x", 0, "user.at", b"v", os.XATTR_CREATE)
        if rc == -errno.ENOSYS:
            pytest.skip("setxattrat needs Linux 6.13")
        assert rc == 0
        assert sysc.removexattrat(dfd, "x", 0, "user.at") == 0
    finally:
        os.close(dfd)
    s = watch.one(ev.SetXattrEvent, paths_under(tmp_path))
    assert (s.syscall, s.name, s.namespace, s.flags) == ("setxattrat", "user.at", "user", os.XATTR_CREATE)
    assert_matches_stat(s.file, f)
    r = watch.one(ev.RemoveXattrEvent, paths_under(tmp_path))
    assert (r.syscall, r.name, r.file.path) == ("removexattrat", "user.at", str(f))


def test_symlinks_on_the_way_are_followed_in_the_kernel(watch, tmp_path):
    import shutil
    import tempfile

    real = tmp_path / "real"
    real.mkdir()
    f = real / "f"
    f.write_text("x")
    short = Path(tempfile.mkdtemp(prefix="o", dir="/tmp"))  # a target short enough to be kept in the inode
    try:
        (short / "f").write_text("y")
        os.symlink("real", tmp_path / "rel")  # relative target
        os.symlink(str(short), tmp_path / "abs")  # absolute target
        os.symlink("real/f", tmp_path / "flink")  # a final symlink that chmod follows
        os.chmod(tmp_path / "rel" / "f", 0o600)
        os.chmod(tmp_path / "abs" / "f", 0o640)
        os.chmod(tmp_path / "flink", 0o644)
        got = watch.mine(ev.ChmodEvent, lambda e: e.pid == os.getpid() and e.mode in (0o600, 0o640, 0o644))
        assert [e.mode for e in got] == [0o600, 0o640, 0o644]
        assert [(e.file.path, e.file.inode, e.file.path_resolution_error) for e in got] == [
            (str(f), os.stat(f).st_ino, None), (str(short / "f"), os.stat(short / "f").st_ino, None),
            (str(f), os.stat(f).st_ino, None)]
        assert_matches_stat(got[-1].file, f)
    finally:
        shutil.rmtree(short)


def test_a_symlink_whose_target_is_not_in_memory_is_reported_unresolved(watch, tmp_path):
    real = tmp_path / ("long-directory-name-" * 4)  # an ext4 symlink target over 60 bytes lives in a block
    real.mkdir()
    (real / "f").write_text("x")
    os.symlink(str(real), tmp_path / "abs")
    os.chmod(tmp_path / "abs" / "f", 0o600)
    e = watch.one(ev.ChmodEvent, paths_under(tmp_path))
    if e.file.path_resolution_error is None:  # a filesystem that keeps long targets in memory
        assert e.file.path == str(real / "f")
    else:
        assert e.file.path_resolution_error == "symlink not followed in the kernel"
        assert e.file.path == str(tmp_path / "abs" / "f") and e.file.inode is None


def test_a_symlink_loop_stops_the_walk_and_is_reported_unresolved(watch, tmp_path):
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(OSError):
        os.chmod(tmp_path / "a", 0o600)
    e = watch.one(ev.ChmodEvent, paths_under(tmp_path))
    assert e.retval == -errno.ELOOP
    assert e.file.path_resolution_error == "symlink not followed in the kernel"
    assert e.file.inode is None
