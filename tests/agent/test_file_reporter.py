"""The file reporter: size-based rotation, fsync before a file is renamed away, and a disk that fills up."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from opencws.agent.reporters import FileReporter, ReporterError


def line(i: int, size: int = 100) -> bytes:
    """A JSON document that, with its newline, takes exactly `size` bytes."""
    head = b'{"n":%d,"pad":"' % i
    return head + b"x" * (size - len(head) - 3) + b'"}'


def numbers(*paths: Path) -> list[int]:
    out = []
    for p in paths:
        data = p.read_bytes()
        assert data == b"" or data.endswith(b"\n"), f"{p} ends inside a line"
        out += [int(raw.split(b",")[0].removeprefix(b'{"n":')) for raw in data.splitlines()]
    return out


def test_files_rotate_by_size_and_keep_only_the_newest(tmp_path):
    path = tmp_path / "events.json"
    rep = FileReporter(path, max_bytes=250, keep=3)  # two 100-byte lines per file
    for i in range(11):
        rep.write(line(i))
    rep.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.json", "events.json.1", "events.json.2",
                                                          "events.json.3"]
    assert numbers(path) == [10]
    assert numbers(rep.rotated_path(1)) == [8, 9]
    assert numbers(rep.rotated_path(2)) == [6, 7]
    assert numbers(rep.rotated_path(3)) == [4, 5]
    assert all(p.stat().st_size <= 250 for p in tmp_path.iterdir())
    assert rep.stats()["rotations"] == 5


def test_with_enough_files_kept_every_line_is_there_once_and_in_order(tmp_path):
    path = tmp_path / "events.json"
    rep = FileReporter(path, max_bytes=1000, keep=50, buffer_bytes=350)
    for i in range(300):
        rep.write(line(i, size=80 + i % 37))
        if i % 7 == 0:
            rep.flush()
    rep.close()
    kept = [rep.rotated_path(i) for i in range(50, 0, -1) if rep.rotated_path(i).exists()]
    assert numbers(*kept, path) == list(range(300))
    assert all(p.stat().st_size <= 1000 for p in [*kept, path])
    assert all(p.stat().st_size > 1000 - 117 for p in kept)  # a file is rotated only when the next line won't fit


def test_keep_zero_starts_afresh_without_rotated_files(tmp_path):
    path = tmp_path / "events.json"
    rep = FileReporter(path, max_bytes=250, keep=0)
    for i in range(5):
        rep.write(line(i))
    rep.close()
    assert [p.name for p in tmp_path.iterdir()] == ["events.json"]
    assert numbers(path) == [4]


def test_a_line_longer_than_the_limit_goes_alone_into_a_file(tmp_path):
    path = tmp_path / "events.json"
    rep = FileReporter(path, max_bytes=250, keep=5)
    rep.write(line(0))
    rep.write(line(1, size=600))
    rep.write(line(2))
    rep.close()
    assert numbers(rep.rotated_path(2), rep.rotated_path(1), path) == [0, 1, 2]
    assert rep.rotated_path(1).stat().st_size == 600


def test_an_existing_file_is_appended_to_and_counts_toward_its_size(tmp_path):
    path = tmp_path / "events.json"
    path.write_bytes(line(0) + b"\n" + line(1) + b"\n")
    rep = FileReporter(path, max_bytes=250, keep=5)
    rep.write(line(2))
    rep.close()
    assert numbers(rep.rotated_path(1)) == [0, 1] and numbers(path) == [2]


def test_new_files_are_private_to_their_owner(tmp_path):
    rep = FileReporter(tmp_path / "events.json")
    rep.close()
    assert (tmp_path / "events.json").stat().st_mode & 0o777 == 0o600


def test_a_file_is_complete_and_fsynced_when_it_is_rotated_away(tmp_path, monkeypatch):
    path = tmp_path / "events.json"
    synced: list[tuple[str, int]] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append((os.readlink(f"/proc/self/fd/{fd}"), os.fstat(fd).st_size))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    rep = FileReporter(path, max_bytes=250, keep=5)
    for i in range(3):
        rep.write(line(i))
    rep.flush()
    # the rotation happened while writing line 2: the rotated file was whole on disk before its rename
    assert numbers(rep.rotated_path(1)) == [0, 1] and numbers(path) == [2]
    assert (str(path), 200) in synced  # the file itself, with both lines, before it became events.json.1
    assert (str(tmp_path), os.stat(tmp_path).st_size) in synced  # and the directory holding the renames
    before_close = len(synced)
    rep.close()
    assert synced[before_close:] == [(str(path), 100)]


def test_reopen_follows_a_file_renamed_away_by_an_outside_tool(tmp_path):
    path = tmp_path / "events.json"
    rep = FileReporter(path)
    rep.write(line(0))
    rep.flush()
    path.rename(tmp_path / "events.json.old")
    rep.write(line(1))
    rep.reopen()  # what was queued goes to the old file first
    rep.write(line(2))
    rep.close()
    assert numbers(tmp_path / "events.json.old") == [0, 1] and numbers(path) == [2]


def test_a_closed_reporter_refuses_lines_with_a_reporter_error(tmp_path):
    rep = FileReporter(tmp_path / "e.json", buffer_bytes=0)
    rep.close()
    rep.close()  # twice is harmless
    with pytest.raises(ReporterError, match="closed"):
        rep.write(b"{}")


def test_writes_to_a_device_that_is_always_full_are_reported_and_kept():
    rep = FileReporter("/dev/full", buffer_bytes=0, backlog=2)
    with pytest.raises(ReporterError) as info:
        rep.write(b"{}")
    assert info.value.errno == errno.ENOSPC
    assert "No space left on device (ENOSPC) writing; 1 lines kept in the backlog" in str(info.value)
    with pytest.raises(ReporterError):
        rep.write(b"{}")
    with pytest.raises(ReporterError, match="line dropped"):
        rep.write(b"{}")
    assert rep.stats()["backlog_lines"] == 2 and rep.stats()["dropped"] == 1
    with pytest.raises(ReporterError, match="on close: 2 lines lost"):
        rep.close()
    assert rep.stats()["dropped"] == 3


# ---------------------------------------------------------------------- a real file system that fills up


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (root only; with OPENCWS_REQUIRE_KERNEL=1 a missing root is a failure, not a skip)."""
    if os.geteuid() != 0:
        if os.environ.get("OPENCWS_REQUIRE_KERNEL") == "1":
            pytest.fail("mounting a tmpfs needs root (OPENCWS_REQUIRE_KERNEL=1)")
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "opencws-test", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill(path: Path) -> None:
    """Take every byte left on the file system of `path`."""
    with path.open("ab", buffering=0) as f:
        for size in (65536, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC


def writer(rep: FileReporter, form: str) -> Callable[[bytes], None]:
    """`rep.write`, or the same line given as pieces (as the agent hands a line over: cached head, date...)."""
    if form == "bytes":
        return rep.write
    return lambda data: rep.write_parts((data[:5], data[5:40], data[40:41], data[41:]))


@pytest.mark.parametrize("form", ["bytes", "pieces"])
def test_a_full_disk_is_reported_the_agent_goes_on_and_nothing_is_lost_once_space_is_back(small_tmpfs, form):
    path = small_tmpfs / "events.json"
    rep = FileReporter(path, buffer_bytes=0)
    write = writer(rep, form)
    for i in range(20):
        write(line(i))
    filler = small_tmpfs / "filler"
    fill(filler)
    errors = []
    for i in range(20, 300):  # the file's last page takes a few more lines, then the disk refuses
        try:
            write(line(i))
        except ReporterError as e:
            errors.append(e)
    assert errors and all(e.errno == errno.ENOSPC for e in errors)
    assert str(errors[0]).startswith(f"file:{path}: No space left on device (ENOSPC) writing; 1 lines kept")
    written_while_full = numbers(path)  # whole lines only, even where a write was cut short
    assert written_while_full == list(range(len(written_while_full)))
    stats = rep.stats()
    assert stats["backlog_lines"] == 300 - len(written_while_full) == len(errors)
    assert stats["dropped"] == 0 and stats["last_error"] == "No space left on device (ENOSPC)"

    filler.unlink()
    rep.flush()
    assert numbers(path) == list(range(300))
    assert rep.stats()["backlog_lines"] == 0 and rep.stats()["last_error"] is None
    write(line(300))
    rep.close()
    assert numbers(path) == list(range(301))


def test_on_a_full_disk_lines_beyond_the_backlog_are_counted_as_dropped(small_tmpfs):
    path = small_tmpfs / "events.json"
    rep = FileReporter(path, buffer_bytes=0, backlog=5)
    filler = small_tmpfs / "filler"
    fill(filler)
    messages = []
    for i in range(12):
        with pytest.raises(ReporterError) as info:
            rep.write(line(i))
        messages.append(str(info.value))
    assert "5 lines kept in the backlog" in messages[4]
    assert messages[11].endswith("backlog full (5 lines): line dropped (7 dropped so far)")
    filler.unlink()
    rep.close()
    assert numbers(path) == [0, 1, 2, 3, 4]  # the oldest kept, in order; the 7 others counted, not hidden
    assert rep.stats()["dropped"] == 7


@pytest.mark.parametrize("form", ["bytes", "pieces"])
def test_a_rotation_on_a_full_disk_loses_nothing(small_tmpfs, form):
    path = small_tmpfs / "events.json"
    rep = FileReporter(path, max_bytes=4000, keep=100, buffer_bytes=0)  # a file: 40 lines on one page
    write = writer(rep, form)
    filler = small_tmpfs / "filler"
    failures = 0
    for i in range(400):
        if i == 100:  # the disk fills up; the file in use has room for 20 lines, then it must rotate
            fill(filler)
        try:
            write(line(i))
        except ReporterError:
            failures += 1
    assert failures == 400 - 120
    assert rep.stats()["rotations"] == 3
    filler.unlink()
    rep.close()
    kept = [rep.rotated_path(i) for i in range(100, 0, -1) if rep.rotated_path(i).exists()]
    assert rep.stats()["dropped"] == 0
    assert numbers(*kept, path) == list(range(400))
