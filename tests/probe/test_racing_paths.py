"""A path string rewritten by another thread during the call: the kernel copied it once at the start, the probe
reads it at the end. The event must not pass a decoy off as the file the kernel acted on (real racing threads,
through the program built from path_race.c): it names the file the kernel stamped, with the decoy beside it, or at
least says the path was rewritten."""

from __future__ import annotations

import os
import subprocess
from itertools import pairwise

import pytest
from probe_sysc import immutable

from opencws.probe import events as ev
from opencws.probe.eventtypes import EventType

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]



# The target and the decoy differ in their last byte only: the other thread's rewrite is then one byte store, and
# every string read (by the kernel or the probe) is one of the two names, never a mix that names a third file.


def _race(prog, call: str, target, decoy, watch, cls, attempts: int = 10) -> tuple[list, list]:
    """Run races of 20,000 calls until some successful call is reported under the decoy's name; (those, the
    others). (Bounded: the machine's whole activity shares the ring with these events.)"""
    for _ in range(attempts):
        watch.checkpoint()
        subprocess.run([str(prog), call, str(target), str(decoy), "20000"], capture_output=True, check=True,
                       timeout=60)
        ok = watch.mine(cls, lambda e: e.comm == "path_race" and e.retval == 0)
        forged = [e for e in ok if e.file.path == str(decoy)]
        if forged:
            return forged, [e for e in ok if e.file.path != str(decoy)]
    pytest.fail(f"no call of {attempts} races acted on the target while its path read as the decoy")


def _race_named(prog, call: str, target, decoy, watch, cls, attempts: int = 10) -> tuple[list, list]:
    """Run races of 20,000 calls until some successful call is reported as rewritten; (those, the others)."""
    for _ in range(attempts):
        watch.checkpoint()
        subprocess.run([str(prog), call, str(target), str(decoy), "20000"], capture_output=True, check=True,
                       timeout=60)
        ok = watch.mine(cls, lambda e: e.comm == "path_race" and e.retval == 0)
        rewritten = [e for e in ok if e.file.path_rewritten]
        if rewritten:
            return rewritten, [e for e in ok if not e.file.path_rewritten]
    pytest.fail(f"no call of {attempts} races was reported as rewritten")


def _named_with_decoy(rewritten: list, genuine: list, target, decoy, remade: bool = False) -> None:
    """Every success (the decoy cannot change) names the target, the file the kernel acted on; a rewritten one
    carries the decoy as the requested file, flagged too."""
    elsewhere = [e for e in rewritten + genuine if e.file.path != str(target)]
    assert not elsewhere, f"a success under another name: {elsewhere[0]}"
    assert all(e.requested_file is not None and e.requested_file.path == str(decoy)
               and e.requested_file.path_rewritten for e in rewritten), rewritten[0]
    if not remade:  # (a target made again before each call has another inode each time)
        assert all(e.file.inode == os.stat(target).st_ino for e in rewritten), rewritten[0]
    assert all(e.requested_file is None for e in genuine), genuine[0]


def test_a_chmod_whose_path_was_rewritten_names_the_file_the_kernel_changed(watch, tmp_path, path_race):
    target, decoy = tmp_path / "racer0", tmp_path / "racer1"
    for f in (target, decoy):
        f.write_text("x")
        f.chmod(0o600)
    with immutable(decoy):
        rewritten, genuine = _race_named(path_race, "chmod", target, decoy, watch, ev.ChmodEvent)
    _named_with_decoy(rewritten, genuine, target, decoy)


def test_a_chmod_whose_path_was_rewritten_to_a_name_of_nothing_names_the_file_the_kernel_changed(watch, tmp_path,
                                                                                                  path_race):
    target, decoy = tmp_path / "racer0", tmp_path / "racer1"  # (no such file: the walk ends on nothing)
    target.write_text("x")
    rewritten, genuine = _race_named(path_race, "chmod", target, decoy, watch, ev.ChmodEvent)
    _named_with_decoy(rewritten, genuine, target, decoy)
    assert all(e.requested_file.negative for e in rewritten)


@pytest.mark.parametrize("at_exit", [True, False], ids=["resolved at sys_exit", "resolved at sys_enter"])
def test_an_unlink_whose_path_was_rewritten_to_a_name_of_nothing_names_the_file_the_kernel_removed(
        watch, probe, tmp_path, path_race, at_exit):
    probe.set_event_types(list(EventType), resolve_at_exit={"unlink"} if at_exit else ())
    target, decoy = tmp_path / "racer0", tmp_path / "racer1"  # (before, a removal of nothing was reported)
    rewritten, genuine = _race_named(path_race, "unlink", target, decoy, watch, ev.UnlinkEvent)
    _named_with_decoy(rewritten, genuine, target, decoy, remade=True)


def test_a_setxattr_whose_path_was_rewritten_names_the_file_the_kernel_changed(watch, tmp_path, path_race):
    target, decoy = tmp_path / "racer0", tmp_path / "racer1"
    for f in (target, decoy):
        f.write_text("x")
    with immutable(decoy):
        rewritten, genuine = _race_named(path_race, "setxattr", target, decoy, watch, ev.SetXattrEvent)
    _named_with_decoy(rewritten, genuine, target, decoy)
    assert all(e.name == "user.race" for e in rewritten)


def test_a_mkdir_whose_path_was_rewritten_names_the_directory_the_kernel_made(watch, tmp_path, path_race):
    target, decoy = tmp_path / "racer0", tmp_path / "racer1"
    decoy.mkdir()  # (mkdir fails on it: every success made the target)
    rewritten, genuine = _race_named(path_race, "mkdir", target, decoy, watch, ev.MkdirEvent)
    _named_with_decoy(rewritten, genuine, target, decoy, remade=True)
    assert all(e.file.mode is not None and e.file.mode & 0o170000 == 0o040000 for e in rewritten)


def test_a_rename_resolved_at_sys_enter_whose_path_was_rewritten_says_so(watch, probe, tmp_path, path_race):
    probe.set_event_types(list(EventType), resolve_at_exit=())
    target, decoy = tmp_path / "racer0", tmp_path / "racer1"
    decoy.write_text("x")
    with immutable(decoy):  # (an immutable file cannot be renamed: every success moved the target)
        forged, genuine = _race(path_race, "rename", target, decoy, watch, ev.RenameEvent)
    assert all(e.file.path_rewritten and e.file.inode == decoy.stat().st_ino for e in forged), forged[0]
    assert not any(e.file.path_rewritten for e in genuine if e.file.path == str(target))


@pytest.mark.parametrize("at_exit", [True, False], ids=["resolved at sys_exit", "resolved at sys_enter"])
def test_an_unlink_whose_path_was_rewritten_names_the_file_the_kernel_removed(watch, probe, tmp_path, path_race,
                                                                             at_exit):
    probe.set_event_types(list(EventType), resolve_at_exit={"unlink"} if at_exit else ())
    target, decoy = tmp_path / "racer0", tmp_path / "racer1"
    decoy.write_text("x")
    with immutable(decoy):
        rewritten, genuine = _race_named(path_race, "unlink", target, decoy, watch, ev.UnlinkEvent)
    _named_with_decoy(rewritten, genuine, target, decoy, remade=True)
    # the removed file as it was
    assert all(e.file.inode is not None and e.file.inode != decoy.stat().st_ino and e.file.mode & 0o170000 == 0o100000
               for e in rewritten), rewritten[0]
    assert all(e.requested_file.inode == decoy.stat().st_ino for e in rewritten)


@pytest.mark.parametrize("at_exit", [True, False], ids=["resolved at sys_exit", "resolved at sys_enter"])
def test_an_rmdir_whose_path_was_rewritten_names_the_directory_the_kernel_removed(watch, probe, tmp_path, path_race,
                                                                                 at_exit):
    probe.set_event_types(list(EventType), resolve_at_exit={"rmdir"} if at_exit else ())
    target, decoy = tmp_path / "racer0", tmp_path / "racer1"
    decoy.mkdir()
    (decoy / "keep").write_text("x")  # (not empty: rmdir fails on it)
    rewritten, genuine = _race_named(path_race, "rmdir", target, decoy, watch, ev.RmdirEvent)
    _named_with_decoy(rewritten, genuine, target, decoy, remade=True)
    assert all(e.file.mode & 0o170000 == 0o040000 and e.file.inode != decoy.stat().st_ino for e in rewritten)


def test_a_utimes_whose_path_was_rewritten_names_the_file_the_kernel_changed(watch, tmp_path, path_race):
    target, decoy = tmp_path / "racer0", tmp_path / "racer1"
    for f in (target, decoy):
        f.write_text("x")
    with immutable(decoy):
        rewritten, genuine = _race_named(path_race, "utimes", target, decoy, watch, ev.UtimesEvent)
    _named_with_decoy(rewritten, genuine, target, decoy)


def test_a_link_whose_source_was_rewritten_names_the_file_the_kernel_linked(watch, tmp_path, path_race):
    target, decoy = tmp_path / "racer0", tmp_path / "racer1"
    for f in (target, decoy):
        f.write_text("x")
    with immutable(decoy):  # (a link to an immutable file is refused)
        rewritten, genuine = _race_named(path_race, "link", target, decoy, watch, ev.LinkEvent)
    # every success linked the target: named so, the new name the same inode
    assert not [e for e in rewritten + genuine if e.file.path != str(target)], "a success under another name"
    assert all(e.file.inode == e.destination.inode == target.stat().st_ino for e in rewritten), rewritten[0]
    assert all(e.destination.path == f"{target}.link" for e in rewritten)


@pytest.mark.parametrize("fs", ["ext4", "tmpfs"])
def test_a_chown_whose_path_was_rewritten_names_the_file_and_its_owner_before_or_says_it_is_unknown(
        watch, path_race, fs, request):
    # ext4: the owner read under the inode lock, always known; tmpfs: the owner read at the call's start, which the
    # rewritten string often makes unknown
    root = request.getfixturevalue("ext4").path if fs == "ext4" else request.getfixturevalue("tmpfs")
    target, decoy = root / "racer0", root / "racer1"
    for f in (target, decoy):
        f.write_text("x")
    os.chown(decoy, 4242, 4242)  # (an owner read from the decoy would show)
    with immutable(decoy):  # (a chown of an immutable file is refused: every success changed the target)
        rewritten, genuine = _race_named(path_race, "chown", target, decoy, watch, ev.ChownEvent)
    _named_with_decoy(rewritten, genuine, target, decoy)
    assert {e.file.fs_type for e in rewritten + genuine} == {fs}
    # the last race's successes in order: each one's owner before is the owner the one before it gave (1000, 1001,
    # 1002 in turn; the first: the one the previous race left, or root's), or unknown; never the decoy's
    ok = sorted(rewritten + genuine, key=lambda e: e.ktime_ns)
    known = [(a.new_uid, b) for a, b in pairwise(ok) if b.file.uid is not None]
    assert all((b.file.uid, b.file.gid) == (new, new) for new, b in known), known
    assert all(e.file.uid in (None, 0, 1000, 1001, 1002) for e in ok), [e.file.uid for e in ok]
    if fs == "ext4":
        assert len(known) == len(ok) - 1, "an owner before ext4 showed was not reported"
    else:
        assert len(known) > len(ok) // 10, "the owner before was seldom known"
