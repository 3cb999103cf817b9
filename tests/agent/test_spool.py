"""The HTTP reporter's spool: batches kept on disk in order, whole or absent, within a size bound, for one
process at a time."""

from __future__ import annotations

import os

import pytest

from opencws.agent.spool import Spool, SpoolError, SpoolFull


def test_batches_come_back_oldest_first_whatever_the_order_they_were_written_in(tmp_path):
    spool = Spool(tmp_path, 1 << 20)
    for seq in (3, 1, 2):
        spool.put(seq, f"key{seq}", 10 * seq, b"x" * seq)
    assert [spool.head().seq for _ in range(1)] == [1]
    order = []
    while (head := spool.head()) is not None:
        order.append((head.seq, head.key, head.events, spool.read(head)))
        spool.remove(head)
    assert order == [(1, "key1", 10, b"x"), (2, "key2", 20, b"xx"), (3, "key3", 30, b"xxx")]
    assert len(spool) == 0 and spool.bytes == 0 and list(tmp_path.glob("*.batch")) == []


def test_a_spool_opened_again_finds_its_batches_keys_and_next_sequence_number(tmp_path):
    spool = Spool(tmp_path, 1 << 20)
    spool.put(7, "k7", 5, b"body7")
    spool.put(9, "k9", 6, b"body9")
    spool.close()
    again = Spool(tmp_path, 1 << 20)
    assert [(b.seq, b.key, b.events, b.size) for b in (again.head(),)] == [(7, "k7", 5, 5)]
    assert len(again) == 2 and again.events == 11 and again.bytes == 10 and again.next_seq == 10
    again.close()


def test_a_write_a_crash_interrupted_is_not_a_batch_and_is_cleared_at_open(tmp_path):
    (tmp_path / ".tmp-00000000000000000001-3-k.batch").write_bytes(b"half a bat")
    (tmp_path / "notes.txt").write_text("mine")
    spool = Spool(tmp_path, 1 << 20)
    assert len(spool) == 0 and spool.bytes == 0
    assert not list(tmp_path.glob(".tmp-*"))
    assert spool.unknown_files == ["notes.txt"] and (tmp_path / "notes.txt").exists()
    spool.close()


def test_a_batch_past_the_bound_is_refused_and_nothing_is_written(tmp_path):
    spool = Spool(tmp_path, 100)
    spool.put(1, "a", 1, b"x" * 60)
    with pytest.raises(SpoolFull, match="would pass its bound of 100"):
        spool.put(2, "b", 1, b"x" * 41)
    spool.put(3, "c", 1, b"x" * 40)  # exactly at the bound
    assert len(spool) == 2 and spool.bytes == 100
    assert sorted(p.name for p in tmp_path.glob("*.batch")) == [
        "00000000000000000001-1-a.batch", "00000000000000000003-1-c.batch"]
    spool.close()


def test_batches_are_private_files(tmp_path):
    spool = Spool(tmp_path / "s", 1 << 20)
    b = spool.put(1, "k", 1, b"{}")
    assert os.stat(b.path).st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "s").st_mode & 0o777 == 0o700
    spool.close()


def test_a_second_process_on_the_same_spool_is_refused_saying_who_holds_it(tmp_path):
    first = Spool(tmp_path, 1 << 20)
    with pytest.raises(SpoolError, match=rf"in use by another process \(pid {os.getpid()}\)"):
        Spool(tmp_path, 1 << 20)
    first.close()
    Spool(tmp_path, 1 << 20).close()  # released


def test_the_same_batch_spooled_twice_is_kept_once(tmp_path):
    spool = Spool(tmp_path, 1 << 20)
    spool.put(1, "k", 2, b"abc")
    spool.put(1, "k", 2, b"abc")
    assert len(spool) == 1 and spool.bytes == 3
    spool.close()
