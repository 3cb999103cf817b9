"""`opencws bench tracing` runs with tiny sizes and prints its figures (durations are not checked)."""

from __future__ import annotations

import subprocess
import sys


def test_the_tracing_benchmark_compares_each_sdk_setup_with_and_without_the_hook():
    cmd = [sys.executable, "-m", "opencws.cli.main", "bench", "tracing", "--spans", "200", "--rounds", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line for line in out.stdout.splitlines() if "SDK alone" in line and "with opencws.tracing" in line]
    assert len(lines) == 4 and all("median of rounds" in line and "ns/span" in line for line in lines)
    assert "largest median ratio" in out.stdout
