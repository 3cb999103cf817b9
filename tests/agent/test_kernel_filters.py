"""The policy's filters in the real kernel: approvers, discarders and their invalidation, unused types.

A filtered event must never arrive, and the kernel's `filtered` counter must say it was dropped there."""

from __future__ import annotations

import ctypes
import fcntl
import os
import stat
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from agent_reader import under, write_policy

from inodes import inode_generation, ramfs_on_one_cpu
from opencws.agent.filters import KernelFilters
from opencws.probe import events as ev
from opencws.probe.statx import mount_id

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]

UNAPPROVABLE_OPEN = 'open.file.path =~ "/etc/cron.d/*"'
"""An open rule the kernel cannot approve (no fixed basename, no flags): opens pass, discarders decide."""


def _file(tmp_path: Path, name: str) -> Path:
    f = tmp_path / name
    f.write_text("x")
    return f


def _open(path: Path | str, flags: int = os.O_RDONLY) -> None:
    os.close(os.open(path, flags, 0o600))


def _use(reader, probe, tmp_path, *expressions: str, learn: bool = True) -> KernelFilters:
    """Apply the policy's filters; with `learn`, the reader feeds every event to the agent's discarders."""
    reader.checkpoint()  # what the test did before (creating its files) teaches nothing
    filters = KernelFilters(probe, write_policy(tmp_path, *expressions))
    reader.filters = filters if learn else None
    return filters


def test_an_open_no_rule_could_match_is_filtered_in_the_kernel_and_an_approved_one_arrives(reader, probe, tmp_path):
    wanted, other = _file(tmp_path, "wanted.txt"), _file(tmp_path, "other.txt")
    filters = _use(reader, probe, tmp_path, 'open.file.name == "wanted.txt"')
    assert filters.plan.approvers["open"].basenames == {"wanted.txt"}
    before = probe.counters()["open"]
    _open(other)
    _open(wanted)
    assert [e.file.path for e in reader.mine(ev.OpenEvent, under(tmp_path))] == [str(wanted)]
    assert probe.counters()["open"].filtered > before.filtered


def test_open_flags_from_the_policy_approve_writes_only(reader, probe, tmp_path):
    f = _file(tmp_path, "f")
    # approvers only: a discarder would (rightly) drop f for good, its path matching no rule
    _use(reader, probe, tmp_path, UNAPPROVABLE_OPEN + " && open.flags & (O_WRONLY | O_RDWR) > 0", learn=False)
    before = probe.counters()["open"]
    _open(f)
    _open(f, os.O_WRONLY)
    got = reader.mine(ev.OpenEvent, under(tmp_path))
    assert [e.flags & os.O_ACCMODE for e in got] == [os.O_WRONLY]
    assert probe.counters()["open"].filtered > before.filtered


def test_event_types_no_rule_uses_are_not_sent(reader, probe, tmp_path):
    f = _file(tmp_path, "f")
    filters = _use(reader, probe, tmp_path, "bpf.cmd == BPF_PROG_LOAD")
    assert "chmod" not in filters.plan.event_types and "open" not in filters.plan.event_types
    before = probe.counters()
    os.chmod(f, 0o600)
    _open(f)
    assert reader.mine((ev.ChmodEvent, ev.OpenEvent), under(tmp_path)) == []
    after = probe.counters()
    assert after["chmod"].seen == before["chmod"].seen  # returned before counting anything
    assert after["open"].sent == before["open"].sent


def _outside(probe) -> tuple[int, int]:
    """What the rest of the machine does to a test: a mount or umount anywhere moves the discarder generation
    (every discarder is invalidated, as it must be), and a full ring buffer loses records (counted)."""
    return probe.discarder_generation, sum(c.lost for c in probe.counters().values())


def _despite_the_machine(probe, attempt: Callable[[], None], tries: int = 10) -> None:
    """Run attempt; when it fails while something outside the test moved (`_outside`), try again from a clean
    slate (what the failed attempt taught the kernel is forgotten)."""
    for i in range(tries):
        before = _outside(probe)
        try:
            attempt()
            return
        except AssertionError:
            if _outside(probe) == before or i == tries - 1:
                raise
            probe.invalidate_discarders()


def _discard(reader, probe, f: Path) -> None:
    _despite_the_machine(probe, lambda: _discard_once(reader, probe, f))


def _discard_once(reader, probe, f: Path) -> None:
    """Open f once: the event arrives, the agent learns the inode discarder; the next open is dropped."""
    reader.checkpoint()
    _open(f)
    assert len(reader.mine(ev.OpenEvent, lambda e: e.file.path == str(f))) == 1
    assert reader.learned_from(path=str(f)) == ["inode"]
    reader.checkpoint()
    before = probe.counters()["open"]
    _open(f)
    assert reader.mine(ev.OpenEvent, lambda e: e.file.inode == os.stat(f).st_ino) == []
    assert probe.counters()["open"].filtered > before.filtered


def test_a_discarded_inode_stops_arriving_and_arrives_again_after_a_rename(reader, probe, tmp_path):
    f = _file(tmp_path, "f")
    _use(reader, probe, tmp_path, UNAPPROVABLE_OPEN)
    _discard(reader, probe, f)
    os.rename(f, tmp_path / "g")
    _open(tmp_path / "g")
    assert [e.file.path for e in reader.mine(ev.OpenEvent, under(tmp_path))] == [str(tmp_path / "g")]


class _Inconclusive(Exception):
    """The attempt shows nothing: ext4 gave the freed number to another file of the machine, or the machine
    moved under it (`_outside`)."""


def _learned_late(reader, probe, x: Path, before: tuple[int, int]) -> None:
    """The agent, reading now, learned x's inode discarder from its old open; unless the ring buffer lost records
    meanwhile (the open among them, maybe: `_outside`)."""
    reader.sync()
    learned = reader.learned_from(path=str(x))
    if learned != ["inode"] and _outside(probe)[1] != before[1]:
        raise _Inconclusive
    seen = [(e.type, e.file.path, e.file.inode_generation) for e in reader.seen
            if e.pid == os.getpid() and getattr(e, "file", None) is not None]
    assert learned == ["inode"], (before, _outside(probe), seen)


def _until_conclusive(probe, attempt: Callable[[], None], tries: int = 60) -> None:
    """Attempts until one is conclusive. (A machine whose other jobs mount, or rename directories, bumps the
    generation 20 times a second at worst: an attempt of about 100 ms is then clean once in 8.)"""
    for _ in range(tries):
        try:
            attempt()
            return
        except _Inconclusive:
            probe.invalidate_discarders()  # a clean slate for the next attempt
    raise AssertionError(f"{tries} attempts showed nothing (the freed inode number always went to another file, or "
                         "the machine always invalidated the discarders meanwhile)")


def test_no_unlink_hook_for_discarders_and_a_new_inode_reusing_the_number_arrives(reader, probe, tmp_path):
    filters = _use(reader, probe, tmp_path, UNAPPROVABLE_OPEN)
    assert "unlink" not in filters.plan.event_types and "sys_enter" not in probe.attached_hooks
    names = iter(range(1000))

    def attempt() -> None:
        n = next(names)
        f, g = tmp_path / f"f{n}", tmp_path / f"g{n}"
        reader.filters = None  # its creation teaches nothing
        f.write_text("x")
        reader.checkpoint()
        reader.filters = filters
        ino = os.stat(f).st_ino
        _discard_once(reader, probe, f)
        os.unlink(f)
        _open(g, os.O_CREAT | os.O_WRONLY)  # ext4 gives the freed number to the next inode of the group...
        got = reader.mine(ev.OpenEvent, lambda e: e.file.path == str(g))
        if os.stat(g).st_ino != ino:
            raise _Inconclusive  # ...unless another process of the machine took it first
        assert len(got) == 1 and got[0].file.inode == ino  # the birth dropped the stale discarder

    _until_conclusive(probe, lambda: _despite_the_machine(probe, attempt))


def test_a_discarder_learned_after_its_inode_died_spares_the_file_born_on_its_number(reader, probe, tmp_path):
    """The agent reads events late: an open of x waits in the ring buffer while x is removed and a new file is
    born on its number (mknod: no event to learn from). Learning x's discarder then must not hide the new file:
    the discarder is keyed by x's identity (its inode generation), which the new inode does not have."""
    filters = _use(reader, probe, tmp_path, UNAPPROVABLE_OPEN)
    names = iter(range(1000))

    def attempt() -> None:
        n = next(names)
        x, f = tmp_path / f"x{n}", tmp_path / f"f{n}"
        reader.filters = None  # its creation teaches nothing
        x.write_text("x")
        reader.checkpoint()
        reader.filters = filters
        ino = os.stat(x).st_ino
        before = _outside(probe)
        _open(x)  # its event waits in the ring buffer: the agent has not read it yet
        os.unlink(x)
        os.mknod(f, stat.S_IFREG | 0o600)
        if os.stat(f).st_ino != ino:
            raise _Inconclusive
        _learned_late(reader, probe, x, before)  # the agent reads the old open now
        reader.checkpoint()
        _open(f)
        got = [e.file.path for e in reader.mine(ev.OpenEvent, under(tmp_path))]
        if _outside(probe) != before:
            raise _Inconclusive  # (a mount invalidated the discarder: the open arrives whatever the agent does)
        assert got == [str(f)]

    _until_conclusive(probe, attempt)


BIRTHS = ["open-creat", "o-tmpfile", "mknod", "link-of-o-tmpfile", "rename-over"]
"""Every way a file is born: an open that creates it, a nameless O_TMPFILE (opened again through its fd), mknod,
an O_TMPFILE given a name, and a new inode renamed over an existing name."""

_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000
BIRTH_FLAGS = os.O_CREAT | os.O_TMPFILE


class _Born:
    """A file born in `folder` by `how`, named `name` (o-tmpfile: nameless, reached through its fd); `rename-over`
    needs `name` to exist already (so that it is made before the number to be reused is freed)."""

    def __init__(self, folder: Path, name: str, how: str):
        self.fd = -1
        self.path = folder / name
        if how == "open-creat":
            _open(self.path, os.O_CREAT | os.O_WRONLY)
        elif how == "mknod":
            os.mknod(self.path, stat.S_IFREG | 0o600)
        elif how in ("o-tmpfile", "link-of-o-tmpfile"):
            self.fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o600)
            if how == "o-tmpfile":
                self.path = Path(f"/proc/self/fd/{self.fd}")
            else:
                rc = _libc.linkat(self.fd, b"", AT_FDCWD, os.fsencode(self.path), AT_EMPTY_PATH)
                assert rc == 0, os.strerror(ctypes.get_errno())
        else:
            assert how == "rename-over" and self.path.exists()
            os.mknod(folder / f"{name}.new", stat.S_IFREG | 0o600)
            os.rename(folder / f"{name}.new", self.path)

    @staticmethod
    def prepare(folder: Path, name: str, how: str) -> None:
        """What must exist before the birth: the name a rename goes over."""
        if how == "rename-over":
            (folder / name).write_text("the file replaced")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)


def _opens_of(reader, ino: int, mnt: int) -> list[tuple[int, int]]:
    """(inode, birth flags) of this process's opens of inode `ino` on mount `mnt` since the last checkpoint."""
    return [(e.file.inode, e.flags & BIRTH_FLAGS)
            for e in reader.mine(ev.OpenEvent, lambda e: e.file.mount_id == mnt and e.file.inode == ino)]


@pytest.mark.parametrize("how", BIRTHS)
def test_a_discarder_learned_late_spares_a_file_born_on_its_number_in_every_way(reader, probe, tmp_path, how):
    """As above, on ext4 (which gives a freed number to the next inode at once), for every way of birth. The new
    file is one a rule watches (so that its own events teach nothing): the attacker's file, whose opens a stale
    discarder would hide."""
    watched = f'open.file.path =~ "{tmp_path}/watched-*"'
    filters = _use(reader, probe, tmp_path, UNAPPROVABLE_OPEN, watched)
    assert "open" not in filters.plan.approvers  # every open reaches the agent: discarders decide
    mnt = mount_id(tmp_path)
    names = iter(range(1000))

    def attempt() -> None:
        n = next(names)
        x, name = tmp_path / f"x{n}", f"watched-{n}"
        reader.filters = None  # the files made before teach nothing
        x.write_text("x")
        _Born.prepare(tmp_path, name, how)
        reader.checkpoint()
        reader.filters = filters
        ino, generation, lost = os.stat(x).st_ino, *_outside(probe)
        _open(x)  # its event waits in the ring buffer: the agent has not read it yet
        os.unlink(x)
        born = _Born(tmp_path, name, how)
        try:
            if os.stat(born.path).st_ino != ino:
                raise _Inconclusive
            # the agent reads the old open now (and the birth's own events: nothing to learn)
            _learned_late(reader, probe, x, (generation, lost))
            reader.checkpoint()
            _open(born.path)
            got = _opens_of(reader, ino, mnt)
        finally:
            born.close()
        # a hard link bumps the discarder generation itself (x's discarder is void: that is its protection); any
        # other bump is a mount elsewhere, which voids the discarder whatever the agent does: tried again
        if _outside(probe) != (generation + (how == "link-of-o-tmpfile"), lost):
            raise _Inconclusive
        assert got == [(ino, 0)]

    _until_conclusive(probe, attempt)


@pytest.fixture(scope="module")
def tmpfs(tmp_path_factory) -> Iterator[Path]:
    """A tmpfs of the module's own: it numbers its inodes one after the other and never reuses a number, so
    the number of the next file born there is known in advance."""
    d = tmp_path_factory.mktemp("births") / "tmpfs"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "none", str(d)], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=True)


@pytest.fixture
def ramfs(tmp_path) -> Iterator[Path]:
    """A ramfs (no identity: generation 0), the test on one CPU (`inodes.ramfs_on_one_cpu`)."""
    with ramfs_on_one_cpu(tmp_path / "ramfs") as fs:
        yield fs


def _first_discarded(reader, probe, fs: Path, n: str, how: str, identity: Callable[[Path], int]) -> tuple[int, int]:
    """A birth test's files on `fs`: what `how` needs, then `first`, whose open discarder is put in place by hand
    (with `identity(first)`) before it is opened once (dropped while the discarder holds). Its number and identity."""
    _Born.prepare(fs, f"born-{n}", how)
    first = _file(fs, f"first-{n}")
    ino, igen = os.stat(first).st_ino, identity(first)
    reader.checkpoint()
    probe.add_discarder_inode(ino, mount_id(fs), ["open"], inode_generation=igen)
    _open(first)
    return ino, igen


@pytest.mark.parametrize("how", BIRTHS)
def test_a_stale_discarder_of_a_tmpfs_number_never_hides_the_file_born_on_it(reader, probe, tmp_path, tmpfs, how):
    """tmpfs reuses a number only once its count wraps: the stale discarder is put in place directly, after the
    birth (as the agent learns it late), on the number the new file got, with the identity of another inode (the
    dead one it would have been learned from)."""
    _use(reader, probe, tmp_path, UNAPPROVABLE_OPEN, learn=False)
    mnt = mount_id(tmpfs)
    names = iter(range(1000))

    def attempt() -> None:
        generation = probe.discarder_generation
        n = f"{how}-{next(names)}"
        ino, dead = _first_discarded(reader, probe, tmpfs, n, how, inode_generation)
        born = _Born(tmpfs, f"born-{n}", how)
        try:
            assert os.stat(born.path).st_ino == ino + 1
            probe.add_discarder_inode(ino + 1, mnt, ["open"], inode_generation=dead, generation=generation)
            _open(born.path)
        finally:
            born.close()
        # the open of `first` arriving means a mount elsewhere invalidated every discarder: tried again
        assert _opens_of(reader, ino, mnt) == []
        if how != "link-of-o-tmpfile":  # (a hard link bumps the generation: the stale discarder is void anyway)
            assert probe.discarder_generation == generation
        assert _opens_of(reader, ino + 1, mnt)[-1:] == [(ino + 1, 0)]

    _despite_the_machine(probe, attempt)


@pytest.mark.parametrize("how", BIRTHS)
def test_on_a_filesystem_without_identity_a_birth_drops_the_discarder_of_its_number(reader, probe, tmp_path, ramfs,
                                                                                    how):
    """ramfs gives no identity: a discarder of its files (which the agent never learns, but the probe takes) is
    keyed by number and mount alone, and every birth drops the one of its number, as before identities."""
    _use(reader, probe, tmp_path, UNAPPROVABLE_OPEN, learn=False)
    mnt = mount_id(ramfs)
    names = iter(range(1000))

    def attempt() -> None:
        n = f"{how}-{next(names)}"
        ino, _ = _first_discarded(reader, probe, ramfs, n, how, lambda _: 0)
        probe.add_discarder_inode(ino + 1, mnt, ["open"], inode_generation=0)
        born = _Born(ramfs, f"born-{n}", how)
        try:
            if os.stat(born.path).st_ino != ino + 1:
                raise _Inconclusive  # (another file of the machine took the number first)
            _open(born.path)
        finally:
            born.close()
        assert _opens_of(reader, ino, mnt) == []  # (else a mount elsewhere invalidated every discarder)
        assert _opens_of(reader, ino + 1, mnt)[-1:] == [(ino + 1, 0)]

    _until_conclusive(probe, lambda: _despite_the_machine(probe, attempt))


def test_no_inode_discarder_is_learned_on_a_filesystem_without_identity(reader, probe, tmp_path, ramfs):
    f = _file(ramfs, "plain")
    filters = _use(reader, probe, tmp_path, UNAPPROVABLE_OPEN)
    refused = filters.counters()["inodes_without_identity"]  # (this process's opens of /proc files, say)
    _open(f)
    _open(f)
    assert len(reader.mine(ev.OpenEvent, lambda e: e.file.path == str(f))) == 2
    assert reader.learned_from(path=str(f)) == []
    assert filters.counters()["inodes_without_identity"] >= refused + 2


FS_IOC_SETVERSION = 0x40087602


def test_a_file_given_the_identity_of_a_dead_inode_is_not_hidden_by_its_late_discarder(reader, probe, tmp_path):
    """ext4 lets a file's owner set its inode generation: the new file takes the dead one's, whose discarder the
    agent learns later still. The kernel bumps the discarder generation on that ioctl: every discarder learned
    from an event seen before it is void."""
    filters = _use(reader, probe, tmp_path, UNAPPROVABLE_OPEN)
    names = iter(range(1000))

    def attempt() -> None:
        n = next(names)
        x, f = tmp_path / f"x{n}", tmp_path / f"f{n}"
        reader.filters = None
        x.write_text("x")
        reader.checkpoint()
        reader.filters = filters
        ino, dead, before = os.stat(x).st_ino, inode_generation(x), _outside(probe)
        _open(x)  # its event waits in the ring buffer
        os.unlink(x)
        os.mknod(f, stat.S_IFREG | 0o600)
        if os.stat(f).st_ino != ino:
            raise _Inconclusive
        fd = os.open(f, os.O_RDONLY)
        try:
            fcntl.ioctl(fd, FS_IOC_SETVERSION, struct.pack("<Q", dead))
        finally:
            os.close(fd)
        assert inode_generation(f) == dead
        _learned_late(reader, probe, x, before)
        reader.checkpoint()
        _open(f)
        assert [e.file.path for e in reader.mine(ev.OpenEvent, under(tmp_path))] == [str(f)]

    _until_conclusive(probe, attempt)


def test_a_renamed_directory_invalidates_the_discarders_under_it(reader, probe, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    f = _file(d, "f")
    _use(reader, probe, tmp_path, UNAPPROVABLE_OPEN)
    _discard(reader, probe, f)
    os.rename(d, tmp_path / "moved")
    reader.sync()  # the agent reads the rename (until it has, the kernel still drops: see the report)
    _open(tmp_path / "moved" / "f")
    assert [e.file.path for e in reader.mine(ev.OpenEvent, under(tmp_path))] == [str(tmp_path / "moved" / "f")]


def test_a_hard_link_to_a_discarded_inode_drops_its_discarder(reader, probe, tmp_path):
    f = _file(tmp_path, "f")
    _use(reader, probe, tmp_path, UNAPPROVABLE_OPEN)
    _discard(reader, probe, f)
    os.link(f, tmp_path / "h")
    reader.sync()  # the agent reads the link event
    _open(tmp_path / "h")
    assert [e.file.path for e in reader.mine(ev.OpenEvent, under(tmp_path))] == [str(tmp_path / "h")]


def test_a_rule_reload_invalidates_discarders(reader, probe, tmp_path):
    f = _file(tmp_path, "f")
    filters = _use(reader, probe, tmp_path, UNAPPROVABLE_OPEN)
    _discard(reader, probe, f)
    generation, counted = probe.discarder_generation, filters.counters()
    assert counted["inodes"] >= 1
    filters.reload(write_policy(tmp_path, UNAPPROVABLE_OPEN))
    assert probe.discarder_generation != generation
    assert filters.counters()["invalidations"] > counted["invalidations"]
    _open(f)
    assert len(reader.mine(ev.OpenEvent, under(tmp_path))) == 1


def test_a_process_no_rule_could_match_is_discarded_for_that_type(reader, probe, tmp_path):
    a, b = _file(tmp_path, "a"), _file(tmp_path, "b")
    _use(reader, probe, tmp_path, 'chmod.file.destination.mode & S_ISUID > 0 && process.file.path == "/opt/x/tool"')

    def attempt() -> None:
        reader.checkpoint()
        os.chmod(a, 0o600)
        assert len(reader.mine(ev.ChmodEvent, under(tmp_path))) == 1
        # no path would do (the rule does not constrain it); this executable does
        assert reader.learned_from(path=str(a)) == ["pid"]
        reader.checkpoint()
        before = probe.counters()["chmod"]
        os.chmod(b, 0o600)
        assert reader.mine(ev.ChmodEvent, under(tmp_path)) == []
        assert probe.counters()["chmod"].filtered > before.filtered

    _despite_the_machine(probe, attempt)
    _open(a)  # another type: not discarded (and not enabled either)


def test_a_mount_no_rule_uses_still_invalidates_discarders_in_the_kernel_and_is_not_sent(reader, probe, tmp_path):
    filters = _use(reader, probe, tmp_path, UNAPPROVABLE_OPEN)
    assert "mount" in filters.plan.filter_all
    generation = probe.discarder_generation
    d = tmp_path / "mnt"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "none", str(d)], check=True)
    try:
        assert probe.discarder_generation > generation
        assert reader.mine(ev.MountEvent, under(tmp_path)) == []
    finally:
        subprocess.run(["umount", str(d)], check=True)


def test_the_default_policy_runs_on_one_syscall_hook_site(reader, probe):
    from opencws.secl import load_policies
    from opencws.secl.policies import DEFAULT_POLICY

    reader.checkpoint()
    filters = KernelFilters(probe, load_policies([DEFAULT_POLICY]))
    assert {"unlink", "rmdir", "rename", "setuid", "setgid", "capset"} <= filters.plan.event_types
    assert "sys_enter" not in probe.attached_hooks and "sys_exit" in probe.attached_hooks
