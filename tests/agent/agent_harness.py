"""Drives a real agent (probe, resolvers, rules, reporters) from a kernel test.

The agent ignores its own process (its map updates are `bpf()` calls), so the activity a scenario checks is
done by a forked child (`Harness.child`). `sync()` forks a marker child that exits at once and processes
batches until its exit has gone through the pipeline: every event caused before has then been handled.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from agent_reader import read_until_marker


class ListReporter:
    """A reporter that keeps its lines in memory (as bytes, which the garbage collector does not walk; parsed
    when read)."""

    name = "list"

    def __init__(self) -> None:
        self.raw: list[bytes] = []

    @property
    def lines(self) -> list[dict]:
        return [orjson.loads(line) for line in self.raw]

    def write(self, line: bytes) -> None:
        self.raw.append(line)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class Harness:
    def __init__(self, agent: Any, sink: ListReporter, self_events: ListReporter):
        self.agent = agent
        self.sink = sink
        self.self_events = self_events

    def use_policy(self, tmp_path: Path, *expressions: str, ids: list[str] | None = None) -> Path:
        """Replace the agent's rules with one rule per expression (ids r0, r1... unless given)."""
        ids = ids or [f"r{i}" for i in range(len(expressions))]
        body = "".join(f"  - id: {rid}\n    version: 1.2.3\n    expression: '{e}'\n    tags:\n"
                       f"      technique: T0000\n" for rid, e in zip(ids, expressions, strict=True))
        folder = Path(tempfile.mkdtemp(prefix="policy-", dir=tmp_path.parent))
        path = folder / "test.policy"
        path.write_text("rules:\n" + body)
        self.agent.config.policies = [path]
        assert self.agent.reload(), self.self_events.lines[-1:]
        self.clear()
        return path

    def clear(self) -> None:
        self.sync()
        self.sink.raw.clear()

    def child(self, fn: Callable[[], Any], *, wait: bool = True) -> int:
        """Run `fn` in a forked child (exit code 0 when it returns, 1 when it raises); returns its pid."""
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                fn()
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 1
            os._exit(code)
        if wait:
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0, "the scenario's child failed"
        return pid

    def sync(self, timeout: float = 15.0) -> None:
        agent = self.agent

        def handle(batch: list, markers: set[int]) -> bool:
            agent.pipeline.handle(batch)
            agent.pipeline.flush()
            return any(e.type == "exit" and e.pid in markers for e in batch)

        read_until_marker(lambda: agent.probe.poll(50), handle, timeout)

    def events(self, rule: str | None = None, pid: int | None = None) -> list[dict]:
        """Output lines (envelopes) since the last clear, of that rule and that process."""
        self.sync()
        return [line for line in self.sink.lines
                if (rule is None or line["rule_id"] == rule)
                and (pid is None or line["event"]["process"]["pid"] == pid)]

    def one(self, rule: str | None = None, pid: int | None = None) -> dict:
        found = self.events(rule, pid)
        assert len(found) == 1, f"expected one event, got {len(found)}: {found}"
        return found[0]["event"]


@contextmanager
def started_agent(config: Any = None, probe_factory: Callable[[], Any] | None = None) -> Iterator[Harness]:
    """A started agent writing to memory (events and self-events), closed on exit. Default settings, the
    default policy, and no rate limit unless `config` says otherwise."""
    from opencws.agent.config import AgentConfig, RateLimit
    from opencws.agent.runner import Agent

    if config is None:
        config = AgentConfig()
        config.rate_limit.default = RateLimit(1_000_000.0, 1_000_000)
    sink, self_events = ListReporter(), ListReporter()
    agent = Agent(config, reporters=[sink], self_channel=self_events, probe_factory=probe_factory)
    agent.start()
    try:
        yield Harness(agent, sink, self_events)
    finally:
        agent.close()
