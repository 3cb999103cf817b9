"""Decoders on well-formed, malformed and truncated records (no kernel needed)."""

from __future__ import annotations

import os

import pytest

from kernel_records import FILE_EVENT_KINDS, NO_FILE, file_info, file_record, header
from opencws.probe import events as ev
from opencws.probe import records as r
from opencws.probe.errors import DecodeError
from opencws.probe.eventtypes import EventType

CREDS = (0, 0, 0, 0, 0, 0, 0, 0, 1 << 21, 1 << 21, 0)


HEADER_VALUES = {"ktime_ns": 123, "pid": 10, "tid": 11, "cgroup_id": 77, "ppid": 12, "uid": 1013, "gid": 1014}


def file_values(seed: int = 0) -> dict:
    """What `file_info(..., seed=seed)` decodes to (with an inode)."""
    return {"inode": 42 + seed, "access_time_ns": 31 + seed, "modification_time_ns": 32 + seed,
            "change_time_ns": 33 + seed, "mode": 0o100644 + seed, "uid": 1001 + seed, "gid": 1002 + seed,
            "mount_id": 27 + seed, "device": os.makedev(254, 1 + seed), "nlink": 3 + seed, "group_id": 5 + seed,
            "generation": 9 + seed, "inode_generation": 7000 + seed}


def test_a_well_formed_open_record_decodes_to_an_open_event():
    e = r.decode(file_record(EventType.OPEN, b"/etc/passwd", flags_arg=0o2))
    assert isinstance(e, ev.OpenEvent)
    assert (e.pid, e.tid, e.ktime_ns, e.cgroup_id, e.comm) == (10, 11, 123, 77, "proc")
    assert e.file.path == "/etc/passwd" and e.file.inode == 42 and e.file.fs_type == "ext4"
    assert e.file.device == (254 << 8) | 1  # the kernel's dev_t becomes st_dev's encoding
    assert e.syscall == "openat" and e.flags == 0o2


def test_a_rename_record_carries_both_sides():
    e = r.decode(file_record(EventType.RENAME, b"/a", b"/b", nr=82))
    assert isinstance(e, ev.RenameEvent) and e.file.path == "/a" and e.destination.path == "/b"


def test_an_incomplete_path_reports_the_reason_and_the_resolved_prefix():
    fi = file_info(b"/tmp/x/rest", r.FI_PRESENT | r.FI_INCOMPLETE | r.FI_NOT_CACHED, resolved=6)
    e = r.decode(file_record(EventType.CHMOD, b"/tmp/x/rest", f0=fi, nr=90))
    assert e.file.path_resolution_error == "component not in the dentry cache"
    assert e.file.path[: e.file.resolved_len] == "/tmp/x" and e.file.inode is None


def test_xattr_names_give_their_namespace():
    e = r.decode(file_record(EventType.SETXATTR, b"/f", extra=b"security.selinux", nr=188))
    assert isinstance(e, ev.SetXattrEvent) and (e.name, e.namespace) == ("security.selinux", "security")


def test_a_bpf_record_lists_the_helpers():
    body = r.BPF_BODY.pack(5, 5, 0, 17, 0, 4, 0, (1 << 5) | (1 << 14), 0, 1 << 2, 0, b"prog\0")
    e = r.decode(header(r.REC_BPF, EventType.BPF, 64 + len(body)) + body)
    assert e.helpers == [5, 14, 130] and e.cmd_name == "BPF_PROG_LOAD" and e.name == "prog"
    assert e.helpers_complete
    body = r.BPF_BODY.pack(5, 5, 0, 17, 0, 4, r.BPF_HELPERS_INCOMPLETE, 1 << 5, 0, 0, 0, b"prog\0")
    assert not r.decode(header(r.REC_BPF, EventType.BPF, 64 + len(body)) + body).helpers_complete


def test_an_exec_record_splits_argv_and_envp():
    argv, envp = b"ls\0-l\0", b"A=1\0B=2\0"
    body = r.EXEC_BODY.pack(*file_info(b"/bin/ls"), *CREDS, len(argv), len(envp), len(argv), len(envp), 9,
                            b"docker-ab.scope\0", b"pts/3\0", *NO_FILE)
    data = header(r.REC_EXEC, EventType.EXEC, 64 + len(body) + 7 + len(argv) + len(envp), r.HF_ENVP_TRUNCATED)
    e = r.decode(data + body + b"/bin/ls" + argv + envp)
    assert isinstance(e, ev.ExecEvent)
    assert e.argv == ["ls", "-l"] and e.envp == ["A=1", "B=2"] and e.envp_truncated and not e.argv_truncated
    assert e.cgroup == "docker-ab.scope" and e.start_time_ns == 9 and e.tty == "pts/3"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter than the 64-byte header"),
        (header(r.REC_EXIT, EventType.EXIT, 72)[:40], "shorter than the 64-byte header"),
        (header(r.REC_EXIT, EventType.EXIT, 72), "header says 72 bytes, record has 64"),
        (header(r.REC_EXIT, EventType.EXIT, 68) + b"\0" * 4, "exit record of 68 bytes, expected 72"),
        (header(99, EventType.EXIT, 72) + b"\0" * 8, "unknown record kind 99"),
        (header(r.REC_EXIT, 200, 72) + b"\0" * 8, "unknown event type 200"),
        (header(r.REC_FILE, EventType.EXIT, 72) + b"\0" * 8, "cannot have record kind"),
        (header(r.REC_FILE, EventType.OPEN, 100) + b"\0" * 36, "body needs 304"),
        (file_record(EventType.OPEN, b"/etc/passwd")[:-3], "header says"),
        (file_record(EventType.OPEN, b"/etc/passwd", size=317) + b"zz", "record size 317"),
        (file_record(EventType.OPEN, b"/x", f0=(*file_info(b"/x")[:12], 5000, 0, 0, b"", 0, 0)), "exceeds 4095"),
        (file_record(EventType.OPEN, b"/x", f0=file_info(b"/x", resolved=9)), "resolved length 9"),
        (file_record(EventType.OPEN, b"/x", f0=file_info(b"/x", flags=0)), "without a file"),
        (file_record(EventType.SELINUX, b"/x", flags_arg=9, nr=1), "unknown selinux kind 9"),
    ],
)
@pytest.mark.parametrize("lazy", [True, False])
def test_malformed_records_raise_a_precise_decode_error(data, reason, lazy):
    with pytest.raises(DecodeError, match=reason):
        r.decode(data, lazy)


@pytest.mark.parametrize("lazy", [True, False])
def test_every_truncation_of_a_valid_record_is_rejected(lazy):
    good = file_record(EventType.LINK, b"/a/b", b"/c/d", nr=86)
    for n in range(len(good)):
        with pytest.raises(DecodeError):
            r.decode(good[:n], lazy)


def test_a_lazily_decoded_event_equals_the_eagerly_decoded_one():
    rec = file_record(EventType.RENAME, b"/a", b"/b", nr=316, flags_arg=2)
    lazy, eager = r.decode(rec), r.decode(rec, lazy=False)
    assert type(eager) is ev.RenameEvent and isinstance(lazy, ev.RenameEvent)  # lazy: a view over the bytes
    assert lazy == eager and eager == lazy and repr(lazy) == repr(eager)
    assert lazy.destination.path == "/b" and lazy.flags == 2
    with pytest.raises(AttributeError):
        _ = lazy.no_such_field


NO_INODE_KEPT = ("mount_id", "group_id", "device", "generation")
"""The fields of a file without FI_INODE that still come from the record."""
UNRESOLVED = r.FI_PRESENT | r.FI_INCOMPLETE | r.FI_NOT_CACHED | r.FI_UPPER_LAYER | r.FI_NEGATIVE


@pytest.mark.parametrize(("etype", "p1", "extra", "nr"), FILE_EVENT_KINDS)
@pytest.mark.parametrize("inode", [True, False])
def test_every_field_of_a_view_equals_the_eager_decoding(etype, p1, extra, nr, inode):
    import dataclasses

    flags = r.FI_PRESENT | r.FI_INODE if inode else UNRESOLVED
    f0 = file_info(b"/tmp/x/f\xe9", flags, resolved=6)
    body = r.FILE_BODY.pack(-13, nr, 1 if etype == EventType.SELINUX else 0o1101, 0o4755, 0xFFFFFFFF, 1000,
                            len(extra), r.UTIME_OMIT, 12345, *f0,
                            *(file_info(p1, seed=100) if p1 else NO_FILE))
    tail = b"/tmp/x/f\xe9" + p1 + extra
    rec = header(r.REC_FILE, etype, r.HEADER.size + len(body) + len(tail)) + body + tail
    lazy, eager = r.decode(rec), r.decode(rec, lazy=False)
    assert isinstance(lazy, type(eager))
    for name in [f.name for f in dataclasses.fields(eager)]:
        assert getattr(lazy, name) == getattr(eager, name), name
    assert dataclasses.asdict(lazy) == dataclasses.asdict(eager) and repr(lazy) == repr(eager)
    assert lazy.file.resolved == eager.file.resolved and lazy.file.basename == eager.file.basename
    assert lazy.outcome == "Refused"
    # and both hold the record's values, each in its place
    for e in (lazy, eager):
        assert {k: getattr(e, k) for k in HEADER_VALUES} == HEADER_VALUES
        got = {k: getattr(e.file, k) for k in file_values()}
        assert got == (file_values() if inode else {**dict.fromkeys(file_values()),
                                                    **{k: file_values()[k] for k in NO_INODE_KEPT}})
        other = getattr(e, "destination", None) or getattr(e, "root", None)
        if p1:
            assert {k: getattr(other, k) for k in file_values()} == file_values(100)


def test_the_reader_counts_malformed_records_instead_of_raising():
    from opencws.probe.probe import Probe

    p = Probe()
    out = p.decode_all([b"junk", file_record(EventType.OPEN, b"/ok")])
    assert [e.file.path for e in out] == ["/ok"]
    assert p.decode_errors == 1 and "header" in p.last_decode_error


@pytest.fixture(params=["c", "python"])
def decode_ring(request):
    """Both ring loops: the compiled one (set-up builds it: its absence is a failure) and its Python twin."""
    if request.param == "python":
        return r.decode_ring_py
    assert r.decode_ring_c is not None, r.DECODER
    return r.decode_ring_c


def test_the_reader_uses_the_compiled_loop():
    assert r.DECODER == "C" and r.decode_ring is r.decode_ring_c


def ring(*records: bytes, flags: dict[int, int] | None = None) -> tuple[bytes, int]:
    """Records laid out as in a BPF ring buffer (8-byte header each, 8-byte aligned), then RING_PAD bytes."""
    out = bytearray()
    for i, rec in enumerate(records):
        out += r.struct.pack("<II", len(rec) | (flags or {}).get(i, 0), 0) + rec
        out += b"\0" * (-len(out) % 8)
    return bytes(out) + b"\xff" * r.RING_PAD, len(out)


def exit_record(pid: int) -> bytes:
    return r.HEADER.pack(r.REC_EXIT, EventType.EXIT, 72, 1, pid, pid, 0, 1, 0, 0, 0, b"x\0") + r.EXIT_BODY.pack(256, 0)


def test_the_ring_reader_decodes_every_kind_skips_discarded_records_and_stops_at_an_uncommitted_one(decode_ring):
    recs = [file_record(EventType.OPEN, b"/a"), exit_record(7), file_record(EventType.UNLINK, b"/skip"),
            file_record(EventType.RENAME, b"/b", b"/c", nr=82), file_record(EventType.OPEN, b"/busy")]
    buf, end = ring(*recs, flags={2: 1 << 30, 4: 1 << 31})
    events, used, errors = decode_ring(buf, end)
    assert [type(e).__name__ for e in events] == ["OpenEvent", "ExitEvent", "RenameEvent"] and not errors
    assert events[0] == r.decode(recs[0], lazy=False) and events[2] == r.decode(recs[3], lazy=False)
    assert events[2].destination.path == "/c" and events[1].exit_code == 1
    assert used == end - ((len(recs[4]) + 15) & ~7)  # the uncommitted record is read next time


@pytest.mark.parametrize("lazy", [True, False])
def test_the_ring_reader_counts_a_malformed_record_and_reads_on(lazy, decode_ring):
    bad = file_record(EventType.OPEN, b"/x", f0=file_info(b"/x", resolved=9))
    short = header(r.REC_FILE, EventType.OPEN, 100) + b"\0" * 36
    buf, end = ring(file_record(EventType.OPEN, b"/a"), bad, short, exit_record(3), file_record(EventType.OPEN, b"/b"))
    events, used, errors = decode_ring(buf, end, lazy)
    assert [getattr(e, "file", None) and e.file.path for e in events] == ["/a", None, "/b"] and used == end
    assert len(errors) == 2 and "resolved length 9" in errors[0] and "body needs 304" in errors[1]


def test_a_ring_read_stops_before_stop_and_at_a_record_the_copy_cut(decode_ring):
    recs = [file_record(EventType.OPEN, b"/a"), exit_record(5), file_record(EventType.OPEN, b"/b")]
    buf, end = ring(*recs)
    second = (len(recs[0]) + 8 + 7) & ~7
    events, used, _ = decode_ring(buf, end, stop=second)
    assert len(events) == 1 and used == second
    events, used, _ = decode_ring(buf, second + 40)  # the exit record is not wholly there
    assert len(events) == 1 and used == second


def test_views_compare_equal_only_to_the_same_fields():
    a, b = r.decode(file_record(EventType.OPEN, b"/a")), r.decode(file_record(EventType.OPEN, b"/b"))
    assert a != b and a == r.decode(file_record(EventType.OPEN, b"/a")) and a.file != b.file
    assert a != r.decode(file_record(EventType.CHMOD, b"/a", nr=90)) and a != "open"


def test_the_ring_reader_agrees_with_decode_on_corrupted_records(decode_ring):
    import random

    rng = random.Random(4)
    good = [file_record(EventType.RENAME, b"/a/b", b"/c/d", nr=82), file_record(EventType.OPEN, b"/etc/x"),
            file_record(EventType.SETXATTR, b"/f", extra=b"user.y", nr=188), exit_record(9)]
    for _ in range(400):
        rec = bytearray(rng.choice(good))
        for _ in range(rng.randint(1, 3)):  # the header, the body's lengths and flags, anywhere
            at = rng.choice([rng.randrange(len(rec)), rng.randrange(64, 112), rng.randrange(168, 200)])
            rec[at % len(rec)] = rng.randrange(256)
        rec = bytes(rec)
        try:
            expected: object = r.decode(rec, lazy=False)
        except DecodeError as exc:
            expected = str(exc)
        buf, end = ring(rec, exit_record(1))
        events, used, errors = decode_ring(buf, end)
        assert used == end and events[-1].pid == 1  # the next record is read either way
        assert (events[0] == expected) if len(events) == 2 else (errors == [expected])


@pytest.mark.parametrize(("flags", "known"), [(0, True), (r.HF_CREDS_BEFORE_UNKNOWN, False)])
def test_a_credentials_record_says_whether_the_before_credentials_were_known(flags, known):
    after = (1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 0, 0, 0)
    body = r.CRED_BODY.pack(0, 105, 0, *CREDS, *after)
    e = r.decode(header(r.REC_CRED, EventType.SETUID, r.HEADER.size + len(body), flags) + body)
    assert isinstance(e, ev.SetuidEvent) and e.syscall == "setuid" and e.retval == 0
    assert e.before_known is known and e.after.uid == 1000 and e.before.cap_effective == 1 << 21


def _outcome(decode_ring, buf: bytes, end: int, lazy: bool, stop: int | None) -> tuple:
    events, used, errors = decode_ring(buf, end, lazy, stop)
    return [(type(e).__name__, e) for e in events], used, errors


def test_the_compiled_loop_and_its_python_twin_agree_on_random_rings():
    import random

    assert r.decode_ring_c is not None, r.DECODER
    rng = random.Random(11)
    good = [file_record(EventType.RENAME, b"/a/b", b"/c/d", nr=82), file_record(EventType.OPEN, b"/etc/\xffx"),
            file_record(EventType.SETXATTR, b"/f", extra=b"user.y", nr=188), exit_record(9),
            file_record(EventType.OPEN, b"/p", f0=file_info(b"/p", r.FI_PRESENT)),  # no inode
            file_record(EventType.MOUNT, b"/mnt", b"/", extra=b"tmpfs", nr=165),
            file_record(EventType.SELINUX, b"/sys/fs/selinux/enforce", extra=b"1", flags_arg=3, nr=1)]
    for _ in range(1500):
        recs = [bytearray(rng.choice(good)) for _ in range(rng.randint(1, 5))]
        for rec in recs:
            for _ in range(rng.choice([0, 0, 1, 2])):
                at = rng.choice([rng.randrange(len(rec)), rng.randrange(0, 112), rng.randrange(168, 200)])
                rec[at % len(rec)] = rng.randrange(256)
        flags = {i: rng.choice([1 << 30, 1 << 31]) for i in range(len(recs)) if rng.random() < 0.1}
        buf, end = ring(*map(bytes, recs), flags=flags)
        if rng.random() < 0.2:  # a copy that cut the last record
            end = rng.randrange(end + 1)
            buf = buf[:end] + b"\xff" * r.RING_PAD
        stop = rng.choice([None, rng.randrange(end + 1)])
        lazy = rng.random() < 0.8
        assert _outcome(r.decode_ring_c, buf, end, lazy, stop) == _outcome(r.decode_ring_py, buf, end, lazy, stop)


def test_the_compiled_loop_refuses_a_buffer_without_its_padding():
    assert r.decode_ring_c is not None, r.DECODER
    buf, end = ring(exit_record(1))
    with pytest.raises(ValueError, match="must extend"):
        r.decode_ring_c(buf[:end], end)


def test_the_compiled_loop_keeps_no_reference_and_no_memory_once_its_events_are_dropped():
    import sys
    import tracemalloc

    assert r.decode_ring_c is not None, r.DECODER
    buf, end = ring(*[file_record(EventType.OPEN, b"/a/%d" % i) for i in range(500)], exit_record(3),
                    file_record(EventType.OPEN, b"/x", f0=file_info(b"/x", resolved=9)))
    refs = sys.getrefcount(buf)
    events, _, errors = r.decode_ring_c(buf, end)
    assert len(events) == 501 and len(errors) == 1 and sys.getrefcount(buf) == refs + 500  # one per file view
    assert [e.file.path for e in events[:2]] == ["/a/0", "/a/1"] and events[0].file.inode == 42
    import gc

    assert not gc.is_tracked(events[0]) and not gc.is_tracked(events[0].file)  # nothing for the collector to walk
    del events, errors
    assert sys.getrefcount(buf) == refs
    tracemalloc.start()
    try:
        for _ in range(3):
            r.decode_ring_c(buf, end)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            r.decode_ring_c(buf, end)
        assert tracemalloc.get_traced_memory()[0] - before < 10_000
    finally:
        tracemalloc.stop()


def test_the_only_writable_fields_of_a_view_are_those_the_reader_sets():
    """The compiled loop leaves views out of the cycle collector: nothing may give them a container to hold."""

    def writable(cls: type) -> set[str]:
        return {n for n in dir(cls) if type(getattr(cls, n, None)).__name__ == "member_descriptor"}

    assert all(writable(view) == {"pid", "file"} for view in r.FILE_VIEWS.values())
    assert writable(r._FILE_INFO_VIEW) == {"path", "inode", "_b", "_o"}


def test_a_failed_reconfiguration_of_the_compiled_loop_keeps_the_working_one():
    from opencws.probe import _ringdecoder

    class NoFile:
        pass

    good, end = ring(file_record(EventType.OPEN, b"/a"))
    args = r.RING_LAYOUT
    far = (args["offsets"][0], 1 << 40, *args["offsets"][2:])
    bad_cases = [
        ({"file_event_class": NoFile}, TypeError, "not a subclass"),
        ({"offsets": far}, ValueError, "outside"),
        ({"views": {1 << 40: r.FILE_VIEWS[EventType.OPEN]}}, ValueError, "out of range"),
        ({"views": {1: dict}}, TypeError, "not a subclass"),
        ({"file_view": ev.FileInfo}, AttributeError, "_b"),  # FileInfo has no _b slot
        ({"event_class": type("P", (), {"pid": property(lambda s: 1)})}, TypeError, "is not a slot"),
    ]
    for change, exc, message in bad_cases:
        with pytest.raises(exc, match=message):
            _ringdecoder.configure(**{**args, **change})
        events, used, _ = r.decode_ring_c(good, end)  # still the configuration records.py gave
        assert [e.file.path for e in events] == ["/a"] and used == end
    with pytest.raises(TypeError, match="must be bytes"):
        r.decode_ring_c(bytearray(good), end)


def _header_flags(data: bytes, flags: int) -> bytes:
    """The record with these header flags."""
    h = list(r.HEADER.unpack_from(data))
    h[8] = flags
    return r.HEADER.pack(*h) + data[r.HEADER.size:]


@pytest.mark.parametrize("lazy", [True, False])
def test_i386_and_io_uring_records_name_their_syscall_from_their_own_table(lazy):
    # i386 212 is chown32 (x86_64 212 is lookup_dcookie); io_uring opcode 18 is openat
    i386 = r.decode(_header_flags(file_record(EventType.CHOWN, b"/f", nr=212), r.HF_I386), lazy)
    assert (i386.syscall, i386.abi) == ("chown32", "i386")
    uring = r.decode(_header_flags(file_record(EventType.OPEN, b"/f", nr=18), r.HF_IO_URING), lazy)
    assert (uring.syscall, uring.abi) == ("io_uring:openat", "x86_64")
    native = r.decode(file_record(EventType.CHOWN, b"/f", nr=92), lazy)
    assert (native.syscall, native.abi) == ("chown", "x86_64")


def test_a_setgroups_record_lists_the_groups_and_a_short_one_is_refused():
    gids = list(range(1000, 1000 + r.GROUPS_MAX))
    body = r.GROUPS_BODY.pack(0, 206, 70, *gids)
    e = r.decode(_header_flags(header(r.REC_GROUPS, EventType.SETGROUPS, r.HEADER.size + len(body)) + body,
                               r.HF_I386))
    assert isinstance(e, ev.SetgroupsEvent)
    assert (e.syscall, e.abi, e.groups, e.groups_truncated) == ("setgroups32", "i386", gids, True)
    with pytest.raises(DecodeError, match="setgroups record of"):
        r.decode(header(r.REC_GROUPS, EventType.SETGROUPS, r.HEADER.size + 16) + body[:16])


def test_a_name_that_is_not_utf8_decodes_losslessly():
    raw = b"/tmp/\xff\xfe\xed\xa0\x80"
    e = r.decode(file_record(EventType.OPEN, raw))
    assert e.file.path.encode("utf-8", "surrogateescape") == raw
