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
