"""Small timing helpers shared by the benchmarks."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user and system, all its threads) another process has used so far, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # (after the command, which may hold spaces and parentheses)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15 of proc(5))


def best_rate(fn: Callable[[], Any], items: int, rounds: int = 5) -> float:
    """Items per second of the best of `rounds` runs of `fn` (which processes `items` items).

    Measured in this thread's CPU time, so that other jobs on a shared machine do not count.
    """
    best = float("inf")
    for _ in range(rounds):
        start = time.thread_time()
        fn()
        best = min(best, time.thread_time() - start)
    return items / max(best, 1e-9)


def line(label: str, rate: float, baseline: float | None = None, unit: str = "events/s") -> str:
    """One figure, aligned, with its ratio to the baseline when there is one."""
    text = f"  {label:<62} {rate:>12,.0f} {unit}"
    if baseline:
        text += f"   ({rate / baseline:.2f}x baseline)"
    return text
