"""`opencws bench agent --quick` runs end to end on the real kernel and prints every figure with exact kernel
counts (durations are not checked)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]

FIGURES = (
    "baseline: the probe's reader alone",
    "agent: every event matched, CWS event + envelope written to a file",
    "agent: a rule of the same type matching none",
    "sustained: ",
    "agent thread CPU ",
    "the reading thread's longest time away from the ring ",
    "matched, CPU of the reading and the output threads together: ",
    "agent running, default policy, discarder learned",
    "agent/floor = ",
    "agent running (setuid events read and fed to the process cache)",
    "in the kernel: +",
    "processes in the cache (cache size ",
    "fork storm: ",
    "cache size before ",
    "Agent figures:",
    "end to end, matched events written to a file",
    "the same, CPU of the reading and output threads",
    "events reaching user space, no rule matched",
    "sustained 50,000 matched events/s",
    "open/close on an unwatched file, agent running",
    "setresuid with the agent",
    "agent RSS with 2,000 processes in the cache",
    "fork storm of 500 processes",
)
GENERATED = re.compile(r"generated ([\d,]+)(?: at [\d,]+/s)? = sent ([\d,]+) \+ lost ([\d,]+)")


def _n(text: str) -> int:
    return int(text.replace(",", ""))


def test_the_agent_benchmark_prints_every_figure_and_exact_kernel_counts():
    cmd = [sys.executable, "-m", "opencws.cli.main", "bench", "agent", "--quick"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    for expected in FIGURES:
        assert expected in out.stdout, f"{expected!r} missing:\n{out.stdout}"
    counts = GENERATED.findall(out.stdout)
    assert len(counts) == 4, out.stdout  # three bursts and the sustained run
    for generated, sent, lost in counts:
        assert _n(sent) + _n(lost) == _n(generated), out.stdout
    assert "sent + lost = generated and read = sent in every burst: yes" in out.stdout
    written = re.search(r"agent: every event matched.*\n.*matched and written ([\d,]+) \(([\d,]+) lines", out.stdout)
    assert written and _n(written.group(1)) == _n(written.group(2)) > 0, out.stdout
