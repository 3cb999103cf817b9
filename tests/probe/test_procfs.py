"""The /proc snapshot of processes already running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from opencws.probe import events as ev
from opencws.probe.procfs import read_process, snapshot
from opencws.probe.statx import mount_id


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["/bin/sleep", "30"], env={"OCWS_SNAPSHOT": "1"})
    yield proc
    proc.kill()
    proc.wait()


def test_the_snapshot_lists_a_running_child_with_its_parent_exe_and_argv(sleeper):
    by_pid = {p.pid: p for p in snapshot()}
    p = by_pid[sleeper.pid]
    exe = os.path.realpath("/bin/sleep")
    assert p.ppid == os.getpid()
    assert p.exe == exe and p.exe_inode == os.stat(exe).st_ino and p.exe_mount_id == mount_id(exe)
    assert p.argv == ["/bin/sleep", "30"]
    assert p.envp == ["OCWS_SNAPSHOT=1"]
    assert p.comm == "sleep"
    assert p.credentials.uid == os.getuid() and p.credentials.egid == os.getegid()
    assert by_pid[os.getpid()].ppid == os.getppid()
    assert p.cgroups == Path(f"/proc/{sleeper.pid}/cgroup").read_text().splitlines()


def test_capabilities_come_from_proc_status():
    p = read_process(os.getpid())
    status = Path("/proc/self/status").read_text()
    eff = next(line for line in status.splitlines() if line.startswith("CapEff"))
    assert p.credentials.cap_effective == int(eff.split()[1], 16)
    assert p.exe == os.path.realpath(sys.executable)


def test_a_process_whose_name_is_not_utf8_is_read_with_the_bytes_replaced():
    code = "import ctypes, sys; ctypes.CDLL(None).prctl(15, b'\\xffodd\\xfe', 0, 0, 0); print(1, flush=True); sys.stdin.read()"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"1"  # its name is set
        p = read_process(proc.pid)
        assert p is not None and p.comm == "\ufffdodd\ufffd"
        assert proc.pid in {s.pid for s in snapshot()}  # the snapshot goes on past it
    finally:
        proc.kill()
        proc.wait()


def test_a_gone_process_reads_as_none():
    proc = subprocess.Popen(["/bin/true"])
    proc.wait()
    assert read_process(proc.pid) is None


@pytest.mark.kernel
def test_the_snapshot_start_time_and_cgroup_match_the_exec_event(require_kernel, watch, sleeper):
    # Popen returns once exec has closed its close-on-exec pipe, a little before the exec tracepoint
    (e,) = watch.wait_for(ev.ExecEvent, lambda e: e.pid == sleeper.pid)
    p = read_process(sleeper.pid)
    tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    assert p.start_time_ns <= e.start_time_ns < p.start_time_ns + tick
    assert p.cgroup_id == e.cgroup_id
