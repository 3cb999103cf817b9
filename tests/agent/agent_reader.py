"""Reads the probe the way the agent does: the decoded events go through the filters' `observe`.

Only this process's events teach the filters: the rest of the machine's would teach discarders the tests did not
ask for, among them stale ones (an event read after its inode died and a test's new file took its number: see
`test_a_discarder_learned_after_its_inode_died_spares_the_file_born_on_its_number`).

`sync()` forks a child that exits at once and reads until its exit event arrives (exec, fork and exit always
flow, whatever the filters): every event this process caused before has then been read.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from opencws.probe.events import ExitEvent, KernelEvent


class Reader:
    def __init__(self, probe):
        self.probe = probe
        self.filters = None
        self.seen: list[KernelEvent] = []
        self.learned: list[tuple[str, KernelEvent]] = []
        """(what the agent learned, from which event) since the last checkpoint."""

    def sync(self, timeout: float = 10.0) -> None:
        """Read until the exit of a marker child arrives; a marker lost to a full ring buffer is replaced."""

        def handle(batch: list[KernelEvent], markers: set[int]) -> bool:
            for e in batch:
                if isinstance(e, ExitEvent) and e.pid in markers:
                    return True
                if isinstance(e, ExitEvent) and e.ppid == os.getpid():
                    continue  # an earlier marker, late
                if self.filters is not None and e.pid == os.getpid():
                    learned = self.filters.observe(e)
                    if learned:
                        self.learned.append((learned, e))
                self.seen.append(e)
            return False

        read_until_marker(lambda: self.probe.poll(50), handle, timeout)

    def checkpoint(self) -> None:
        """Forget what was read so far."""
        self.sync()
        self.seen.clear()
        self.learned.clear()

    def learned_from(self, path: str | None = None, pid: int | None = None) -> list[str]:
        """What the agent learned from events on this path or of this process."""
        return [kind for kind, e in self.learned
                if (path is None or getattr(getattr(e, "file", None), "path", None) == path)
                and (pid is None or e.pid == pid)]

    def mine(self, cls: type | tuple[type, ...], where: Callable[[KernelEvent], bool] | None = None) -> list:
        """Events of this process of that class read since the last checkpoint."""
        self.sync()
        return [e for e in self.seen if e.pid == os.getpid() and isinstance(e, cls) and (where is None or where(e))]


def read_until_marker(poll: Callable[[], list[KernelEvent]], handle: Callable[[list[KernelEvent], set[int]], bool],
                      timeout: float) -> None:
    """Fork a marker child that exits at once, then pass each batch `poll` reads to `handle(batch, markers)`
    until it says a marker's exit was in it; a marker lost to a full ring buffer is joined by another after 1 s
    (the exit of any of them, all forked after the call began, ends it: one stuck behind a long backlog still
    counts once it arrives)."""
    deadline = time.monotonic() + timeout
    markers: set[int] = set()
    while time.monotonic() < deadline:
        marker = os.fork()
        if marker == 0:
            os._exit(0)
        os.waitpid(marker, 0)
        markers.add(marker)
        retry = time.monotonic() + 1.0
        while time.monotonic() < min(retry, deadline):
            if handle(poll(), markers):
                return
    raise AssertionError("no marker child's exit arrived")


def under(root) -> Callable[[KernelEvent], bool]:
    prefix = str(root) + "/"
    return lambda e: getattr(e, "file", None) is not None and e.file.path.startswith(prefix)


def write_policy(tmp_path: Path, *expressions: str):
    """A policy of one rule per expression (ids r0, r1, ...), loaded (from a directory beside tmp_path, so
    that reading it is no event under tmp_path)."""
    from opencws.secl import load_policies

    text = "rules:\n" + "".join(f"  - id: r{i}\n    expression: '{e}'\n" for i, e in enumerate(expressions))
    folder = Path(tempfile.mkdtemp(prefix="policy-", dir=tmp_path.parent))
    p = folder / "rules.policy"
    p.write_text(text)
    ps = load_policies([p])
    assert ps.errors == [], ps.errors
    return ps
