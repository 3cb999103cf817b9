"""Mounts, overlayfs and chroot: paths and mount facts resolved in the kernel across mount boundaries."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import probe_sysc as sysc
import pytest
from probe_watch import paths_under

from inodes import inode_generation
from opencws.probe import events as ev
from opencws.probe.statx import mount_id

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    assert sysc.mount("tmpfs", mnt, "tmpfs", 0, b"size=4m") == 0
    yield mnt
    sysc.umount2(mnt, 2)  # MNT_DETACH


@pytest.fixture
def overlay(tmp_path: Path) -> Iterator[Path]:
    """An overlay mounted at tmp_path/merged over tmp_path/lower (holding `from_lower`) and tmp_path/upper."""
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for d in (lower, upper, work, merged):
        d.mkdir()
    (lower / "from_lower").write_text("l")
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    assert sysc.mount("overlay", merged, "overlay", 0, opts) == 0
    yield merged
    sysc.umount2(merged, 2)


def test_a_mount_reports_the_new_mount_id_device_and_fs_type(watch, tmp_path):
    mnt = tmp_path / "m"
    mnt.mkdir()
    parent_mount = mount_id(mnt)
    assert sysc.mount("none", mnt, "tmpfs", 0, b"size=1m") == 0
    try:
        e = watch.one(ev.MountEvent, paths_under(tmp_path))
        assert e.retval == 0 and e.fs_type == "tmpfs"
        assert e.file.path == str(mnt) and e.file.mount_id == parent_mount
        assert e.root is not None and e.root.path == str(mnt)
        assert e.new_mount_id == mount_id(mnt)
        assert e.device == os.stat(mnt).st_dev
        assert e.root.fs_type == "tmpfs"
        assert e.group_id == 0  # a private mount has no peer group
    finally:
        assert sysc.umount2(mnt) == 0
    u = watch.one(ev.UmountEvent, paths_under(tmp_path))
    assert u.retval == 0 and u.file.mount_id == e.new_mount_id and u.file.fs_type == "tmpfs"


def test_a_file_on_a_tmpfs_mount_carries_that_mount(watch, tmpfs):
    f = tmpfs / "sub" / "file"
    f.parent.mkdir()
    fd = os.open(f, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    e = watch.one(ev.OpenEvent, lambda e: e.file.path == str(f))
    st = os.stat(f)
    assert e.file.fs_type == "tmpfs"
    assert e.file.mount_id == mount_id(f) != mount_id(tmpfs.parent)
    assert (e.file.inode, e.file.device) == (st.st_ino, st.st_dev)
    # and a path walk that crosses the mountpoint downwards (chmod resolves the user string in the kernel)
    os.chmod(f, 0o640)
    c = watch.one(ev.ChmodEvent, lambda e: e.file.path == str(f))
    assert c.file.inode == st.st_ino and c.file.mount_id == mount_id(f)


def test_a_shared_mount_reports_its_peer_group(watch, tmp_path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.mkdir()
    b.mkdir()
    assert sysc.mount("none", a, "tmpfs", 0, b"size=1m") == 0
    try:
        MS_SHARED, MS_BIND = 1 << 20, 4096
        assert sysc.mount("none", a, "", MS_SHARED) == 0
        assert sysc.mount(a, b, "", MS_BIND) == 0
        try:
            got = watch.mine(ev.MountEvent, lambda e: e.file.path == str(b))
            assert len(got) == 1 and got[0].group_id
            info = Path("/proc/self/mountinfo").read_text().splitlines()
            line = next(ln for ln in info if ln.split()[0] == str(got[0].new_mount_id))
            assert f"shared:{got[0].group_id}" in line
        finally:
            sysc.umount2(b, 2)
    finally:
        sysc.umount2(a, 2)


def test_an_overlayfs_file_is_flagged_when_it_is_in_the_upper_layer(watch, overlay):
    merged = overlay
    os.close(os.open(merged / "from_lower", os.O_RDONLY))
    os.close(os.open(merged / "new_upper", os.O_CREAT | os.O_WRONLY, 0o600))
    got = {e.file.path: e for e in watch.mine(ev.OpenEvent, paths_under(merged))}
    low = got[str(merged / "from_lower")]
    up = got[str(merged / "new_upper")]
    assert low.file.fs_type == up.file.fs_type == "overlay"
    assert not low.file.in_upper_layer
    assert up.file.in_upper_layer
    assert up.file.inode == os.stat(merged / "new_upper").st_ino


def test_a_file_carries_its_inodes_identity_an_overlay_file_its_real_inodes(watch, tmp_path, overlay, tmpfs):
    """The identity inode discarders are keyed by (i_generation): drawn by ext4 and tmpfs for each inode; an
    overlay inode has none of its own and takes the one of its real inode (upper layer, else lower); procfs
    gives none (0)."""
    merged, lower, upper = overlay, tmp_path / "lower", tmp_path / "upper"
    (tmp_path / "plain").write_text("x")
    (tmpfs / "t").write_text("x")
    (merged / "new_upper").write_text("u")
    watch.checkpoint()
    for f in (tmp_path / "plain", tmpfs / "t", merged / "from_lower", merged / "new_upper", "/proc/self/stat"):
        os.close(os.open(f, os.O_RDONLY))
    got = {e.file.path: e.file.inode_generation for e in watch.mine(ev.OpenEvent)}
    assert got[str(tmp_path / "plain")] == inode_generation(tmp_path / "plain") != 0
    assert got[str(tmpfs / "t")] == inode_generation(tmpfs / "t") != 0
    assert got[str(merged / "from_lower")] == inode_generation(lower / "from_lower")
    assert got[str(merged / "new_upper")] == inode_generation(upper / "new_upper")
    assert got[f"/proc/{os.getpid()}/stat"] == 0


def test_a_chown_through_an_overlay_reports_the_owner_before_a_copy_up_included(watch, tmp_path, overlay):
    merged = overlay
    os.chown(tmp_path / "lower" / "from_lower", 3000, 3000)  # (before the overlay looks the name up)
    os.stat(merged / "from_lower")  # (looked up first, as tools do: a name the cache lacks reads as unknown)
    os.chown(merged / "from_lower", 1000, 1000)  # (copied up to the upper layer, then changed)
    os.chown(merged / "from_lower", 1001, 1001)
    got = watch.mine(ev.ChownEvent, paths_under(merged))
    assert [(e.file.fs_type, e.file.uid, e.file.gid, e.new_uid) for e in got] == [
        ("overlay", 3000, 3000, 1000), ("overlay", 1000, 1000, 1001)]


def test_a_chrooted_process_reports_paths_from_its_root(watch, tmp_path):
    jail = tmp_path / "jail"
    (jail / "etc").mkdir(parents=True)
    pid = os.fork()
    if pid == 0:
        try:
            os.chroot(jail)
            os.chdir("/")
            os.close(os.open("/etc/inside", os.O_CREAT | os.O_WRONLY, 0o600))
            os.chmod("etc/inside", 0o644)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    opened = watch.mine(ev.OpenEvent, lambda e: e.pid == pid and e.file.path.endswith("inside"))
    assert [e.file.path for e in opened] == ["/etc/inside"]
    assert opened[0].file.inode == os.stat(jail / "etc" / "inside").st_ino
    chmod = watch.one(ev.ChmodEvent, lambda e: e.pid == pid)
    assert chmod.file.path == "/etc/inside" and chmod.file.path_resolution_error is None


def test_an_inode_discarder_learned_outside_a_chroot_does_not_hide_the_file_inside_it(watch, probe, tmp_path):
    jail = tmp_path / "jail"
    (jail / "etc").mkdir(parents=True)
    shadow = jail / "etc" / "shadow"
    shadow.write_text("x")
    watch.checkpoint()
    # as the agent would after a host process opened it: no rule matches <tmp>/jail/etc/shadow
    probe.add_discarder_inode(os.stat(shadow).st_ino, mount_id(shadow), ["open"],
                              inode_generation=inode_generation(shadow))
    fd = os.open(shadow, os.O_RDONLY)
    os.close(fd)
    pid = os.fork()
    if pid == 0:
        try:
            os.chroot(jail)
            os.close(os.open("/etc/shadow", os.O_RDONLY))  # where a rule on /etc/shadow would look
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    opens = watch.mine(ev.OpenEvent, lambda e: e.file.inode == os.stat(shadow).st_ino)
    # the host's open is filtered by the discarder, the chrooted one is not
    assert [(e.pid, e.file.path, e.in_chroot) for e in opens] == [(pid, "/etc/shadow", True)]


def _chrooted_child(jail: Path, go_r: int) -> int:
    """A child that chroots into `jail`, waits for a byte on `go_r`, then opens /etc/shadow there."""
    pid = os.fork()
    if pid == 0:
        try:
            os.chroot(jail)
            os.read(go_r, 1)
            os.close(os.open("/etc/shadow", os.O_RDONLY))
        finally:
            os._exit(0)
    return pid


def _child_with_a_chrooted_thread(jail: Path, go_r: int, ready_w: int) -> int:
    """A child one thread of which chroots alone (unshare(CLONE_FS)), says so on `ready_w`, waits for a byte on
    `go_r`, then opens /etc/shadow there."""
    pid = os.fork()
    if pid == 0:
        import ctypes
        import threading

        def alone() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            assert libc.unshare(0x200) == 0  # CLONE_FS: a root of its own
            os.chroot(jail)
            os.write(ready_w, str(threading.get_native_id()).encode())
            os.read(go_r, 1)
            os.close(os.open("/etc/shadow", os.O_RDONLY))

        try:
            t = threading.Thread(target=alone)
            t.start()
            t.join()
        finally:
            os._exit(0)
    return pid


@pytest.mark.parametrize("chrooted", ["before the probe starts", "while it runs", "a thread alone, before"])
def test_a_chroot_is_noticed_whether_it_predates_the_probe_or_not(require_kernel, tmp_path, chrooted,
                                                                  monkeypatch):
    """A fresh probe: no task is in a chroot until /proc shows one at start or a chroot() is seen."""
    from opencws.probe import probe as probe_module
    from opencws.probe.probe import Probe, chrooted_tasks

    jail = tmp_path / "jail"
    (jail / "etc").mkdir(parents=True)
    shadow = jail / "etc" / "shadow"
    shadow.write_text("x")
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = None
    try:
        if chrooted == "before the probe starts":
            pid = _chrooted_child(jail, go_r)
            time.sleep(0.2)  # (the chroot is made)
            assert (pid, str(jail)) in set(chrooted_tasks())
        elif chrooted == "a thread alone, before":
            pid = _child_with_a_chrooted_thread(jail, go_r, ready_w)
            tid = int(os.read(ready_r, 32))
            assert (tid, str(jail)) in set(chrooted_tasks())  # (its process's root is "/")
        else:  # as on a machine where /proc shows no chroot at start (here pid 1's root is unreadable)
            monkeypatch.setattr(probe_module, "chrooted_tasks", lambda: iter(()))
        with Probe(event_types=["open"]) as probe:
            probe.add_discarder_inode(os.stat(shadow).st_ino, mount_id(shadow), ["open"],
                              inode_generation=inode_generation(shadow))
            if pid is None:
                pid = _chrooted_child(jail, go_r)
            os.write(go_w, b"x")
            os.waitpid(pid, 0)
            pid = None
            got, deadline = [], time.monotonic() + 5
            while not got and time.monotonic() < deadline:
                got = [e for e in probe.poll(50) if isinstance(e, ev.OpenEvent) and e.file.path == "/etc/shadow"
                       and e.in_chroot]
            assert [e.file.path for e in got] == ["/etc/shadow"]
    finally:
        if pid is not None:  # (a failure before the child was released)
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        for fd in (go_r, go_w, ready_r, ready_w):
            os.close(fd)


def test_a_pivot_root_invalidates_the_discarders_learned_before_it(require_kernel, tmp_path):
    """The same (inode, mount) has a new path after pivot_root: <root>/etc/shadow becomes /etc/shadow."""
    import ctypes

    from opencws.probe.probe import Probe

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "old").mkdir()
    (root / "etc" / "shadow").write_text("x")
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    with Probe(event_types=["open"]) as probe:  # no mount type on: the kernel watches them all the same
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
                assert libc.unshare(0x00020000) == 0  # CLONE_NEWNS
                assert libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) == 0
                assert libc.mount(os.fsencode(root), os.fsencode(root), None, MS_BIND, None) == 0
                shadow = root / "etc" / "shadow"
                os.write(w1, f"{os.stat(shadow).st_ino} {mount_id(shadow)} {inode_generation(shadow)}".encode())
                os.read(r2, 1)  # its discarder is learned, as from <root>/etc/shadow
                os.chdir(root)
                assert libc.syscall(155, b".", b"old") == 0  # pivot_root(".", "old")
                os.chdir("/")
                os.close(os.open("/etc/shadow", os.O_RDONLY))
                status = 0
            finally:
                os.write(w1, b"!")  # (unblocks the parent if the child failed before its first write)
                os._exit(status)
        os.close(w1)
        got_ids = os.read(r1, 100)
        assert got_ids and got_ids != b"!", "the child failed to set up its namespace"
        ino, mnt, igen = map(int, got_ids.split())
        probe.add_discarder_inode(ino, mnt, ["open"], inode_generation=igen)
        os.write(w2, b"x")
        assert os.waitpid(pid, 0)[1] == 0
        got, deadline = [], time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            got = [e for e in probe.poll(50) if isinstance(e, ev.OpenEvent) and e.pid == pid
                   and e.file.path == "/etc/shadow"]
        assert [(e.file.path, e.in_chroot) for e in got] == [("/etc/shadow", False)]
    for fd in (r1, r2, w2):
        os.close(fd)


def test_a_process_at_its_namespaces_root_is_not_in_a_chroot(watch, tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    e = watch.mine(ev.OpenEvent, lambda e: e.file.path == str(f))[0]
    assert e.in_chroot is False


def _container_bundle(bundle: Path) -> Path:
    """An OCI bundle for runc: a busybox rootfs (returned) and its config."""
    import shutil
    import subprocess

    rootfs = bundle / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    for tool in ("sh", "cat"):
        (rootfs / "bin" / tool).symlink_to("busybox")
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    return rootfs


def _container(bundle: Path, name: str, *args: str):
    """`args` in a runc container (pivot_root: the container's root is the top of its mount namespace), its
    standard input a pipe."""
    import json
    import subprocess

    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(terminal=False, args=list(args))
    config["process"].pop("rlimits", None)
    config["linux"]["cgroupsPath"] = f"/system.slice/docker-{os.getpid():064x}.scope"
    (bundle / "config.json").write_text(json.dumps(config))
    return subprocess.Popen(["runc", "run", name], cwd=bundle, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)


def test_a_container_process_is_not_in_a_chroot_and_inode_discarders_apply_to_it(watch, probe, tmp_path):
    marker = _container_bundle(tmp_path) / "marker"
    marker.write_text("x")
    watch.checkpoint()
    ctr = _container(tmp_path, f"ocws-{os.getpid()}", "/bin/sh", "-c", "cat /marker; read go; cat /marker")
    try:
        inside = watch.wait_for(ev.OpenEvent, lambda e: e.file.path == "/marker", timeout=30)
        assert [e.in_chroot for e in inside] == [False] and inside[0].file.inode == os.stat(marker).st_ino
        # as the agent would: no rule matches /marker (the container's own mount of its root)
        probe.add_discarder_inode(inside[0].file.inode, inside[0].file.mount_id, ["open"],
                                  inode_generation=inside[0].file.inode_generation)
        watch.checkpoint()
        ctr.communicate(b"go\n", timeout=60)
    finally:
        ctr.kill()
        ctr.wait()
    assert ctr.returncode == 0
    assert not watch.mine(ev.OpenEvent, lambda e: e.file.path == "/marker")  # the discarder held inside


def test_dot_dot_onto_a_mountpoint_lands_on_the_mount_as_in_the_kernel(watch, tmp_path):
    t = tmp_path / "t"
    (t / "sub").mkdir(parents=True)  # sub: in the directory the mount will cover
    old = os.getcwd()
    os.chdir(t)
    try:
        assert sysc.mount("none", ".", "tmpfs", 0, b"size=1m") == 0  # on the cwd: "sub" is still found below
        try:
            with open("sub/../f", "w") as fh:  # the kernel: sub (below), "..", then the mount on top of t
                fh.write("x")
            os.chmod("sub/../f", 0o600)
            chmod = watch.one(ev.ChmodEvent, lambda e: e.file.path.endswith("/f"))
            st = os.stat(t / "f")
            assert (chmod.file.inode, chmod.file.mount_id) == (st.st_ino, mount_id(t / "f"))
            assert chmod.file.fs_type == "tmpfs" and chmod.file.path == str(t / "f")
        finally:
            sysc.umount2(t, 2)
    finally:
        os.chdir(old)


@pytest.fixture
def detached_tmpfs() -> Iterator[int]:
    """A tmpfs made with the new mount API (fsopen, fsconfig, fsmount), not attached yet: its mount fd."""
    fs = sysc.fsopen("tmpfs")
    assert fs >= 0, os.strerror(-fs)
    assert sysc.fsconfig(fs, sysc.FSCONFIG_SET_STRING, "size", b"1m") == 0
    assert sysc.fsconfig(fs, sysc.FSCONFIG_CMD_CREATE) == 0
    m = sysc.fsmount(fs)
    assert m >= 0, os.strerror(-m)
    yield m
    os.close(m)
    os.close(fs)


def test_a_tmpfs_attached_with_the_new_mount_api_is_reported_by_move_mount(watch, tmp_path, detached_tmpfs):
    mnt = tmp_path / "fsmount"
    mnt.mkdir()
    parent_mount = mount_id(mnt)
    try:
        dirfd = os.open(tmp_path, os.O_PATH)  # the target relative to a dirfd
        try:
            assert sysc.move_mount(detached_tmpfs, "", dirfd, "fsmount", sysc.MOVE_MOUNT_F_EMPTY_PATH) == 0
        finally:
            os.close(dirfd)
        e = watch.one(ev.MountEvent, paths_under(tmp_path))
        assert (e.syscall, e.retval, e.fs_type, e.flags) == ("move_mount", 0, "tmpfs", sysc.MOVE_MOUNT_F_EMPTY_PATH)
        assert e.file.path == str(mnt) and e.file.mount_id == parent_mount
        assert e.root is not None and e.root.path == str(mnt) and e.root.fs_type == "tmpfs"
        assert e.new_mount_id == mount_id(mnt) != parent_mount and e.device == os.stat(mnt).st_dev
    finally:
        sysc.umount2(mnt, 2)


def test_a_mount_moved_onto_a_directory_given_by_its_fd_alone_is_described_by_the_new_mount(watch, tmp_path,
                                                                                          detached_tmpfs):
    target = tmp_path / "here"
    target.mkdir()
    dirfd = os.open(target, os.O_PATH)
    try:
        flags = sysc.MOVE_MOUNT_F_EMPTY_PATH | sysc.MOVE_MOUNT_T_EMPTY_PATH
        assert sysc.move_mount(detached_tmpfs, "", dirfd, "", flags) == 0  # the target is the dirfd itself
        e = watch.one(ev.MountEvent, paths_under(tmp_path))
        assert (e.fs_type, e.file.path, e.root.path) == ("tmpfs", str(target), str(target))
        assert e.new_mount_id == mount_id(target) and e.file.mount_id == mount_id(tmp_path)
    finally:
        os.close(dirfd)
        sysc.umount2(target, 2)


def test_a_mount_on_the_current_directory_is_described_by_the_new_mount(watch, tmp_path):
    target = tmp_path / "cwd"
    target.mkdir()
    old = os.getcwd()
    os.chdir(target)
    try:
        assert sysc.mount("none", ".", "tmpfs", 0, b"size=1m") == 0
    finally:
        os.chdir(old)
    try:
        e = watch.one(ev.MountEvent, paths_under(tmp_path))
        assert (e.fs_type, e.file.path, e.new_mount_id) == ("tmpfs", str(target), mount_id(target))
        assert e.root.fs_type == "tmpfs"
    finally:
        sysc.umount2(target, 2)


def test_a_mount_moved_by_path_onto_a_dirfd_with_no_path_at_all_is_described(watch, tmpfs, tmp_path):
    target = tmp_path / "there"
    target.mkdir()
    moved = mount_id(tmpfs)
    dirfd = os.open(target, os.O_PATH)
    try:
        rc = sysc._call(429, sysc.AT_FDCWD, os.fsencode(tmpfs), dirfd, None, sysc.MOVE_MOUNT_T_EMPTY_PATH)
        assert rc == 0
        e = watch.one(ev.MountEvent, lambda e: e.syscall == "move_mount")
        assert (e.fs_type, e.file.path, e.new_mount_id) == ("tmpfs", str(target), moved)
    finally:
        os.close(dirfd)
        sysc.umount2(target, 2)


def test_a_remount_of_the_current_directory_names_its_mount_not_one_on_top(watch, tmpfs, tmp_path):
    MS_REMOUNT, MS_RDONLY = 32, 1
    under = mount_id(tmpfs)
    old = os.getcwd()
    os.chdir(tmpfs)  # the cwd: the root of `tmpfs`
    try:
        assert sysc.mount("none", ".", "tmpfs", 0, b"size=1m") == 0  # another one on top of it
        assert sysc.mount("none", ".", "", MS_REMOUNT | MS_RDONLY, b"size=4m") == 0  # the cwd's own mount
    finally:
        os.chdir(old)
    try:
        e = watch.one(ev.MountEvent, lambda e: e.flags & MS_REMOUNT)
        assert e.new_mount_id == under
    finally:
        sysc.umount2(tmpfs, 2)


def test_a_bind_mount_cloned_with_open_tree_is_reported_with_the_source_fs_type(watch, tmpfs, tmp_path):
    target = tmp_path / "bound"
    target.mkdir()
    tree = sysc.open_tree(sysc.AT_FDCWD, tmpfs, sysc.OPEN_TREE_CLONE)
    assert tree >= 0, os.strerror(-tree)
    try:
        assert sysc.move_mount(tree, "", sysc.AT_FDCWD, target, sysc.MOVE_MOUNT_F_EMPTY_PATH) == 0
        e = watch.one(ev.MountEvent, lambda e: e.file.path == str(target))
        assert e.syscall == "move_mount" and e.fs_type == "tmpfs" and e.new_mount_id == mount_id(target)
    finally:
        os.close(tree)
        sysc.umount2(target, 2)


def test_a_refused_move_mount_is_reported_with_its_target_and_error(watch, tmp_path):
    target = tmp_path / "missing"
    assert sysc.move_mount(sysc.AT_FDCWD, tmp_path, sysc.AT_FDCWD, target) == -2  # ENOENT
    e = watch.one(ev.MountEvent, paths_under(tmp_path))
    assert (e.syscall, e.retval, e.fs_type) == ("move_mount", -2, "")
    assert e.file.path == str(target) and e.root is None
