"""Filtering in the kernel: event types, approvers, discarders. A filtered event must not arrive."""

from __future__ import annotations

import os
from pathlib import Path

import probe_sysc as sysc
import pytest
from probe_watch import paths_under

from inodes import inode_generation
from opencws.probe import events as ev
from opencws.probe.eventtypes import EventType
from opencws.probe.statx import mount_id

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]


def _file(tmp_path: Path, name: str) -> Path:
    f = tmp_path / name
    f.write_text("x")
    return f



def test_an_event_type_no_rule_uses_is_not_sent(watch, probe, tmp_path):
    f = _file(tmp_path, "f")
    probe.set_event_types({"mkdir"})  # mkdir: the watch's marker
    before = probe.counters()["chmod"]
    os.chmod(f, 0o600)
    assert not watch.mine(ev.ChmodEvent, paths_under(tmp_path))
    assert probe.counters()["chmod"].seen == before.seen  # it returned before counting anything


def test_hooks_are_attached_only_while_an_enabled_type_needs_them(probe):
    try:
        probe.set_event_types(set())
        assert probe.attached_hooks == ["sched_exec", "sched_exit", "sched_fork"]
        probe.set_event_types({"open"})
        assert probe.attached_hooks == ["sched_exec", "sched_exit", "sched_fork", "sys_exit", "uring_complete",
                                        "uring_submit"]
        probe.set_event_types({"setuid"})
        assert probe.attached_hooks == ["sched_exec", "sched_exit", "sched_fork", "sys_exit"]
        probe.set_event_types({"open", "unlink"})
        assert "sys_enter" in probe.attached_hooks
    finally:
        probe.set_event_types(list(EventType))


def test_process_events_always_flow(watch, probe):
    probe.set_event_types({"mkdir"})
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    assert watch.mine(ev.ForkEvent, lambda e: e.child_pid == pid)
    assert watch.mine(ev.ExitEvent, lambda e: e.pid == pid)


def test_an_open_without_an_approved_basename_is_filtered_in_the_kernel(watch, probe, tmp_path):
    wanted, other = _file(tmp_path, "wanted.txt"), _file(tmp_path, "other.txt")
    watch.checkpoint()
    probe.set_approvers("open", basenames=["wanted.txt"])
    before = probe.counters()["open"]
    os.close(os.open(other, os.O_RDONLY))
    os.close(os.open(wanted, os.O_RDONLY))
    got = watch.mine(ev.OpenEvent, paths_under(tmp_path))
    assert [e.file.path for e in got] == [str(wanted)]
    assert probe.counters()["open"].filtered > before.filtered


def test_open_flags_approve_an_open_without_an_approved_name(watch, probe, tmp_path):
    f = _file(tmp_path, "f")
    watch.checkpoint()
    probe.set_approvers("open", basenames=["nothing-matches"], flags_mask=os.O_CREAT | os.O_TRUNC)
    os.close(os.open(f, os.O_RDONLY))
    os.close(os.open(tmp_path / "created", os.O_CREAT | os.O_WRONLY, 0o600))
    got = watch.mine(ev.OpenEvent, paths_under(tmp_path))
    assert [e.file.path for e in got] == [str(tmp_path / "created")]


def test_an_exact_path_approves_only_that_file(watch, probe, tmp_path):
    a, b = _file(tmp_path, "a"), _file(tmp_path, "b")
    probe.set_approvers("chmod", paths=[str(b)])
    os.chmod(a, 0o600)
    os.chmod(b, 0o600)
    assert [e.file.path for e in watch.mine(ev.ChmodEvent, paths_under(tmp_path))] == [str(b)]


def test_clearing_approvers_lets_the_type_pass_again(watch, probe, tmp_path):
    f = _file(tmp_path, "f")
    probe.set_approvers("chmod", basenames=["zzz"])
    os.chmod(f, 0o600)
    probe.clear_approvers("chmod")
    os.chmod(f, 0o640)
    assert [e.mode for e in watch.mine(ev.ChmodEvent, paths_under(tmp_path))] == [0o640]


def test_a_discarded_inode_is_not_sent_until_discarders_are_invalidated(watch, probe, tmp_path):
    f = _file(tmp_path, "f")
    watch.checkpoint()
    probe.add_discarder_inode(os.stat(f).st_ino, mount_id(f), ["chmod"], inode_generation=inode_generation(f))
    os.chmod(f, 0o600)
    os.close(os.open(f, os.O_RDONLY))  # another type: not discarded
    assert not watch.mine(ev.ChmodEvent, paths_under(tmp_path))
    assert watch.mine(ev.OpenEvent, paths_under(tmp_path))
    probe.invalidate_discarders()
    os.chmod(f, 0o640)
    assert [e.mode for e in watch.mine(ev.ChmodEvent, paths_under(tmp_path))] == [0o640]


def test_a_rename_drops_the_discarder_of_the_renamed_inode(watch, probe, tmp_path):
    f = _file(tmp_path, "f")
    probe.add_discarder_inode(os.stat(f).st_ino, mount_id(f), ["chmod"], inode_generation=inode_generation(f))
    os.rename(f, tmp_path / "g")
    os.chmod(tmp_path / "g", 0o600)
    assert [e.file.path for e in watch.mine(ev.ChmodEvent, paths_under(tmp_path))] == [str(tmp_path / "g")]


def test_a_mount_invalidates_discarders(watch, probe, tmp_path):
    f = _file(tmp_path, "f")
    probe.add_discarder_inode(os.stat(f).st_ino, mount_id(f), ["chmod"], inode_generation=inode_generation(f))
    generation = probe.discarder_generation
    mnt = tmp_path / "m"
    mnt.mkdir()
    assert sysc.mount("none", mnt, "tmpfs", 0, b"size=1m") == 0
    sysc.umount2(mnt, 2)
    assert probe.discarder_generation > generation
    os.chmod(f, 0o600)
    assert watch.mine(ev.ChmodEvent, paths_under(tmp_path))


def test_an_ignored_process_stays_ignored_across_the_kernels_own_invalidations(watch, probe, tmp_path):
    f = _file(tmp_path, "f")
    go_r, go_w = os.pipe()
    child = os.fork()
    if child == 0:  # waits until ignored and after the invalidations, then chmods
        os.read(go_r, 1)
        os.chmod(f, 0o600)
        os._exit(0)
    try:
        probe.ignore_pid(child)
        generation = probe.discarder_generation
        mnt = tmp_path / "m"
        mnt.mkdir()
        assert sysc.mount("none", mnt, "tmpfs", 0, b"size=1m") == 0
        sysc.umount2(mnt, 2)
        assert probe.discarder_generation > generation  # the kernel's invalidation
        probe.invalidate_discarders()  # and the agent's
        filtered = probe.counters()["chmod"].filtered
        os.write(go_w, b"x")
        os.waitpid(child, 0)
        assert not watch.mine(ev.ChmodEvent, paths_under(tmp_path))
        assert probe.counters()["chmod"].filtered == filtered + 1
        assert watch.mine(ev.ExitEvent, lambda e: e.pid == child)  # exec, fork and exit still flow
    finally:
        probe.remove_discarder_pid(child)
        os.close(go_r)
        os.close(go_w)


def _open_discarded(probe, f: Path) -> None:
    probe.add_discarder_inode(os.stat(f).st_ino, mount_id(f), ["open"], inode_generation=inode_generation(f))


def _opened(watch, path: Path) -> list:
    """The opens of `path` the probe sends for one open now."""
    watch.checkpoint()
    fd = os.open(path, os.O_RDONLY)
    os.close(fd)
    return watch.mine(ev.OpenEvent, lambda e: e.file.path == str(path))


def test_a_hard_link_filtered_by_approvers_still_drops_the_inodes_discarder(watch, probe, tmp_path):
    f = _file(tmp_path, "x")
    _open_discarded(probe, f)
    assert not _opened(watch, f)  # the discarder holds
    probe.set_approvers("link", basenames=["only-this-name"])
    os.link(f, tmp_path / "evil")
    assert not watch.mine(ev.LinkEvent, paths_under(tmp_path))  # the link itself is filtered...
    assert len(_opened(watch, tmp_path / "evil")) == 1  # ...but the inode has a new name: its opens flow again


def test_a_hard_link_by_a_discarded_process_still_drops_the_inodes_discarder(watch, probe, tmp_path):
    f = _file(tmp_path, "x")
    _open_discarded(probe, f)
    probe.add_discarder_pid(os.getpid(), ["link"])
    os.link(f, tmp_path / "evil")
    assert not watch.mine(ev.LinkEvent, paths_under(tmp_path))
    assert len(_opened(watch, tmp_path / "evil")) == 1


@pytest.mark.parametrize("at_exit", [False, True], ids=["resolved at sys_enter", "resolved at sys_exit"])
def test_a_rename_by_a_discarded_process_still_invalidates_what_it_moves(watch, probe, tmp_path, at_exit):
    probe.set_event_types(list(EventType), resolve_at_exit=["rename"] if at_exit else [])
    f = _file(tmp_path, "x")
    d = tmp_path / "dir"
    d.mkdir()
    inner = _file(d, "inner")
    _open_discarded(probe, f)
    _open_discarded(probe, inner)
    probe.add_discarder_pid(os.getpid(), ["rename"])
    generation = probe.discarder_generation
    os.rename(f, tmp_path / "moved")  # the renamed file's discarder goes
    assert probe.discarder_generation == generation  # (a file: nothing else changed)
    os.rename(d, tmp_path / "moved-dir")  # a directory: every path under it changed
    assert probe.discarder_generation > generation
    assert not watch.mine(ev.RenameEvent, paths_under(tmp_path))  # (both decided before the invalidation)
    assert len(_opened(watch, tmp_path / "moved")) == 1
    assert len(_opened(watch, tmp_path / "moved-dir" / "inner")) == 1


@pytest.mark.parametrize("at_exit", [False, True], ids=["resolved at sys_enter", "resolved at sys_exit"])
def test_an_exchange_of_two_names_invalidates_the_discarders_of_both(watch, probe, tmp_path, at_exit):
    probe.set_event_types(list(EventType), resolve_at_exit=["rename"] if at_exit else [])
    harmless, watched = _file(tmp_path, "harmless"), _file(tmp_path, "watched")
    _open_discarded(probe, harmless)
    probe.set_approvers("rename", basenames=["only-this-name"])  # the exchange itself is filtered
    RENAME_EXCHANGE = 2
    assert sysc.renameat2(sysc.AT_FDCWD, watched, sysc.AT_FDCWD, harmless, RENAME_EXCHANGE) == 0
    assert not watch.mine(ev.RenameEvent, paths_under(tmp_path))
    assert len(_opened(watch, watched)) == 1  # the discarded inode now sits at `watched`


def test_a_hard_link_through_a_path_the_walk_cannot_finish_still_invalidates(watch, probe, tmp_path):
    f = _file(tmp_path, "x")
    _open_discarded(probe, f)
    os.link(str(tmp_path) + "/" + "./" * 120 + "x", tmp_path / "evil")  # beyond the walk's components
    assert len(_opened(watch, tmp_path / "evil")) == 1


def test_mount_changes_bump_the_discarder_generation_even_with_their_types_off(watch, probe, tmp_path):
    probe.set_event_types(["open"])  # no mount, umount or move_mount event wanted
    mnt = tmp_path / "m"
    mnt.mkdir()
    generation = probe.discarder_generation
    assert sysc.mount("none", mnt, "tmpfs", 0, b"size=1m") == 0
    assert probe.discarder_generation > generation
    generation = probe.discarder_generation
    assert sysc.umount2(mnt) == 0
    assert probe.discarder_generation > generation


def test_new_mount_ids_from_clones_and_new_namespaces_bump_the_generation(watch, probe, tmp_path):
    """A freed mount id comes back with any new mount: an open_tree clone, an fsmount, a new mount namespace."""
    import ctypes

    probe.set_event_types(["open"])
    steps = []
    generation = probe.discarder_generation
    tree = sysc.open_tree(sysc.AT_FDCWD, tmp_path, sysc.OPEN_TREE_CLONE)
    assert tree >= 0
    os.close(tree)
    steps.append(probe.discarder_generation > generation)
    generation = probe.discarder_generation
    fs = sysc.fsopen("tmpfs")
    assert sysc.fsconfig(fs, sysc.FSCONFIG_CMD_CREATE) == 0
    m = sysc.fsmount(fs)
    assert m >= 0
    os.close(m)
    os.close(fs)
    steps.append(probe.discarder_generation > generation)
    generation = probe.discarder_generation
    pid = os.fork()
    if pid == 0:  # unshare(CLONE_NEWNS)
        os._exit(0 if ctypes.CDLL(None, use_errno=True).unshare(0x00020000) == 0 else 1)
    assert os.waitpid(pid, 0)[1] == 0
    steps.append(probe.discarder_generation > generation)
    generation = probe.discarder_generation
    pid = os.fork()
    if pid == 0:  # clone(CLONE_NEWNS), through the unshare binary's fork
        os.execv("/usr/bin/unshare", ["unshare", "--mount", "--fork", "/bin/true"])
    assert os.waitpid(pid, 0)[1] == 0
    steps.append(probe.discarder_generation > generation)
    assert steps == [True, True, True, True]


def test_a_discarder_learned_from_an_event_older_than_an_invalidation_is_void(watch, probe, tmp_path):
    f = _file(tmp_path, "x")
    probe.invalidate_discarders()
    generation = probe.discarder_generation
    seen = _opened(watch, f)[0]  # the event, read before the agent gets to learn from it
    assert seen.file.generation == generation  # stamped by the kernel as it saw the file
    mnt = tmp_path / "m"
    mnt.mkdir()
    assert sysc.mount("none", mnt, "tmpfs", 0, b"size=1m") == 0  # meanwhile: a mount (a mount id reused, say)
    sysc.umount2(mnt, 2)
    assert probe.discarder_generation > seen.file.generation
    probe.add_discarder_inode(seen.file.inode, seen.file.mount_id, ["open"], generation=seen.file.generation,
                              inode_generation=seen.file.inode_generation)
    assert len(_opened(watch, f)) == 1  # learned from before the mount: it does not hold


def test_setting_a_files_inode_generation_bumps_the_discarder_generation(watch, probe, tmp_path):
    """ext4's FS_IOC_SETVERSION gives a file another identity (the one of a dead inode whose discarder the agent has
    yet to learn, say): every discarder learned from an event seen before is void."""
    import fcntl
    import struct

    f = _file(tmp_path, "f")
    generation = probe.discarder_generation
    fd = os.open(f, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, 0x40087602, struct.pack("<Q", 12345))  # FS_IOC_SETVERSION
    finally:
        os.close(fd)
    assert inode_generation(f) == 12345
    assert probe.discarder_generation > generation


def test_a_mount_by_an_ignored_process_still_bumps_the_generation(probe, tmp_path):
    mnt = tmp_path / "m"
    mnt.mkdir()
    go_r, go_w = os.pipe()
    child = os.fork()
    if child == 0:
        os.read(go_r, 1)
        rc = sysc.mount("none", mnt, "tmpfs", 0, b"size=1m")
        rc2 = sysc.umount2(mnt)
        os._exit(0 if rc == rc2 == 0 else 1)
    try:
        probe.ignore_pid(child)
        generation = probe.discarder_generation
        os.write(go_w, b"x")
        assert os.waitpid(child, 0)[1] == 0
        assert probe.discarder_generation >= generation + 2  # the mount and the umount
    finally:
        probe.remove_discarder_pid(child)
        os.close(go_r)
        os.close(go_w)


def test_a_discarded_process_sends_nothing_of_those_types(watch, probe, tmp_path):
    f = _file(tmp_path, "f")
    probe.add_discarder_pid(os.getpid(), ["chmod", "unlink"])
    os.chmod(f, 0o600)
    os.unlink(f)
    assert not watch.mine((ev.ChmodEvent, ev.UnlinkEvent), paths_under(tmp_path))
    assert probe.counters()["unlink"].filtered >= 1


def test_the_libbpf_callback_reader_gets_the_same_events(require_kernel, tmp_path):
    from opencws.probe.probe import Probe

    with Probe(reader="libbpf", event_types=["chmod"]) as p:
        f = _file(tmp_path, "f")
        os.chmod(f, 0o600)
        got = []
        for _ in range(50):
            got += [e for e in p.poll(50) if isinstance(e, ev.ChmodEvent) and e.file.path == str(f)]
            if got:
                break
        assert len(got) == 1 and got[0].mode == 0o600


def test_an_unlink_filtered_by_approvers_still_drops_the_discarder_of_its_inode(watch, probe, tmp_path):
    f = _file(tmp_path, "f")
    os.link(f, tmp_path / "g")  # the inode outlives the unlink
    probe.set_approvers("unlink", basenames=["never-matches"])
    probe.add_discarder_inode(os.stat(f).st_ino, mount_id(f), ["chmod"], inode_generation=inode_generation(f))
    os.unlink(f)
    os.chmod(tmp_path / "g", 0o600)
    assert not watch.mine(ev.UnlinkEvent, paths_under(tmp_path))
    assert [e.file.path for e in watch.mine(ev.ChmodEvent, paths_under(tmp_path))] == [str(tmp_path / "g")]


def test_a_full_ring_buffer_counts_every_lost_event_exactly(require_kernel, tmp_path):
    from opencws.probe.probe import Probe

    f = _file(tmp_path, f"ring-overflow-target-{os.getpid()}")  # approved by basename: not another run's file
    n = 500
    with Probe(ring_buffer_bytes=16 << 10, event_types=["chmod"]) as p:
        p.set_approvers("chmod", basenames=[f.name])
        for i in range(n):
            os.chmod(f, 0o600 | (i & 1) << 2)
        received = []
        while batch := p.poll(50):
            received += [e for e in batch if isinstance(e, ev.ChmodEvent) and e.file.path == str(f)]
        c = p.counters()["chmod"]
        assert c.lost > 0  # 16 KiB hold a few dozen records
        assert c.sent == len(received)
        assert c.sent + c.lost == n == c.seen - c.filtered
