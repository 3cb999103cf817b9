"""`opencws bench reporter` runs and prints its figures with ratios (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys


def test_bench_reporter_prints_each_figure_against_its_baseline() -> None:
    out = subprocess.run([sys.executable, "-m", "opencws.cli.main", "bench", "reporter", "--events", "1000",
                          "--batch", "200"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    for label in ("FileReporter.write (baseline)", "HTTPReporter.write", "gzip level 3, ",
                  "(baseline: compression: gzip)", "gzip level 6, ", "zstd level 1, ", "zstd level 3, ",
                  "(the reporter's)", "decoding those batches as the intake does", "gzip level 3, ",
                  "µs an event (baseline)", "posting compressed batches one after another (baseline)",
                  "through the HTTP reporter (writes, batches, zstd, posts)"):
        assert label in out.stdout, out.stdout
    assert out.stdout.count("x baseline)") == 1 + 5 + 4 + 1
    assert "end to end: 1000 events" in out.stdout
