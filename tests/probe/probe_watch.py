"""Fixtures for the probe's kernel tests: one probe shared by the session, and a way to wait for events.

Events are told apart by the test's pid and paths. `Watch.sync()` makes a marker event (a mkdir+rmdir of a
unique directory) and waits for it: every event this thread caused before it has then been read.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path

from opencws.probe.events import KernelEvent, MkdirEvent

_counter = itertools.count()


class Watch:
    def __init__(self, probe, tmp: Path):
        self.probe = probe
        self.tmp = tmp
        self.seen: list[KernelEvent] = []
        self._backlog: list[KernelEvent] = []

    def sync(self, timeout: float = 10.0) -> list[KernelEvent]:
        """Return the events read until a marker made now arrives (the marker itself excluded)."""
        marker = str(self.tmp / f".sync-{os.getpid()}-{next(_counter)}")
        os.mkdir(marker)
        os.rmdir(marker)
        out: list[KernelEvent] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch, self._backlog = self._backlog + self.probe.poll(50), []
            for i, e in enumerate(batch):
                if isinstance(e, MkdirEvent) and e.file.path == marker:
                    self._backlog = batch[i + 1:]  # later events: for the next sync
                    self.seen.extend(out)
                    return out
                f = getattr(e, "file", None)
                if f is None or "/.sync-" not in f.path:  # markers are not test events
                    out.append(e)
        lost = {t: c.lost for t, c in self.probe.counters().items() if c.lost}
        raise AssertionError(f"marker {marker} never arrived (is mkdir enabled and unfiltered?); "
                             f"events lost to a full ring buffer: {lost or 'none'}")

    def checkpoint(self) -> None:
        """Forget everything read so far (later `mine` calls see only what happens after this)."""
        self.sync()
        self.seen.clear()

    def mine(self, cls: type | tuple[type, ...] = KernelEvent,
             where: Callable[[KernelEvent], bool] | None = None) -> list:
        """Events of this process (and its children) read since the watch started, that match."""
        self.sync()
        events = self.seen
        pids = {os.getpid()}
        out = []
        for e in events:
            if e.pid in pids or e.ppid in pids:
                pids.add(e.pid)
                if isinstance(e, cls) and (where is None or where(e)):
                    out.append(e)
        return out

    def wait_for(self, cls: type, where: Callable[[KernelEvent], bool] | None = None,
                 timeout: float = 5.0) -> list:
        """Like mine(), for events another process causes asynchronously (retries until one arrives)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.mine(cls, where)
            if found or time.monotonic() > deadline:
                return found

    def one(self, cls: type, where: Callable[[KernelEvent], bool] | None = None):
        found = self.mine(cls, where)
        assert len(found) == 1, f"expected one {cls.__name__}, got {found}"
        return found[0]


def paths_under(root: Path) -> Callable[[KernelEvent], bool]:
    prefix = str(root) + "/"

    def match(e: KernelEvent) -> bool:
        f = getattr(e, "file", None)
        return f is not None and (f.path.startswith(prefix) or f.path == str(root))

    return match


