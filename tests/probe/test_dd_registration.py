"""The marker syscall on the real kernel: how a thread registers its dd record (bpf/ddcontext.h) and what the probe
reads from it at each event. The child registers through `opencws.tracing.records` without OpenTelemetry: the
ids are written by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opencws.probe.events import OpenEvent
from opencws.tracing.records import DD_PRCTL_MAGIC, DD_PRCTL_OPTION

pytestmark = pytest.mark.kernel

CHILD = f"""
import ctypes, sys
from opencws.tracing.records import Registry, _prctl
reg = Registry()
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "register":
        rec = reg.current()
        print(rec.tid, rec.address, flush=True)
        continue
    if cmd == "ids":
        rec.ids[0], rec.ids[1] = int(args[0]), int(args[1])
    elif cmd == "open":
        open(args[0]).close()
    elif cmd == "prctl":
        print(_prctl({DD_PRCTL_OPTION}, *map(int, args)), ctypes.get_errno(), flush=True)
        continue
    print("ok", flush=True)
"""


class Child:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def __call__(self, *words: object) -> list[str]:
        self.proc.stdin.write(" ".join(map(str, words)) + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().split()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@pytest.fixture
def child():
    c = Child()
    yield c
    c.close()


def test_the_probe_reads_the_ids_a_registered_thread_holds_at_each_event(watch, child, tmp_path: Path):
    paths = [tmp_path / n for n in ("a", "b", "c", "d")]
    for p in paths:
        p.write_text("x")
    child("open", paths[0])  # not registered yet
    tid, _ = map(int, child("register"))
    child("open", paths[1])  # registered, in no span (span id 0)
    child("ids", 7, 8)
    child("open", paths[2])
    child("ids", 2**64 - 1, 2**63)
    child("open", paths[3])
    got = {e.file.path: (e.span_id, e.trace_id) for e in watch.mine(OpenEvent) if e.pid == child.proc.pid}
    assert [got[str(p)] for p in paths] == [(None, None), (None, None), (7, 8), (2**64 - 1, 2**63)]
    assert tid == child.proc.pid


def test_only_the_marker_with_its_magic_registers_and_only_the_same_process_unregisters(probe, child):
    other = Child()
    try:
        # a prctl with the option but another magic is not the marker (the kernel refuses both: EINVAL)
        assert child("prctl", 4096, DD_PRCTL_MAGIC + 1, 0, 0) == ["-1", "22"]
        assert child.proc.pid not in probe.dd_threads()
        tid, address = map(int, child("register"))
        assert probe.dd_threads()[tid] == (child.proc.pid, address)
        other("prctl", 0, DD_PRCTL_MAGIC, tid, 0)  # another process cannot unregister it
        assert tid in probe.dd_threads()
        child("prctl", 0, DD_PRCTL_MAGIC, tid, 0)
        assert tid not in probe.dd_threads()
    finally:
        other.close()


def test_a_restarted_probe_still_knows_the_threads_registered_before(probe, child, tmp_path: Path):
    """The registrations outlive the probe that saw them (a pinned map): an agent restarted while an application
    runs reads the ids of threads that registered once, long before."""
    from opencws.probe.probe import Probe

    target = tmp_path / "after-restart"
    target.write_text("x")
    tid, address = map(int, child("register"))
    child("ids", 31, 32)
    with Probe(event_types={"open"}) as restarted:
        assert restarted.dd_threads()[tid] == (child.proc.pid, address)
        restarted.poll(0)
        child("open", target)
        got = []
        for _ in range(50):
            got += [e for e in restarted.poll(100) if isinstance(e, OpenEvent) and e.file.path == str(target)]
            if got:
                break
    assert [(e.span_id, e.trace_id) for e in got] == [(31, 32)]
