"""Fixtures for the probe's kernel tests: one probe shared by the session, reset after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from probe_watch import Watch


@pytest.fixture(scope="session")
def probe(require_kernel) -> Iterator:
    from opencws.probe.probe import Probe

    # the whole machine's activity flows through this probe: a large ring keeps a busy neighbour (a benchmark
    # running at the same time) from crowding out the tests' events
    with Probe(ring_buffer_bytes=64 << 20) as p:
        yield p


@pytest.fixture
def watch(probe, tmp_path: Path) -> Iterator[Watch]:
    """A watch on the shared probe, drained first; filters are reset afterwards."""
    probe.poll(0)
    w = Watch(probe, tmp_path)
    w.sync()
    yield w
    from opencws.probe.eventtypes import EventType

    probe.set_event_types(list(EventType))
    for t in EventType:
        probe.clear_approvers(t)
    probe.invalidate_discarders()
