"""Renames that move or free more than one file: an exchange is two moves, a rename over an existing name frees
that name's inode (real calls)."""

from __future__ import annotations

import os

import probe_sysc as sysc
import pytest

from opencws.probe import events as ev
from opencws.probe.eventtypes import EventType

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]

RENAME_EXCHANGE = 2


@pytest.mark.parametrize("at_exit", [False, True], ids=["resolved at sys_enter", "resolved at sys_exit"])
def test_rename_exchange_reports_both_moves(watch, probe, tmp_path, at_exit):
    if at_exit:
        probe.set_event_types(list(EventType), resolve_at_exit={"rename"})
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("A")
    b.write_text("BB")
    ino_a, ino_b = a.stat().st_ino, b.stat().st_ino
    assert sysc.renameat2(sysc.AT_FDCWD, a, sysc.AT_FDCWD, b, RENAME_EXCHANGE) == 0
    moves = watch.mine(ev.RenameEvent, lambda e: e.file.path.startswith(str(tmp_path)))
    assert [(e.file.path, e.file.inode, e.destination.path, e.destination.inode) for e in moves] == [
        (str(a), ino_a, str(b), ino_a), (str(b), ino_b, str(a), ino_b)]
    assert all(e.flags & RENAME_EXCHANGE and e.retval == 0 for e in moves)


def test_a_rename_over_an_existing_file_reports_the_overwritten_inode(watch, tmp_path):
    src, victim = tmp_path / "src", tmp_path / "victim"
    src.write_text("new")
    victim.write_text("old")
    victim.chmod(0o640)
    os.chown(victim, 123, 456)
    ino = victim.stat().st_ino
    os.rename(src, victim)
    plain = tmp_path / "plain"
    os.rename(victim, plain)  # (over nothing)
    over, onto_nothing = watch.mine(ev.RenameEvent, lambda e: e.file.path.startswith(str(tmp_path)))
    assert (over.overwritten_inode, over.overwritten_mode & 0o7777, over.overwritten_uid, over.overwritten_gid,
            over.overwritten_nlink) == (ino, 0o640, 123, 456, 1)
    assert onto_nothing.overwritten_inode is None and onto_nothing.overwritten_mode is None
