"""Scenarios on the real kernel: a real Python application instrumented with the OpenTelemetry SDK and
`opencws.tracing` (tests/tracing/traced_app.py) opens a watched file; the agent's CWS event carries the span and
trace the thread was in (`dd`), or no `dd` at all."""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from agent_harness import started_agent

from opencws.schema.validation import event_validator

pytestmark = pytest.mark.kernel

APP = Path(__file__).resolve().parent.parent / "tracing" / "traced_app.py"


@pytest.fixture(scope="module")
def harness(require_kernel):
    with started_agent() as h:
        yield h


@contextmanager
def app(scenario: str, *paths: Path, kill: bool = False) -> Iterator[tuple[subprocess.Popen, dict]]:
    """The application, alive until the block ends: (its process, what it knew of each path it opened). kill:
    it dies by SIGKILL then (nothing of it runs at exit), else it exits normally."""
    proc = subprocess.Popen([sys.executable, str(APP), scenario, *map(str, paths)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line, f"the application failed (exit {proc.wait()})"
        yield proc, json.loads(line)
    finally:
        if kill:
            proc.kill()
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()


def files(tmp_path: Path, *names: str) -> list[Path]:
    out = []
    for n in names:
        (tmp_path / n).write_text(n)
        out.append(tmp_path / n)
    return out


def watch(harness, tmp_path: Path) -> None:
    harness.use_policy(tmp_path, f'open.file.path =~ "{tmp_path}/*"')


def events_by_path(harness, pid: int) -> dict[str, dict]:
    out = {}
    for line in harness.events("r0", pid):
        e = line["event"]
        assert not event_validator().issues(e), event_validator().issues(e)
        out[e["file"]["path"]] = e
    return out


def dd_of(known: list[int] | None) -> dict | None:
    return None if known is None else {"span_id": known[0], "trace_id": known[1]}


def test_an_open_inside_a_span_carries_that_span_and_its_trace(harness, tmp_path):
    (target,) = files(tmp_path, "inside")
    watch(harness, tmp_path)
    with app("span", target) as (proc, known):
        e = events_by_path(harness, proc.pid)[str(target)]
    assert known[str(target)][0] != 0
    assert e["dd"] == dd_of(known[str(target)])
    assert isinstance(e["dd"]["span_id"], int) and isinstance(e["dd"]["trace_id"], int)


def test_an_open_outside_any_span_has_no_dd(harness, tmp_path):
    (target,) = files(tmp_path, "outside")
    watch(harness, tmp_path)
    with app("nospan", target) as (proc, known):
        e = events_by_path(harness, proc.pid)[str(target)]
    assert known[str(target)] is None
    assert "dd" not in e


def test_leaving_a_child_span_gives_the_parents_ids_back(harness, tmp_path):
    outer, inner, after = files(tmp_path, "outer", "inner", "after")
    watch(harness, tmp_path)
    with app("nested", outer, inner, after) as (proc, known):
        got = events_by_path(harness, proc.pid)
    assert [got[str(p)]["dd"] for p in (outer, inner, after)] == [dd_of(known[str(p)]) for p in (outer, inner, after)]
    assert known[str(outer)] == known[str(after)] != known[str(inner)]
    assert known[str(outer)][1] == known[str(inner)][1]  # one trace


def test_two_threads_in_two_spans_each_carry_their_own_ids(harness, tmp_path):
    a, b = files(tmp_path, "thread-a", "thread-b")
    watch(harness, tmp_path)
    with app("threads", a, b) as (proc, known):
        got = events_by_path(harness, proc.pid)
    assert got[str(a)]["dd"] == dd_of(known[str(a)]) and got[str(b)]["dd"] == dd_of(known[str(b)])
    assert known[str(a)][0] != known[str(b)][0]
    assert got[str(a)]["process"]["tid"] != got[str(b)]["process"]["tid"]


def test_an_application_that_unregisters_gets_no_dd_even_inside_its_span(harness, tmp_path):
    inside, after = files(tmp_path, "before-off", "after-off")
    watch(harness, tmp_path)
    with app("unregister", inside, after) as (proc, known):
        got = events_by_path(harness, proc.pid)
        assert proc.pid not in harness.agent.probe.dd_threads()
    assert got[str(inside)]["dd"] == dd_of(known[str(inside)])
    assert "dd" not in got[str(after)]


MAP_FIXED_NOREPLACE = 0x100000


def _reuse_pid_and_open(pid: int, record_address: int, target: Path) -> subprocess.Popen | None:
    """A process on `pid` (ns_last_pid), not instrumented, whose memory holds nonzero ids where the previous
    process on that pid had its record (what a stale registration would read), opening `target`."""
    page = record_address & ~(mmap.PAGESIZE - 1)
    code = (
        "import ctypes, mmap, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.mmap.restype = ctypes.c_void_p\n"
        "libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,"
        " ctypes.c_long]\n"
        f"p = libc.mmap({page}, mmap.PAGESIZE, 3, 0x22 | {MAP_FIXED_NOREPLACE}, -1, 0)\n"
        f"assert p == {page}, ('mmap', p, ctypes.get_errno())\n"
        "ctypes.memset(p, 0x11, mmap.PAGESIZE)\n"
        f"open({str(target)!r}).close()\n"
    )
    last_pid = Path("/proc/sys/kernel/ns_last_pid")
    for _ in range(200):  # other processes of the machine may take the pid first
        last_pid.write_text(str(pid - 1))
        proc = subprocess.Popen([sys.executable, "-c", code])
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    return None


def test_a_process_reusing_the_pid_of_a_killed_application_inherits_no_ids(harness, tmp_path):
    first, second = files(tmp_path, "first", "second")
    watch(harness, tmp_path)
    with app("span", first, kill=True) as (proc, known):
        registered = harness.agent.probe.dd_threads()
        assert registered[proc.pid][0] == proc.pid  # the main thread's record, in the kernel map
        address = registered[proc.pid][1]
        assert events_by_path(harness, proc.pid)[str(first)]["dd"] == dd_of(known[str(first)])
    forgotten = proc.pid not in harness.agent.probe.dd_threads()
    reuser = _reuse_pid_and_open(proc.pid, address, second)
    if reuser is None:
        pytest.fail(f"pid {proc.pid} could not be reused (the machine forks too much)")
    assert reuser.wait(timeout=30) == 0
    e = events_by_path(harness, proc.pid)[str(second)]
    assert e["process"]["pid"] == proc.pid
    assert "dd" not in e
    assert forgotten  # the exit itself forgot the registration (the start time check is the second guard)


def test_the_probe_forgets_a_thread_that_execs(harness, tmp_path):
    (target,) = files(tmp_path, "after-exec")
    watch(harness, tmp_path)
    code = (
        "import os, sys\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "import opencws.tracing\n"
        "opencws.tracing.install()\n"
        "sys.stdout.write('registered\\n'); sys.stdout.flush(); sys.stdin.readline()\n"
        f"with TracerProvider().get_tracer('t').start_as_current_span('s'):\n"
        f"    os.execv('/bin/sh', ['sh', '-c', 'read x; exec 3< {target}'])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "registered\n"
        assert proc.pid in harness.agent.probe.dd_threads()
        proc.stdin.write("\n")
        proc.stdin.flush()
        for _ in range(100):  # until the shell runs (the exec is done)
            if os.readlink(f"/proc/{proc.pid}/exe") == os.path.realpath("/bin/sh"):
                break
            ctypes.CDLL(None).usleep(20_000)
        assert proc.pid not in harness.agent.probe.dd_threads()
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    assert "dd" not in events_by_path(harness, proc.pid)[str(target)]


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_example_web_app_links_each_request_to_the_event_of_the_file_it_read(harness):
    import urllib.request

    harness.agent.config.policies = [EXAMPLES / "traced_web_app.policy"]
    assert harness.agent.reload(), harness.self_events.lines[-1:]
    secret = Path("/tmp/opencws-example/secret.txt")
    secret.parent.mkdir(exist_ok=True)
    secret.write_text("s")  # (made by the app when missing: an open outside any request)
    harness.clear()
    server = subprocess.Popen([sys.executable, str(EXAMPLES / "traced_web_app.py"), "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().split()[-1]
        answers = [json.loads(urllib.request.urlopen(url, timeout=10).read()) for _ in range(2)]
        events = [line["event"] for line in harness.events("example_secret_read", server.pid)]
    finally:
        server.kill()
        server.wait()
        server.stdout.close()
    assert [e["dd"] for e in events] == [{"span_id": a["span_id"], "trace_id": a["trace_id"]} for a in answers]
    assert answers[0]["trace_id"] != answers[1]["trace_id"] and answers[0]["span_id"] != answers[0]["request_span_id"]
    assert all(e["file"]["path"] == "/tmp/opencws-example/secret.txt" for e in events)
