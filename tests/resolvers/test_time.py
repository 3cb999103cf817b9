"""Kernel clocks to wall-clock time: against the real clocks, and across simulated clock steps and suspends."""

from __future__ import annotations

import os
import time

import pytest

from opencws.resolvers.time import TRIES, TimeResolver

SECOND = 1_000_000_000


def real() -> int:
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


@pytest.mark.parametrize(
    ("clock", "convert", "windows"),
    [
        (time.CLOCK_MONOTONIC, TimeResolver.wall_from_monotonic, 0.5),  # one offset, exact to half a window
        (time.CLOCK_BOOTTIME, TimeResolver.wall_from_boottime, 1.0),  # two offsets
    ],
    ids=["monotonic", "boottime"],
)
def test_kernel_clock_times_convert_to_the_wall_clock(clock, convert, windows):
    tr = TimeResolver()
    for _ in range(20):
        before = real()
        wall = convert(tr, time.clock_gettime_ns(clock))
        after = real()
        slack = int(tr.read_window_ns * windows) + 1
        assert before - slack <= wall <= after + slack


def test_a_process_start_time_from_proc_converts_to_when_it_started():
    """/proc/<pid>/stat's start time is CLOCK_BOOTTIME in clock ticks: the same clock as `start_time_ns`."""
    before = real()
    pid = os.fork()
    if pid == 0:
        time.sleep(0.5)
        os._exit(0)
    try:
        after = real()
        with open(f"/proc/{pid}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        tick_ns = SECOND // os.sysconf("SC_CLK_TCK")
        wall = TimeResolver().wall_from_boottime(ticks * tick_ns)
        assert before - tick_ns <= wall <= after + tick_ns  # /proc rounds down to a tick
    finally:
        os.waitpid(pid, 0)


class Clocks:
    """Three clocks driven by the test: each read advances time by 7 ns, like a real read takes time."""

    def __init__(self) -> None:
        self.elapsed = 0
        self.mono_base = 5_000 * SECOND
        self.boot_base = 5_100 * SECOND
        self.real_base = 1_700_000_000 * SECOND

    def _tick(self) -> int:
        self.elapsed += 7
        return self.elapsed

    def mono(self) -> int:
        return self.mono_base + self._tick()

    def boot(self) -> int:
        return self.boot_base + self._tick()

    def real(self) -> int:
        return self.real_base + self._tick()

    def resolver(self, interval: float = 1.0) -> TimeResolver:
        return TimeResolver(reanchor_interval=interval, realtime=self.real, monotonic=self.mono,
                            boottime=self.boot)

    def advance(self, ns: int) -> None:
        self.elapsed += ns


def test_offsets_are_exact_when_reads_are_evenly_spaced():
    clocks = Clocks()
    tr = clocks.resolver()
    assert tr.wall_from_monotonic(clocks.mono_base + 123) == clocks.real_base + 123
    assert tr.wall_from_boottime(clocks.boot_base + 123) == clocks.real_base + 123
    assert tr.read_window_ns == 14


def test_a_wall_clock_step_is_followed_after_the_interval():
    clocks = Clocks()
    tr = clocks.resolver(interval=1.0)
    event = clocks.mono_base + 10 * SECOND
    clocks.real_base += 3600 * SECOND  # date -s: one hour forward
    assert not tr.maybe_reanchor()  # the anchor is still fresh
    assert tr.wall_from_monotonic(event) == clocks.real_base - 3600 * SECOND + 10 * SECOND
    clocks.advance(SECOND)
    assert tr.maybe_reanchor()
    assert tr.wall_from_monotonic(event) == clocks.real_base + 10 * SECOND
    assert tr.stats()["realtime_steps"] == 1 and tr.stats()["suspends"] == 0


def test_a_suspend_keeps_start_times_and_moves_event_times():
    clocks = Clocks()
    tr = clocks.resolver()
    started = clocks.boot_base + 42  # a process started before the suspend
    start_wall = tr.wall_from_boottime(started)
    # suspended for a minute: monotonic stopped, boottime and realtime went on
    clocks.boot_base += 60 * SECOND
    clocks.real_base += 60 * SECOND
    clocks.advance(SECOND)
    assert tr.maybe_reanchor()
    assert tr.wall_from_boottime(started) == start_wall
    now_mono = clocks.mono_base + clocks.elapsed
    assert tr.wall_from_monotonic(now_mono) == clocks.real_base + clocks.elapsed
    stats = tr.stats()
    assert stats["suspends"] == 1 and stats["realtime_steps"] == 0 and stats["anchors"] == 2


def test_the_pipelines_own_monotonic_time_decides_when_to_reanchor():
    clocks = Clocks()
    tr = clocks.resolver(interval=0.5)
    anchored = tr.anchored_at
    assert not tr.maybe_reanchor(anchored + SECOND // 2 - 1)
    assert tr.maybe_reanchor(anchored + SECOND // 2)
    assert tr.stats()["anchors"] == 2


def test_an_offset_moved_by_a_millisecond_is_slewing_and_by_a_nanosecond_more_a_step():
    """What NTP slews in a second (up to 0.5 ms) is not a clock step nor a suspend; just beyond 1 ms is."""
    for moved, counted in ((1_000_000, 0), (1_000_001, 1)):
        clocks = Clocks()
        tr = clocks.resolver()
        clocks.real_base += moved
        clocks.advance(SECOND)
        assert tr.maybe_reanchor()
        assert tr.stats()["realtime_steps"] == counted
        clocks.boot_base += moved  # monotonic stopped while boottime (and realtime) went on: a suspend
        clocks.real_base += moved
        clocks.advance(SECOND)
        assert tr.maybe_reanchor()
        assert (tr.stats()["suspends"], tr.stats()["realtime_steps"]) == (counted, counted)


class PreemptedClocks(Clocks):
    """One wall-clock read, of try `preempted` of an anchoring, is delayed a millisecond (the scheduler)."""

    def __init__(self, preempted: int) -> None:
        super().__init__()
        self.preempted, self.real_reads = preempted, 0

    def real(self) -> int:
        if self.real_reads == self.preempted:
            self.advance(1_000_000)
        self.real_reads += 1
        return super().real()


@pytest.mark.parametrize("preempted", [0, 3, TRIES - 1])
def test_a_preempted_read_is_not_used_the_tightest_try_is(preempted):
    clocks = PreemptedClocks(preempted)
    tr = clocks.resolver()
    assert tr.read_window_ns == 14
    assert tr.wall_from_monotonic(clocks.mono_base + 123) == clocks.real_base + 123
