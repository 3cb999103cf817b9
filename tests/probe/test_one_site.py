"""One syscall hook site: unlink/rmdir/rename resolved at sys_exit, credentials "before" from the kernel's
per-thread cache, and inode discarders dropped when a new inode is born (not when an old one dies)."""

from __future__ import annotations

import ctypes
import os
import stat
import subprocess
import sys
import time

import pytest
from probe_watch import paths_under

from inodes import inode_generation, ramfs_on_one_cpu
from opencws.probe import events as ev
from opencws.probe.eventtypes import EventType
from opencws.probe.statx import mount_id

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]

FI_REMOVED = 1 << 10
HF_CREDS_BEFORE_UNKNOWN = 1 << 2
AT_EXIT = {"unlink", "rmdir", "rename"}


@pytest.fixture
def at_exit(watch, probe):
    probe.set_event_types(set(EventType) - {EventType.UMOUNT}, resolve_at_exit=AT_EXIT)  # umount needs sys_enter
    assert "sys_enter" not in probe.attached_hooks and "sys_exit" in probe.attached_hooks
    return watch


def test_an_unlink_at_exit_reports_the_path_and_mount_without_the_gone_inode(at_exit, tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    (d / "f").write_text("x")
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.unlink("f", dir_fd=dfd)  # relative to a dirfd
    finally:
        os.close(dfd)
    e = at_exit.one(ev.UnlinkEvent, paths_under(tmp_path))
    assert e.retval == 0 and e.file.path == str(d / "f") and e.file.resolved
    assert e.file.flags & FI_REMOVED and e.file.inode is None
    assert e.file.mount_id == mount_id(d) and e.file.fs_type == "ext4"


def test_an_rmdir_at_exit_drops_trailing_slashes_and_a_failed_unlink_keeps_its_inode(at_exit, tmp_path):
    (tmp_path / "sub").mkdir()
    os.rmdir(str(tmp_path / "sub") + "//")
    keep = tmp_path / "keep"
    keep.mkdir()
    with pytest.raises(IsADirectoryError):
        os.unlink(keep)
    r = at_exit.one(ev.RmdirEvent, lambda e: e.file.path.startswith(str(tmp_path)) and "sync" not in e.file.path)
    assert r.retval == 0 and r.file.path == str(tmp_path / "sub") and r.file.flags & FI_REMOVED
    u = at_exit.one(ev.UnlinkEvent, paths_under(tmp_path))
    assert u.retval < 0 and not u.file.flags & FI_REMOVED and u.file.inode == os.stat(keep).st_ino


def test_a_rename_at_exit_describes_the_source_by_the_inode_now_at_the_destination(at_exit, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    src = tmp_path / "a" / "f"
    src.write_text("x")
    st = os.stat(src)
    os.rename(src, tmp_path / "b" / "g")
    e = at_exit.one(ev.RenameEvent, paths_under(tmp_path))
    assert e.retval == 0 and e.file.path == str(src) and e.destination.path == str(tmp_path / "b" / "g")
    assert (e.file.inode, e.file.mode, e.file.mount_id) == (st.st_ino, st.st_mode, mount_id(tmp_path))
    assert not e.file.flags & FI_REMOVED and e.destination.inode == st.st_ino


def test_at_exit_unlink_events_still_pass_approvers(at_exit, probe, tmp_path):
    probe.set_approvers("unlink", basenames=["wanted"])
    for name in ("wanted", "other"):
        (tmp_path / name).write_text("x")
        os.unlink(tmp_path / name)
    assert [e.file.path for e in at_exit.mine(ev.UnlinkEvent, paths_under(tmp_path))] == [str(tmp_path / "wanted")]


@pytest.mark.parametrize("how", ["open-creat", "mknod", "o-tmpfile-then-link"])
def test_a_new_inode_reusing_a_discarded_number_is_not_dropped(watch, probe, tmp_path, how):
    for attempt in range(20):
        old = tmp_path / f"old-{attempt}"
        old.write_text("x")
        ino = os.stat(old).st_ino
        probe.add_discarder_inode(ino, mount_id(old), ["open"], inode_generation=inode_generation(old))
        os.close(os.open(old, os.O_RDONLY))  # dropped: the discarder holds
        os.unlink(old)
        new = tmp_path / f"new-{attempt}"
        if how == "open-creat":
            os.close(os.open(new, os.O_CREAT | os.O_WRONLY, 0o600))
        elif how == "mknod":
            os.mknod(new, stat.S_IFREG | 0o600)
        else:
            fd = os.open(tmp_path, os.O_TMPFILE | os.O_WRONLY, 0o600)
            libc = ctypes.CDLL(None, use_errno=True)
            assert libc.linkat(fd, b"", -100, os.fsencode(new), 0x1000) == 0, os.strerror(ctypes.get_errno())
            os.close(fd)
        if os.stat(new).st_ino == ino:
            break
        os.unlink(new)
    else:
        raise AssertionError("ext4 never reused the inode number: the test cannot show anything")
    os.close(os.open(new, os.O_RDONLY))
    opened = [(e.file.path, e.flags & os.O_CREAT) for e in watch.mine(ev.OpenEvent, paths_under(tmp_path))]
    assert (str(old), 0) not in opened  # the discarder held while its inode lived
    assert (str(new), 0) in opened  # the new inode's open arrives (another identity; its birth dropped it too)


def test_a_new_inode_created_by_a_discarded_process_does_not_keep_a_stale_discarder(at_exit, probe, tmp_path):
    """The process discarder is checked first; the birth of an inode must still drop a stale inode discarder. On a
    filesystem whose inodes have no identity beside their number (ramfs), where the discarder's key is the number
    and mount alone: stale discarders are put on the next 64 numbers, one of which the new file gets."""
    creator = ("import os, sys; print('ready', flush=True); sys.stdin.readline(); "
               "os.close(os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o600))")
    with ramfs_on_one_cpu(tmp_path / "ramfs") as fs:
        for attempt in range(20):
            generation = probe.discarder_generation
            new = fs / f"new-{attempt}"
            child = subprocess.Popen([sys.executable, "-c", creator, str(new)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
            assert child.stdout.readline() == b"ready\n"  # exec is over (an exec drops the pid's discarder)
            probe.add_discarder_pid(child.pid, ["open"])
            last = fs / f"last-{attempt}"
            last.write_text("x")
            ino, mnt = os.stat(last).st_ino, mount_id(last)
            for n in range(ino + 1, ino + 65):
                probe.add_discarder_inode(n, mnt, ["open"], inode_generation=0)
            child.communicate(b"go\n", timeout=30)
            probe.remove_discarder_pid(child.pid)
            covered = ino < os.stat(new).st_ino <= ino + 64
            if covered:
                os.close(os.open(new, os.O_RDONLY))
            # Activity elsewhere on the machine (a mount, a directory rename) may invalidate every discarder
            # meanwhile: such an attempt shows nothing, so it is tried again.
            if covered and probe.discarder_generation == generation:
                break
        else:
            raise AssertionError("no attempt gave the new file a number with a stale discarder, discarders intact")
        opened = [(e.file.path, e.pid) for e in at_exit.mine(ev.OpenEvent, paths_under(fs))]
    assert (str(new), child.pid) not in opened  # the creator itself was discarded
    assert (str(new), os.getpid()) in opened  # but the stale inode discarder went with the birth


def test_setuid_before_comes_from_the_cache_for_a_thread_running_before_the_probe(require_kernel):
    from opencws.probe.probe import Probe

    child = subprocess.Popen(
        [sys.executable, "-c", "import os, sys; sys.stdin.readline(); os.setgid(2345); os.setgid(2345); "
                               "os.setuid(3456); print('ok', flush=True)"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        with Probe(event_types=["setuid", "setgid"]) as p:
            assert "sys_enter" not in p.attached_hooks
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "ok"
            got: list = []
            deadline = time.monotonic() + 5
            while len(got) < 3 and time.monotonic() < deadline:
                got += [e for e in p.poll(50) if isinstance(e, (ev.SetuidEvent, ev.SetgidEvent))
                        and e.pid == child.pid]
    finally:
        child.wait(5)
    g1, g2, u = got
    assert (g1.before.gid, g1.before.egid, g1.after.gid) == (0, 0, 2345)
    assert (g2.before.gid, g2.after.gid) == (2345, 2345)  # the cache took the first call's result
    assert (u.before.uid, u.before.gid, u.after.uid) == (0, 2345, 3456)
    assert u.before.cap_effective != 0 and u.after.cap_effective == 0


def test_a_thread_started_after_the_probe_has_its_credentials_cached(watch):
    import threading

    def worker():
        os.setresgid(0, 0, 0)  # glibc makes every thread of the process call it

    pid = os.fork()
    if pid == 0:
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    events = watch.mine(ev.SetgidEvent, lambda e: e.pid == pid)
    assert any(e.tid != pid for e in events)
    assert all((e.syscall, e.before.gid, e.after.gid, e.before.cap_effective != 0) == ("setresgid", 0, 0, True)
               for e in events)


@pytest.mark.parametrize("resolve_at_exit", [False, True])
def test_a_directory_rename_invalidates_discarders_in_the_kernel_even_when_filtered(watch, probe, tmp_path,
                                                                                  resolve_at_exit):
    if resolve_at_exit:
        probe.set_event_types(set(EventType) - {EventType.UMOUNT}, resolve_at_exit=AT_EXIT)
    probe.set_approvers("rename", basenames=["never-matches"])
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    generation = probe.discarder_generation
    os.rename(tmp_path / "f", tmp_path / "g")  # a file: discarders under it are not concerned
    assert probe.discarder_generation == generation
    os.rename(tmp_path / "d", tmp_path / "e")
    assert probe.discarder_generation > generation
    assert watch.mine(ev.RenameEvent, paths_under(tmp_path)) == []


CHOWN_ENTER = {"chown_enter", "fchown_enter", "lchown_enter", "fchownat_enter"}


def test_a_chowns_owner_before_comes_from_its_own_tracepoints_not_a_second_raw_site(at_exit, probe, tmp_path):
    assert set(probe.attached_hooks) >= CHOWN_ENTER | ({"owner_ext4"} if probe.ext4 else set())
    f = tmp_path / "f"
    f.write_text("x")
    os.chown(f, 1000, 1000)
    os.chown(f, 2000, 2000)
    got = at_exit.mine(ev.ChownEvent, paths_under(tmp_path))
    assert [(e.file.uid, e.new_uid) for e in got] == [(0, 1000), (1000, 2000)]
    probe.set_event_types(set(EventType) - {EventType.UMOUNT, EventType.CHOWN}, resolve_at_exit=AT_EXIT)
    assert not (CHOWN_ENTER | {"owner_ext4"}) & set(probe.attached_hooks)
