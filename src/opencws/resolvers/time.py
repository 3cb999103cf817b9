"""Kernel clocks to wall-clock time: event times (CLOCK_MONOTONIC) and process start times (CLOCK_BOOTTIME).

The kernel stamps events with `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) and processes with
`task->start_boottime` (CLOCK_BOOTTIME). Both are the wall clock minus an offset the kernel keeps:
realtime = monotonic + offs_real, boottime = monotonic + offs_boot. So a conversion is one addition, once the
offsets are known. They change when the wall clock is stepped (NTP, `date -s`: offs_real) and across a suspend
(monotonic stops, boottime and realtime go on: both offsets), so they are measured again every
`reanchor_interval` seconds of monotonic time (the pipeline calls `maybe_reanchor` once per batch).

No system call reads an offset directly: it is measured by reading the clock between two reads of
CLOCK_MONOTONIC, and the pair of reads closest together among a few tries is kept. The offset is then known to
within half that window (tens of nanoseconds here, the cost of one vDSO call).
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]

TRIES = 8
"""Reads per anchoring: the tightest of them is kept (a read preempted by the scheduler is simply not used)."""

STEP_NS = 1_000_000
"""A change of an offset by more than this between two anchors counts as a clock step (or a suspend): what
NTP's slewing does in a second stays far below it."""


def _realtime() -> int:
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


def _monotonic() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def _boottime() -> int:
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


class TimeResolver:
    """Converts kernel CLOCK_MONOTONIC and CLOCK_BOOTTIME nanoseconds to nanoseconds since the epoch.

    `wall_from_monotonic` and `wall_from_boottime` are hot-path calls: one attribute read and one addition.
    The clocks can be injected (tests simulate clock steps and suspends with them).
    """

    __slots__ = (
        "_boot_to_wall",
        "_boottime",
        "_mono_to_wall",
        "_monotonic",
        "_realtime",
        "anchored_at",
        "anchors",
        "boot_offset_ns",
        "interval_ns",
        "read_window_ns",
        "real_offset_ns",
        "realtime_steps",
        "suspends",
    )

    def __init__(
        self,
        *,
        reanchor_interval: float = 1.0,
        realtime: Clock = _realtime,
        monotonic: Clock = _monotonic,
        boottime: Clock = _boottime,
    ) -> None:
        self.interval_ns = int(reanchor_interval * 1e9)
        self._realtime, self._monotonic, self._boottime = realtime, monotonic, boottime
        self.anchors = 0
        self.realtime_steps = 0
        """Re-anchorings that found the wall clock stepped against CLOCK_MONOTONIC."""
        self.suspends = 0
        """Re-anchorings that found CLOCK_BOOTTIME ahead of CLOCK_MONOTONIC by more than before (a suspend)."""
        self.real_offset_ns = 0
        """CLOCK_REALTIME - CLOCK_MONOTONIC at the last anchor."""
        self.boot_offset_ns = 0
        """CLOCK_BOOTTIME - CLOCK_MONOTONIC at the last anchor."""
        self.read_window_ns = 0
        """The widest of the two read windows kept: each offset is exact to half of it."""
        self.anchored_at = 0
        """CLOCK_MONOTONIC of the last anchor."""
        self._mono_to_wall = 0
        self._boot_to_wall = 0
        self.reanchor()

    def wall_from_monotonic(self, ns: int) -> int:
        """Nanoseconds since the epoch of a CLOCK_MONOTONIC time (an event's `ktime_ns`). Hot path."""
        return ns + self._mono_to_wall

    def wall_from_boottime(self, ns: int) -> int:
        """Nanoseconds since the epoch of a CLOCK_BOOTTIME time (a process's `start_time_ns`). Hot path."""
        return ns + self._boot_to_wall

    def maybe_reanchor(self, now_monotonic: int | None = None) -> bool:
        """Measure the offsets again when the anchor is older than the interval; True when it did. Called
        once per batch of events, with the batch's CLOCK_MONOTONIC time when the caller has one."""
        now = self._monotonic() if now_monotonic is None else now_monotonic
        if now - self.anchored_at < self.interval_ns:
            return False
        self.reanchor()
        return True

    def reanchor(self) -> None:
        """Measure both offsets now (see the module's docstring)."""
        realtime, monotonic, boottime = self._realtime, self._monotonic, self._boottime
        best_real = best_boot = None
        for _ in range(TRIES):
            m0 = monotonic()
            r = realtime()
            m1 = monotonic()
            b = boottime()
            m2 = monotonic()
            if best_real is None or m1 - m0 < best_real[0]:
                best_real = (m1 - m0, r - (m0 + m1) // 2)
            if best_boot is None or m2 - m1 < best_boot[0]:
                best_boot = (m2 - m1, b - (m1 + m2) // 2)
        assert best_real is not None and best_boot is not None
        real_offset, boot_offset = best_real[1], best_boot[1]
        if self.anchors:
            real_moved, boot_moved = real_offset - self.real_offset_ns, boot_offset - self.boot_offset_ns
            if boot_moved > STEP_NS:
                self.suspends += 1
            if abs(real_moved - boot_moved) > STEP_NS:  # a suspend moves both offsets alike
                self.realtime_steps += 1
        self.anchors += 1
        self.real_offset_ns, self.boot_offset_ns = real_offset, boot_offset
        self.read_window_ns = max(best_real[0], best_boot[0])
        self.anchored_at = m2
        self._mono_to_wall = real_offset
        self._boot_to_wall = real_offset - boot_offset

    def stats(self) -> dict[str, int]:
        return {
            "anchors": self.anchors,
            "realtime_steps": self.realtime_steps,
            "suspends": self.suspends,
            "read_window_ns": self.read_window_ns,
        }
