"""`opencws bench probe` runs end to end with tiny sizes and prints its figures (durations are not checked)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]


def test_the_probe_benchmark_prints_every_figure_and_an_exact_lost_count():
    cmd = [sys.executable, "-m", "opencws.cli.main", "bench", "probe", "--iterations", "2000", "--forks", "20",
           "--rounds", "1", "--burst", "3000", "--no-alternatives"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    for expected in ("bare (no BPF)", "floor: empty raw sys_enter + sys_exit", "probe/floor = ", "opens the kernel sent during each round of the learned discarder",
                     "probe/bare = ", "fork+exec probe/bare = ", "chown: the owner before costs ", "generated 3,000 = sent ",
                     "reader: typed events, type, pid, file.path, file.inode read", "header unpack only, mmap ring reader", "decode rate ",
                     "sent + lost = generated in every burst: yes", "dd context: open/close loop",
                     "probe built without the dd lookup (baseline)", "ns to read a registered thread's ids",
                     "typed events with dd ids"):
        assert expected in out.stdout, out.stdout
