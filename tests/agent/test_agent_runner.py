"""The running agent's own reports: events the kernel could not queue and matches held back by a rule's rate
limit are said on the self-event channel and counted, never dropped silently."""

from __future__ import annotations

import os

import pytest
from agent_harness import started_agent

pytestmark = pytest.mark.kernel


@pytest.fixture
def small_agent(require_kernel):
    """An agent whose ring buffer holds a few hundred events, and whose rules may match twice a second."""
    from opencws.agent.config import AgentConfig, RateLimit
    from opencws.probe.probe import Probe

    config = AgentConfig()
    config.rate_limit.default = RateLimit(1.0, 2)
    with started_agent(config, probe_factory=lambda: Probe(ring_buffer_bytes=1 << 16)) as h:
        yield h


def test_events_the_kernel_could_not_queue_are_said_and_counted(small_agent, tmp_path):
    h = small_agent
    target = tmp_path / "burst"
    target.write_text("x")
    h.use_policy(tmp_path, f'open.file.path == "{target}"')
    # nobody reads while the child opens the file a thousand times: the 64 KiB ring fills up
    h.child(lambda: [os.close(os.open(target, os.O_RDONLY)) for _ in range(1000)])
    h.agent.tick()
    lost = [e for e in h.self_events.lines if e["agent_event"] == "events_lost"]
    assert lost and lost[-1]["lost"]["open"] > 0
    written = len(h.events("r0"))
    assert written + h.agent.probe.counters()["open"].lost >= 1000


def test_matches_over_a_rules_budget_are_counted_and_said_once_per_tick(small_agent, tmp_path):
    h = small_agent
    target = tmp_path / "limited"
    target.write_text("x")
    h.use_policy(tmp_path, f'open.file.path == "{target}"')
    pid = h.child(lambda: [os.close(os.open(target, os.O_RDONLY)) for _ in range(10)])
    written = h.events("r0", pid)
    assert 1 <= len(written) <= 3  # the burst of two (and what a second refilled)
    counts = h.agent.pipeline.counts
    assert counts.matches["r0"] == 10 and counts.limited_rules["r0"] == 10 - len(written)
    h.agent.tick()
    said = [e for e in h.self_events.lines if e["agent_event"] == "rate_limited"]
    assert said and said[-1]["rules"]["r0"] == 10 - len(written)
