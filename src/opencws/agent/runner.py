"""The running agent: the probe, the resolvers, the rules and the reporters, until told to stop.

Lifecycle:
- start: load the policies (errors are reported, valid rules run), start the probe, take the `/proc`
  snapshot into the process cache, push the policy's kernel filters (the agent's own pid is ignored: its
  map updates are `bpf()` calls), start the metrics endpoint;
- loop: read a batch from the ring, run it through the pipeline, flush the reporters; once a second,
  re-anchor the clocks, publish counters, and say what the kernel lost or the rate limits held back;
- SIGHUP (`request_reload`): the policies are loaded again; a policy with an error keeps the old rules
  running and a self-event says why; good ones replace them between two batches (no event sees half);
- SIGTERM/SIGINT (`request_stop`): reading stops at the end of the ring (what was queued is drained),
  the reporters are flushed and closed.

Self-events (rule set loaded, reload refused, events lost, rate limit hit, reporter error) are JSON lines
on their own channel (`self_events`, standard error by default), never mixed with CWS events.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from opencws.agent.config import AgentConfig
from opencws.agent.event import Resolvers
from opencws.agent.output_thread import ThreadedReporter
from opencws.agent.pipeline import LoadedRules, Pipeline, self_event
from opencws.agent.ratelimit import RuleRateLimiter
from opencws.agent.reporters import open_reporter
from opencws.agent.serializer import forget_files
from opencws.secl import PolicySet, load_policies

TICK_S = 1.0


class Agent:
    def __init__(self, config: AgentConfig, *, probe_factory: Callable[[], Any] | None = None,
                 reporters: list[Any] | None = None, self_channel: Any = None):
        """`reporters`, `self_channel`: reporter objects to use instead of those the config names."""
        self.config = config
        self._probe_factory = probe_factory
        self._stop = False
        self._reload = False
        self.probe: Any = None
        self.metrics: Any = None
        self._metrics_server: Any = None
        self._last_lost: dict[str, int] = {}
        self._last_limited: dict[str, int] = {}
        self._published: dict[str, Any] = {}
        self._reporter_errors: dict[str, list[Any]] = {}
        self.reporters = reporters if reporters is not None else [ThreadedReporter(r) for r in open_outputs(config)]
        """Outputs named by the config are written by threads of their own (`output_thread`): a blocking write
        never keeps the reading thread from the ring buffer. Reporters handed in are used as they are."""
        self.longest_stall_s = 0.0
        """The longest time the reading thread spent away from the ring buffer between two reads (the batch's
        pipeline and flush, a tick, a reload): what the ring must absorb."""
        self.longest = {"batch": 0.0, "batch_cpu": 0.0, "tick": 0.0}
        """The longest batch (pipeline and flush; and the CPU time it took: the rest is waiting for a CPU or for
        the interpreter's lock) and the longest tick, in seconds."""
        self._polled: float | None = None
        if self_channel is None and config.self_events:
            self_channel = open_reporter(config.self_events)
        self.self_channel = self_channel
        """None: self-events are off (`self_events: null` in the config)."""

    # -- control ------------------------------------------------------------------------------------------

    def request_stop(self, *_: Any) -> None:
        self._stop = True

    def request_reload(self, *_: Any) -> None:
        self._reload = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_reload)

    def say(self, kind: str, **fields: Any) -> None:
        if self.self_channel is None:
            return
        try:
            self.self_channel.write(self_event(kind, self.config.host, **fields))
            self.self_channel.flush()
        except Exception as exc:  # the self channel failing must not stop the agent
            print(f"opencws agent: self-event channel: {exc}", file=sys.stderr)

    # -- start --------------------------------------------------------------------------------------------

    def load_rules(self) -> tuple[PolicySet, LoadedRules]:
        policies = load_policies(self.config.policies)
        return policies, LoadedRules.build(policies)

    def start(self) -> None:
        from opencws.agent.filters import Discarders, KernelFilters
        from opencws.probe.procfs import snapshot
        from opencws.resolvers import build_resolvers

        policies, rules = self.load_rules()
        self.say("ruleset_loaded", rules=len(rules.info), errors=[str(e) for e in policies.errors],
                 policies=[str(p) for p in self.config.policies], **_load_report(policies))
        self.resolvers: Resolvers = build_resolvers(self.config)
        self.probe = self._probe_factory() if self._probe_factory else _default_probe(self.config.ring_buffer_mb)
        self.probe.start()
        try:
            self.resolvers.processes.snapshot(snapshot())
            self.filters = KernelFilters(self.probe, policies, ignored_pids=[os.getpid()],
                                         processes=self.resolvers.processes)
            self.limiter = RuleRateLimiter(*self.config.rate_limit.default, self.config.rate_limit.rules)
            self.limiter.set_intervals(_rule_intervals(policies))
            self.pipeline = Pipeline(self.resolvers, rules, self.reporters, allow=self.limiter.allow,
                                     host=self.config.host, on_report_error=self._report_error,
                                     observe=self.filters.discarders.observe,
                                     observe_matched=Discarders.LEARNS_FROM_MATCHED)
            if self.config.metrics:
                self._start_metrics()
        except Exception:
            self.probe.close()
            raise
        gc.freeze()  # the snapshot, the rules and the code: long-lived, never walked by the collector again
        self.say("started", event_types=sorted(self.filters.plan.event_types),
                 processes=len(self.resolvers.processes), metrics=self.config.metrics)

    def _start_metrics(self) -> None:
        from opencws.agent.metrics import AgentMetrics

        host, port = self.config.metrics_address  # type: ignore[misc]
        self.metrics = AgentMetrics()
        self.metrics.set_rules_loaded(len(self.pipeline.rules.info))
        self._metrics_server = self.metrics.serve(host, port)

    # -- loop ---------------------------------------------------------------------------------------------

    def run(self, duration: float | None = None) -> int:
        """Read and process until a stop is requested (or `duration` seconds passed); then drain and close."""
        deadline = time.monotonic() + duration if duration else None
        next_tick = time.monotonic() + TICK_S
        try:
            while not self._stop and (deadline is None or time.monotonic() < deadline):
                if self._reload:
                    self._reload = False
                    self.reload()
                self.step(100)
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + TICK_S
                    self.tick()
            self.drain()
        finally:
            self.close()
        return 0

    def step(self, timeout_ms: int) -> int:
        start = time.perf_counter()
        if self._polled is not None and start - self._polled > self.longest_stall_s:
            self.longest_stall_s = start - self._polled
        batch = self.probe.poll(timeout_ms)
        self._polled = polled = time.perf_counter()
        if batch:
            cpu = time.thread_time()
            self.pipeline.handle(batch)
            self.pipeline.flush()
            took = time.perf_counter() - polled
            if took > self.longest["batch"]:
                self.longest["batch"] = took
                self.longest["batch_cpu"] = time.thread_time() - cpu
        return len(batch)

    def drain(self) -> None:
        """Process what is still queued in the ring buffer, then publish the last counts."""
        self._process_queued()
        self.tick()

    def _process_queued(self) -> None:
        """Read until the ring buffer is empty (bounded: new activity does not keep us here)."""
        for _ in range(64):
            if not self.step(0):
                break

    def tick(self) -> None:
        start = time.perf_counter()
        self._tick()
        took = time.perf_counter() - start
        if took > self.longest["tick"]:
            self.longest["tick"] = took

    def _tick(self) -> None:
        self.resolvers.refresh()
        forget_files()
        self._say_reporter_errors()
        self._say_reporter_notices()
        counters = self.probe.counters()
        lost = {t: c.lost for t, c in counters.items() if c.lost}
        delta = {t: n - self._last_lost.get(t, 0) for t, n in lost.items() if n > self._last_lost.get(t, 0)}
        if delta:
            self.say("events_lost", lost=delta, total=sum(lost.values()))
            if "exit" in delta or "fork" in delta or "exec" in delta:
                swept = self.resolvers.processes.sweep()  # the cache may hold processes whose exit was lost
                self.say("process_cache_swept", removed=swept)
        self._last_lost = lost
        limited = dict(self.pipeline.counts.limited_rules)
        held = {r: n - self._last_limited.get(r, 0) for r, n in limited.items() if n > self._last_limited.get(r, 0)}
        if held:
            self.say("rate_limited", rules=held)
        self._last_limited = limited
        if self.metrics is not None:
            self._publish(counters)

    def _publish(self, kernel_counters: dict[str, Any]) -> None:
        """Counters to Prometheus: the pipeline's running totals as increments since the last tick."""
        m, c = self.metrics, self.pipeline.counts
        last = self._published
        for name, add in (("seen", m.add_seen), ("filtered", m.add_filtered), ("sent", m.add_sent),
                          ("matches", m.add_rule_match), ("limited_rules", m.add_rate_limited)):
            now: dict[str, int] = getattr(c, name)
            before = last.setdefault(name, {})
            for key, total in now.items():
                if total > before.get(key, 0):
                    add(key, total - before.get(key, 0))
            last[name] = dict(now)
        procs = self.resolvers.processes.stats()
        d = self.filters.discarders.stats
        for key, total, add in (("decode_errors", getattr(self.probe, "decode_errors", 0), m.add_decode_errors),
                                ("evictions", procs["evictions"], m.add_process_cache_evictions),
                                ("inodes", d.inodes, lambda n: m.add_discarders("inode", n)),
                                ("pids", d.pids, lambda n: m.add_discarders("pid", n)),
                                ("inode_removals", d.inode_removals, lambda n: m.add_discarders("inode_removal", n)),
                                ("inodes_without_identity", d.inodes_without_identity,
                                 lambda n: m.add_discarders_not_learned("no_inode_identity", n)),
                                ("invalidations", d.invalidations, m.add_discarder_invalidations)):
            if total > last.get(key, 0):
                add(total - last.get(key, 0))
            last[key] = total
        m.set_process_cache_size(procs["size"])
        m.set_kernel_counters(kernel_counters)
        for r in self.reporters:
            if hasattr(r, "stats"):
                m.set_reporter_stats(r.stats())

    def reload(self) -> bool:
        """Load the policies again; keep the running rules when the new ones have errors."""
        try:
            policies, rules = self.load_rules()
        except Exception as exc:  # unreadable paths and the like: the old rules stay
            self.say("ruleset_reload_refused", errors=[str(exc)])
            return False
        if policies.errors:
            if self.metrics is not None:
                self.metrics.add_policy_reload(False)
            self.say("ruleset_reload_refused", errors=[str(e) for e in policies.errors],
                     kept_rules=len(self.pipeline.rules.info))
            return False
        self._process_queued()  # what happened before the reload is judged by the rules of that time
        self.filters.reload(policies)
        self.pipeline.set_rules(rules)
        self.limiter.set_intervals(_rule_intervals(policies))
        for rep in self.reporters:  # a file moved away by logrotate is opened again
            if hasattr(rep, "reopen"):
                try:
                    rep.reopen()
                except Exception as exc:
                    self._report_error(rep, exc)
        if self.metrics is not None:
            self.metrics.set_rules_loaded(len(rules.info))
            self.metrics.add_policy_reload(True)
        self.say("ruleset_loaded", rules=len(rules.info), errors=[], policies=[str(p) for p in self.config.policies],
                 **_load_report(policies))
        return True

    def _report_error(self, reporter: Any, exc: Exception) -> None:
        """Said at once the first time, then once a tick with how many more failed (a full disk fails every
        write: one line a second says so, not one line an event)."""
        name = getattr(reporter, "name", type(reporter).__name__)
        if self.metrics is not None:
            self.metrics.add_reporter_error(name)
        pending = self._reporter_errors.get(name)
        if pending is None:
            self._reporter_errors[name] = [0, str(exc)]
            self.say("reporter_error", reporter=name, error=str(exc), failures=1)
        else:
            pending[0] += 1
            pending[1] = str(exc)

    def _say_reporter_errors(self) -> None:
        for name, (more, error) in list(self._reporter_errors.items()):
            if more:
                self.say("reporter_error", reporter=name, error=error, failures=more)
                self._reporter_errors[name] = [0, error]
            else:
                del self._reporter_errors[name]  # a quiet second: the next failure is said at once

    def _say_reporter_notices(self) -> None:
        """What reporters with a life of their own (the HTTP reporter's thread) have to say: failures, a spool
        replayed or full, events the backend rejected."""
        for rep in self.reporters:
            take = getattr(rep, "take_notices", None)
            if take is not None:
                for kind, fields in take():
                    self.say(kind, reporter=rep.name, **fields)

    def close(self) -> None:
        for rep in self.reporters:
            try:
                rep.close()
            except Exception as exc:
                self._report_error(rep, exc)
        self._say_reporter_errors()
        self._say_reporter_notices()
        if self.probe is not None:
            c = self.pipeline.counts if hasattr(self, "pipeline") else None
            if c is not None:
                self.say("stopped", seen=c.seen, sent=c.sent, filtered=c.filtered, rate_limited=c.rate_limited,
                         lost={t: k.lost for t, k in self.probe.counters().items() if k.lost},
                         longest_stall_ms=round(self.longest_stall_s * 1000, 3))
            self.probe.close()
            self.probe = None
        if self._metrics_server is not None:
            self._metrics_server.close()
            self._metrics_server = None


def open_outputs(config: AgentConfig) -> list[Any]:
    """The reporters of `config.outputs`; those opened are closed again when a later one fails."""
    http_outputs = sum(spec.startswith(("http:", "https:")) for spec in config.outputs)
    opened: list[Any] = []
    try:
        for spec in config.outputs:
            http = config.http.reporter_options(spec, http_outputs) if spec.startswith(("http:", "https:")) \
                else None
            opened.append(open_reporter(spec, api_key=config.api_key, http=http))
    except BaseException:
        for rep in opened:
            rep.close()
        raise
    return opened


def _default_probe(ring_buffer_mb: int) -> Any:
    from opencws.probe.probe import Probe

    return Probe(ring_buffer_bytes=ring_buffer_mb << 20)


def _rule_intervals(policies: PolicySet) -> dict[str, int]:
    """Rules' `every` (ns): at most one event per interval, as Datadog's agent limits such a rule."""
    return {r.id: r.every for r in policies.rules if r.every}


def _load_report(policies: PolicySet) -> dict[str, Any]:
    """What a rule set load says besides errors: the rules skipped (counts by reason) and the actions not run."""
    skipped = {group: {subject: len(ids) for subject, ids in g.items()}
               for group, g in policies.skip_summary().items()}  # fmt: skip
    return {"skipped": skipped, "actions_not_executed": policies.not_executed()}
