"""`opencws run`, the main job: the probe with the default policy's kernel filters, on the real kernel."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson


def test_the_main_job_reports_a_watched_file_and_learns_to_drop_an_unwatched_one(require_kernel, tmp_path):
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "opencws.cli.main", "run", "--duration", "4"], stdout=out, stderr=err
        )
    try:
        deadline = time.monotonic() + 30
        while b"Ctrl-C to stop" not in err_path.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, err_path.read_text()
            time.sleep(0.05)
        with open("/etc/shadow", "rb"):
            pass
        unwatched = tmp_path / "unwatched.txt"
        unwatched.write_text("x")
        time.sleep(1)  # the agent reads the first open and learns that no rule could match this file
        for _ in range(50):
            unwatched.write_text("x")
        assert proc.wait(timeout=30) == 0, err_path.read_text()
    finally:
        proc.kill()
    events = [orjson.loads(x) for x in out_path.read_bytes().splitlines()]
    assert any(e["type"] == "open" and e.get("file") == "/etc/shadow" for e in events)
    # No rule watches it: once the agent has learned its discarder, the kernel drops its opens. (A directory
    # rename or a mount elsewhere on the machine invalidates discarders; the agent then learns it again.)
    assert 1 <= sum(e.get("file") == str(unwatched) for e in events) <= 3
    summary = err_path.read_text()
    assert "rules loaded, 0 errors" in summary
    open_line = next(x for x in summary.splitlines() if x.strip().startswith("open "))
    assert int(open_line.split("filtered")[1].split()[0]) >= 50
