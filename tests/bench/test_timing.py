"""The bench's reading of another process's CPU time counts what that process spent, its threads included."""

from __future__ import annotations

import subprocess
import sys
import time

from opencws.bench.timing import process_cpu_seconds

BUSY = (
    "import threading, time\n"
    "def spin():\n    s = time.thread_time()\n    while time.thread_time() - s < 0.3: pass\n"
    "th = threading.Thread(target=spin); th.start(); spin(); th.join(); print('done', flush=True); time.sleep(60)"
)


def test_a_busy_process_with_two_threads_shows_the_cpu_of_both() -> None:
    child = subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout and child.stdout.readline() == "done\n"
        assert 0.55 <= process_cpu_seconds(child.pid) < 30  # two threads, 0.3 s of CPU each
    finally:
        child.kill()
        child.wait()


def test_a_sleeping_process_uses_almost_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        first = process_cpu_seconds(child.pid)
        time.sleep(0.3)
        assert process_cpu_seconds(child.pid) - first < 0.05
    finally:
        child.kill()
        child.wait()
