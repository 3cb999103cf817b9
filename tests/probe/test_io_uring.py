"""File operations submitted through io_uring: the same events as their syscall twins, from the process that
submitted them (real rings, through the program built from uring_calls.c)."""

from __future__ import annotations

import os
import subprocess

import pytest
from probe_watch import paths_under

from opencws.probe import events as ev
from opencws.probe.records import FI_NOT_CAPTURED

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]

AT_FDCWD = -100
AT_REMOVEDIR = 0x200


def _run(prog, *ops: tuple, options: tuple = ()) -> list[int]:
    """Run the operations through one ring; their results."""
    argv = [str(prog), *options]
    for i, op in enumerate(ops):
        argv += (["--"] if i else []) + [str(a) for a in op]
    done = subprocess.run(argv, capture_output=True, check=True, timeout=30)
    return [int(line) for line in done.stdout.split()]


def _ours(e: ev.KernelEvent) -> bool:
    return e.comm == "uring_calls"


@pytest.mark.parametrize("options", [(), ("-a",)], ids=["inline", "io-wq worker"])
def test_io_uring_file_operations_are_reported_as_their_syscall_twins(watch, tmp_path, uring_calls, options):
    p = str(tmp_path)
    res = _run(uring_calls,
                  ("openat", AT_FDCWD, f"{p}/f", os.O_CREAT | os.O_WRONLY, 0o640),   # fd 4 (the ring is 3)
                  ("mkdirat", AT_FDCWD, f"{p}/d", 0o750),
                  ("renameat", AT_FDCWD, f"{p}/f", AT_FDCWD, f"{p}/g", 0),
                  ("linkat", AT_FDCWD, f"{p}/g", AT_FDCWD, f"{p}/h", 0),
                  ("setxattr", f"{p}/g", "user.a", "v", 0),
                  ("fsetxattr", 4, "user.b", "w", 0),
                  ("unlinkat", AT_FDCWD, f"{p}/h", 0),
                  ("unlinkat", AT_FDCWD, f"{p}/d", AT_REMOVEDIR),
                  ("openat2", AT_FDCWD, f"{p}/g", os.O_RDONLY, 0),
                  options=options)
    assert res[0] == 4 and all(r >= 0 for r in res), res
    got = [e for e in watch.mine(ev.FileEvent, paths_under(tmp_path)) if _ours(e)]
    seen = [(type(e).type, e.syscall, e.file.path) for e in got]
    assert seen == [
        ("open", "io_uring:openat", f"{p}/f"), ("mkdir", "io_uring:mkdirat", f"{p}/d"),
        ("rename", "io_uring:renameat", f"{p}/f"), ("link", "io_uring:linkat", f"{p}/g"),
        ("setxattr", "io_uring:setxattr", f"{p}/g"), ("setxattr", "io_uring:fsetxattr", f"{p}/g"),
        ("unlink", "io_uring:unlinkat", f"{p}/h"), ("rmdir", "io_uring:unlinkat", f"{p}/d"),
        ("open", "io_uring:openat2", f"{p}/g"),
    ]
    g = os.stat(f"{p}/g")
    opened, mkdir, rename, link, setx, fsetx, unlink, rmdir, reopened = got
    # the submitter, even when an io-wq worker (a thread of its own) ran the operation
    assert all(e.pid == e.tid == opened.pid and e.comm == "uring_calls" for e in got)
    assert all(e.retval >= 0 for e in got)
    assert opened.flags & os.O_CREAT and opened.mode == 0o640 and opened.file.inode == g.st_ino
    assert mkdir.mode == 0o750
    assert (unlink.flags, rmdir.flags) == (0, AT_REMOVEDIR)
    assert rename.destination.path == f"{p}/g" and rename.file.inode == g.st_ino
    assert link.destination.path == f"{p}/h" and link.file.inode == g.st_ino
    assert (setx.name, fsetx.name) == ("user.a", "user.b") and fsetx.file.inode == g.st_ino
    assert reopened.file.inode == g.st_ino and reopened.file.path_resolution_error is None


def test_an_io_uring_open_into_a_fixed_file_slot_is_resolved_from_its_path(watch, tmp_path, uring_calls):
    target = tmp_path / "fixed"
    target.write_text("x")
    res = _run(uring_calls, ("openat_fixed", AT_FDCWD, str(target), os.O_RDONLY, 0))
    assert res == [0]  # (a slot, not an fd: fd 0 is not the file)
    e = watch.one(ev.OpenEvent, lambda e: _ours(e) and e.file.path == str(target))
    assert e.file.inode == target.stat().st_ino and e.syscall == "io_uring:openat"


def test_an_io_uring_open_submitted_before_the_probe_saw_it_is_reported_from_its_fd(watch, probe, tmp_path,
                                                                                   uring_calls):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    probe.set_event_types({"mkdir", "rmdir"})  # opens off: the submission is not captured
    proc = subprocess.Popen([str(uring_calls), "-a", "-s", "openat", str(AT_FDCWD), str(fifo), str(os.O_RDONLY),
                             "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stderr.readline() == b"submitted\n"  # (the open now waits in a worker for a writer)
        probe.set_event_types({"mkdir", "rmdir", "open"})
        os.close(os.open(fifo, os.O_WRONLY))
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert int(out) == 4
    e = watch.one(ev.OpenEvent, lambda e: e.file.path == str(fifo) and e.syscall.startswith("io_uring"))
    assert e.pid == proc.pid and e.retval == 4
    assert e.file.inode == fifo.stat().st_ino and e.file.path_resolution_error is None
    assert e.file.flags & FI_NOT_CAPTURED  # (the request's strings were gone)


def test_a_kernel_without_io_uring_tracepoints_runs_the_probe_without_them(monkeypatch):
    from opencws.probe import probe as probe_module
    from opencws.probe.probe import Probe

    monkeypatch.setattr(probe_module, "io_uring_traceable", lambda: False)
    with Probe(event_types={"open"}) as p:  # (the uring programs not even loaded)
        assert not p.io_uring
        assert "uring_submit" not in p.attached_hooks and "sys_exit" in p.attached_hooks


def test_an_io_uring_exchange_is_two_moves(watch, tmp_path, uring_calls):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("A")
    b.write_text("B")
    ino_a, ino_b = a.stat().st_ino, b.stat().st_ino
    assert _run(uring_calls, ("renameat", AT_FDCWD, str(a), AT_FDCWD, str(b), 2)) == [0]  # RENAME_EXCHANGE
    moves = [e for e in watch.mine(ev.RenameEvent, paths_under(tmp_path)) if _ours(e)]
    assert [(e.syscall, e.file.path, e.file.inode, e.destination.path) for e in moves] == [
        ("io_uring:renameat", str(a), ino_a, str(b)), ("io_uring:renameat", str(b), ino_b, str(a))]


def test_io_uring_operations_submitted_by_a_sqpoll_thread_are_the_ring_owners(watch, tmp_path, uring_calls):
    """A ring with a SQPOLL thread: the kernel thread (`iou-sqp-<pid>`) submits; the event names the ring's owner."""
    p = str(tmp_path)
    proc = subprocess.Popen([str(uring_calls), "-p", "openat", str(AT_FDCWD), f"{p}/f", str(os.O_CREAT | os.O_WRONLY),
                             "416", "--", "mkdirat", str(AT_FDCWD), f"{p}/d", "488", "--",
                             "unlinkat", str(AT_FDCWD), f"{p}/d", str(AT_REMOVEDIR)], stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=30)
    assert [int(x) for x in out.split()][1:] == [0, 0]
    got = watch.mine(ev.FileEvent, paths_under(tmp_path))
    assert [(type(e).type, e.syscall, e.file.path) for e in got] == [
        ("open", "io_uring:openat", f"{p}/f"), ("mkdir", "io_uring:mkdirat", f"{p}/d"),
        ("rmdir", "io_uring:unlinkat", f"{p}/d")]
    assert all((e.pid, e.tid, e.comm, e.sqpoll) == (proc.pid, proc.pid, "uring_calls", True) for e in got), got[0]
    assert (got[0].uid, got[0].file.mode & 0o777) == (os.getuid(), 0o640)


def test_an_io_uring_ftruncate_is_an_open_that_truncates(watch, tmp_path, uring_calls):
    target = tmp_path / "t"
    target.write_text("xxxx")
    assert _run(uring_calls, ("openat", AT_FDCWD, str(target), os.O_RDWR, 0), ("ftruncate", 4, 1)) == [4, 0]
    e = watch.one(ev.OpenEvent, lambda e: _ours(e) and e.syscall == "io_uring:ftruncate")
    assert (e.retval, e.file.path, e.file.inode, e.flags) == (0, str(target), target.stat().st_ino,
                                                              os.O_WRONLY | os.O_TRUNC)
    assert target.stat().st_size == 1
