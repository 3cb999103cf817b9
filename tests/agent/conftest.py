"""Fixtures for the agent's kernel tests: one probe for the module, a reader that feeds the agent's filters."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_reader import Reader


@pytest.fixture(scope="module")
def probe(require_kernel) -> Iterator:
    from opencws.probe.probe import Probe

    with Probe() as p:
        yield p


@pytest.fixture
def reader(probe) -> Iterator[Reader]:
    probe.poll(0)
    r = Reader(probe)
    yield r
    from opencws.probe.eventtypes import EventType

    probe.set_event_types([])  # nothing but exec/fork/exit fills the ring buffer until the next test
    for t in EventType:
        probe.clear_approvers(t)
    probe.invalidate_discarders()
    probe.poll(0)


# The raw system calls the probe's tests use (bpf, capset, ...) serve the agent's scenarios too; the backend as a
# real process serves the HTTP reporter's.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "probe"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "backend"))
