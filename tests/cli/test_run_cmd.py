"""`opencws run`, the main job: the probe with the default policy's kernel filters, on the real kernel."""

from __future__ import annotations

import subprocess
import sys

import orjson


def test_the_main_job_reports_a_watched_file_and_counts_what_the_kernel_filtered(require_kernel, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "opencws.cli.main", "run", "--duration", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        for line in proc.stderr:
            if b"Ctrl-C to stop" in line:
                break
        else:
            raise AssertionError("the main job did not start")
        with open("/etc/shadow", "rb"):
            pass
        unwatched = tmp_path / "unwatched.txt"
        for _ in range(50):
            unwatched.write_text("x")
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    events = [orjson.loads(x) for x in out.splitlines()]
    assert any(e["type"] == "open" and e.get("file") == "/etc/shadow" for e in events)
    # No rule watches it: once the agent has learned its discarder, the kernel drops its opens.
    assert sum(e.get("file") == str(unwatched) for e in events) < 10
    summary = err.decode()
    assert "rules loaded, 0 errors" in summary
    open_line = next(x for x in summary.splitlines() if x.strip().startswith("open "))
    assert int(open_line.split("filtered")[1].split()[0]) > 0
