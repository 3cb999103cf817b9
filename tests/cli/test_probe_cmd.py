"""`opencws probe trace` prints decoded kernel events as JSON lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest


@pytest.mark.kernel
@pytest.mark.usefixtures("require_kernel")
def test_probe_trace_prints_events_as_json_lines_and_the_counters(tmp_path):
    target = tmp_path / "traced-dir"
    proc = subprocess.Popen(
        [sys.executable, "-m", "opencws.cli.main", "probe", "trace", "--types", "mkdir", "--count", "1",
         "--pid", str(os.getpid()), "--counters"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        os.mkdir(target)
        os.rmdir(target)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert lines[0]["type"] == "mkdir" and lines[0]["file"]["path"] == str(target)
    assert lines[0]["pid"] == os.getpid()
    assert lines[-1]["type"] == "counters" and lines[-1]["counters"]["mkdir"]["sent"] >= 1


def test_an_unknown_event_type_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "opencws.cli.main", "probe", "trace", "--types", "nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown event type" in proc.stderr


_CHILD = """
import ctypes, os, sys, time
ctypes.CDLL(None).prctl(15, b"\\xff\\xfe-comm\\n", 0, 0, 0)  # PR_SET_NAME: a command name that is not UTF-8
root = os.fsencode(sys.argv[1])
names = [bytes.fromhex(h) for h in sys.argv[2:]]
while True:
    for n in names:
        os.mkdir(root + b"/" + n)
        os.rmdir(root + b"/" + n)
    time.sleep(0.05)
"""


@pytest.mark.kernel
@pytest.mark.usefixtures("require_kernel")
def test_probe_trace_carries_names_and_commands_that_are_not_utf8(tmp_path):
    from opencws.model import jsontext

    names = [bytes(range(1, 47)) + bytes(range(48, 256)), b"\xed\xa0\x80", b"nl\nctl\x01\x1b", b"\xe9" * 255]
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path), *(n.hex() for n in names)])
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "opencws.cli.main", "probe", "trace", "--types", "mkdir",
             "--count", str(2 * len(names)), "--pid", str(child.pid)],
            capture_output=True, timeout=60,
        )
    finally:
        child.kill()
        child.wait()
    assert proc.returncode == 0, proc.stderr.decode()
    lines = [jsontext.loads(line) for line in proc.stdout.splitlines()]
    assert {os.fsencode(line["file"]["path"]) for line in lines} == {os.fsencode(tmp_path) + b"/" + n
                                                                     for n in names}
    assert {os.fsencode(line["comm"]) for line in lines} == {b"\xff\xfe-comm\n"}
