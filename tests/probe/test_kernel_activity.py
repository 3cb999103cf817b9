"""bpf() and selinuxfs writes."""

from __future__ import annotations

import ctypes
import os
import struct
from pathlib import Path

import probe_sysc as sysc
import pytest

from opencws.probe import events as ev
from opencws.probe.statx import mount_id

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]

BPF_MAP_CREATE, BPF_PROG_LOAD, BPF_OBJ_GET_INFO_BY_FD = 0, 5, 15
BPF_MAP_TYPE_HASH = 1
BPF_PROG_TYPE_RAW_TRACEPOINT = 17
HELPER_KTIME_GET_NS, HELPER_GET_CURRENT_PID_TGID, HELPER_GET_CURRENT_COMM = 5, 14, 16


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


def test_a_map_creation_reports_its_name_and_type(watch):
    attr = bytearray(128)
    struct.pack_into("<IIII", attr, 0, BPF_MAP_TYPE_HASH, 4, 4, 16)
    attr[28:28 + 9] = b"ocws_map\0"
    fd = sysc.bpf(BPF_MAP_CREATE, bytes(attr))
    assert fd >= 0
    os.close(fd)
    e = watch.one(ev.BpfEvent, lambda e: e.pid == os.getpid() and e.name == "ocws_map")
    assert e.cmd_name == "BPF_MAP_CREATE" and e.map_type == BPF_MAP_TYPE_HASH and e.retval == fd


def _load(insns_address: int, count: int, name: bytes) -> int:
    """bpf(BPF_PROG_LOAD) of a raw tracepoint program: the fd (closed) or -errno."""
    license = ctypes.create_string_buffer(b"GPL")
    attr = bytearray(128)
    struct.pack_into("<IIQQ", attr, 0, BPF_PROG_TYPE_RAW_TRACEPOINT, count, insns_address, ctypes.addressof(license))
    attr[48:48 + len(name) + 1] = name + b"\0"
    fd = sysc.bpf(BPF_PROG_LOAD, bytes(attr))
    if fd >= 0:
        os.close(fd)
    return fd


def test_a_program_load_reports_the_helpers_it_calls(watch):
    insns = b"".join([
        _insn(0x85, imm=HELPER_GET_CURRENT_PID_TGID),  # call bpf_get_current_pid_tgid
        _insn(0x85, imm=HELPER_KTIME_GET_NS),  # call bpf_ktime_get_ns
        _insn(0xB7, dst=0, imm=0),  # r0 = 0
        _insn(0x95),  # exit
    ])
    insn_buf = ctypes.create_string_buffer(insns, len(insns))
    fd = _load(ctypes.addressof(insn_buf), 4, b"ocws_prog")
    assert fd >= 0, os.strerror(-fd)
    e = watch.one(ev.BpfEvent, lambda e: e.pid == os.getpid() and e.name == "ocws_prog")
    assert e.cmd_name == "BPF_PROG_LOAD" and e.retval == fd
    assert e.prog_type == BPF_PROG_TYPE_RAW_TRACEPOINT and e.attach_type == 0 and e.insn_count == 4
    assert e.helpers == [HELPER_KTIME_GET_NS, HELPER_GET_CURRENT_PID_TGID]


def test_the_helpers_of_a_program_of_many_thousand_instructions_are_all_found(watch):
    body = _insn(0xB7, dst=1, imm=7) * 20_000  # r1 = 7, 20,000 times
    insns = _insn(0x85, imm=HELPER_KTIME_GET_NS) + body + _insn(0x85, imm=HELPER_GET_CURRENT_PID_TGID) \
        + _insn(0xB7, dst=0, imm=0) + _insn(0x95)
    buf = ctypes.create_string_buffer(insns, len(insns))
    assert _load(ctypes.addressof(buf), len(insns) // 8, b"ocws_big") >= 0
    e = watch.one(ev.BpfEvent, lambda e: e.pid == os.getpid() and e.name == "ocws_big")
    assert e.insn_count == 20_004 and e.helpers_complete
    assert e.helpers == [HELPER_KTIME_GET_NS, HELPER_GET_CURRENT_PID_TGID]  # the first and the very last


def test_a_program_ending_at_the_end_of_its_memory_has_its_last_helpers_found(watch):
    import mmap

    insns = _insn(0xB7, dst=1, imm=7) * 35 + _insn(0x85, imm=HELPER_GET_CURRENT_PID_TGID) \
        + _insn(0xB7, dst=0, imm=0) + _insn(0x95)
    page = mmap.PAGESIZE
    mem = mmap.mmap(-1, 2 * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.mprotect(ctypes.c_void_p(base + page), page, 0) == 0  # the page after it is unreadable
    start = page - len(insns)
    mem[start:page] = insns
    assert _load(base + start, len(insns) // 8, b"ocws_edge") >= 0
    e = watch.one(ev.BpfEvent, lambda e: e.pid == os.getpid() and e.name == "ocws_edge")
    assert e.helpers == [HELPER_GET_CURRENT_PID_TGID] and e.helpers_complete


def test_a_refused_program_load_is_reported_without_scanning_its_instructions(watch):
    insns = _insn(0x85, imm=HELPER_GET_CURRENT_PID_TGID) + _insn(0xB7, dst=0, imm=0)  # no exit: refused
    buf = ctypes.create_string_buffer(insns, len(insns))
    assert _load(ctypes.addressof(buf), 2, b"ocws_nope") < 0
    e = watch.one(ev.BpfEvent, lambda e: e.pid == os.getpid() and e.name == "ocws_nope")
    assert e.retval < 0 and e.insn_count == 2 and e.helpers == []  # (a refused load costs no scan)
    assert not e.helpers_complete  # (and says so)


def test_other_bpf_commands_are_reported_by_name(watch):
    rc = sysc.bpf(BPF_OBJ_GET_INFO_BY_FD, bytes(16))
    assert rc < 0
    got = watch.mine(ev.BpfEvent, lambda e: e.pid == os.getpid() and e.cmd == BPF_OBJ_GET_INFO_BY_FD)
    assert got and got[-1].cmd_name == "BPF_OBJ_GET_INFO_BY_FD" and got[-1].retval == rc


@pytest.fixture
def selinuxfs(probe, tmp_path: Path):
    """A tmpfs laid out like selinuxfs, declared to the probe as the selinuxfs mount."""
    root = tmp_path / "selinux"
    root.mkdir()
    assert sysc.mount("selinuxfs-standin", root, "tmpfs", 0, b"size=1m") == 0
    (root / "booleans").mkdir()
    for name in ("enforce", "commit_pending_bools", "booleans/httpd_can_network_connect", "other"):
        (root / name).write_text("0")
    mid = mount_id(root)
    probe.declare_selinuxfs_mount(mid)
    yield root
    probe.forget_selinuxfs_mount(mid)
    sysc.umount2(root, 2)


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def test_selinuxfs_writes_report_booleans_commits_and_enforce_changes(watch, selinuxfs):
    _write(selinuxfs / "booleans" / "httpd_can_network_connect", b"1")
    _write(selinuxfs / "commit_pending_bools", b"1")
    _write(selinuxfs / "enforce", b"0\n")
    _write(selinuxfs / "other", b"1")  # not a selinux setting
    got = watch.mine(ev.SelinuxEvent, lambda e: e.pid == os.getpid())
    assert [(e.kind, e.bool_name, e.value) for e in got] == [
        ("bool", "httpd_can_network_connect", "1"), ("commit", None, "1"), ("enforce", None, "0")]
    assert got[0].file.path == str(selinuxfs / "booleans" / "httpd_can_network_connect")
    assert got[0].retval == 1 and got[0].syscall == "write"
    assert got[2].file.inode == os.stat(selinuxfs / "enforce").st_ino


def test_writes_elsewhere_are_not_selinux_events(watch, tmp_path):
    (tmp_path / "enforce").write_text("1")
    assert not watch.mine(ev.SelinuxEvent, lambda e: e.pid == os.getpid())
