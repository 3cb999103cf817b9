"""The agent's Prometheus metrics, on a registry of its own, served over HTTP by `AgentMetrics.serve`.

Every event read from the ring buffer is counted once as seen, and then as filtered (no rule matched), sent
(written out) or rate limited; the kernel's own per-type counters come from the probe as running totals:

- `opencws_events_seen_total{type}`: events read from the ring buffer by the agent;
- `opencws_events_filtered_total{type}`: read, but no rule matched;
- `opencws_events_sent_total{type}`: matched and written to the outputs;
- `opencws_events_rate_limited_total{rule}`: matched, but refused by the rule's rate limit;
- `opencws_rule_matches_total{rule}`; `opencws_decode_errors_total` (kernel records that did not decode);
- `opencws_kernel_events_{seen,filtered,sent}_total{type}`: in the kernel: hooked, dropped by approvers or
  discarders, pushed to the ring buffer; `opencws_events_lost_total{type}`: the ring buffer was full;
- `opencws_reporter_errors_total{reporter}`, `opencws_reporter_dropped_lines_total{reporter}` and the gauge
  `opencws_reporter_backlog_lines{reporter}`;
- an http(s) output's: `opencws_reporter_sent_events_total` (stored by the backend),
  `opencws_reporter_sent_batches_total`, `opencws_reporter_retries_total` (posts after a failure),
  `opencws_reporter_spooled_events_total` (written to the spool), `opencws_reporter_rejected_events_total` (refused
  by the backend), and the gauges `opencws_reporter_spool_batches`, `opencws_reporter_spool_bytes`, all by
  `reporter`; its drops (a full spool) are `opencws_reporter_dropped_lines_total`;
- `opencws_process_cache_size`, `opencws_process_cache_evictions_total`;
- `opencws_discarders_total{kind}` (discarders added, kind `inode` or `pid`; `inode_removal`: dropped by a hard link),
  `opencws_discarder_invalidations_total`, `opencws_discarders_not_learned_total{reason}` (`no_inode_identity`: a
  file on procfs, ramfs, devpts or bpffs, whose events therefore keep reaching the agent); `opencws_rules_loaded`, `opencws_policy_reloads_total{outcome}`.

The pipeline calls the `add_*` methods once per batch (a dictionary look-up and a locked add each); running
totals read elsewhere (the probe's counters, a reporter's stats) are set with `set_kernel_counters` and
`set_reporter_stats`, which keep the exported counters monotonic even when their source restarts from zero.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class CumulativeCounter(Collector):
    """A counter set from a running total kept elsewhere, rather than incremented.

    When the source starts again from zero (a probe reloaded, a reporter reopened), what it had counted is
    carried over, so the exported counter never goes down (Prometheus would read a drop as a reset).
    """

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str] = ()):
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()
        self._last: dict[tuple[str, ...], float] = {}
        self._carried: dict[tuple[str, ...], float] = {}

    def set(self, labels: tuple[str, ...], total: float) -> None:
        with self._lock:
            last = self._last.get(labels, 0)
            if total < last:
                self._carried[labels] = self._carried.get(labels, 0) + last
            self._last[labels] = total

    def value(self, labels: tuple[str, ...] = ()) -> float:
        with self._lock:
            return self._carried.get(labels, 0) + self._last.get(labels, 0)

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            for labels, last in sorted(self._last.items()):
                family.add_metric(list(labels), self._carried.get(labels, 0) + last)
        return [family]


def _children(metric: Counter | Gauge) -> Callable[[str], Any]:
    """`labels(value)` with the child kept: prometheus_client's own look-up costs more than a dict's."""
    cache: dict[str, Any] = {}

    def child(label: str) -> Any:
        c = cache.get(label)
        if c is None:
            c = cache[label] = metric.labels(label)
        return c

    return child


class MetricsServer:
    """The HTTP endpoint serving the metrics; `close()` stops it and frees the port."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry):
        try:
            self._httpd, self._thread = start_http_server(port, addr=host, registry=registry)
        except OSError as e:
            raise OSError(e.errno, f"cannot serve metrics on {host}:{port}: {e.strerror or e}") from None
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._closed = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


KERNEL_COUNTERS = ("seen", "filtered", "sent", "lost")
"""The order of the probe's per-type counters (`opencws.probe.probe.Counters`)."""


class AgentMetrics:
    """All the agent's metrics, on `registry` (a new `CollectorRegistry` unless one is given)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = CollectorRegistry() if registry is None else registry
        self.events_seen = Counter("opencws_events_seen", "Events read from the ring buffer", ["type"], registry=r)
        self.events_filtered = Counter("opencws_events_filtered", "Events read that matched no rule", ["type"],
                                       registry=r)
        self.events_sent = Counter("opencws_events_sent", "Matched events written to the outputs", ["type"],
                                   registry=r)
        self.events_rate_limited = Counter("opencws_events_rate_limited", "Matched events refused by the "
                                           "rule's rate limit", ["rule"], registry=r)
        self.rule_matches = Counter("opencws_rule_matches", "Events matched, per rule", ["rule"], registry=r)
        self.decode_errors = Counter("opencws_decode_errors", "Kernel records that could not be decoded",
                                     registry=r)
        self.reporter_errors = Counter("opencws_reporter_errors", "Errors raised by an output", ["reporter"],
                                       registry=r)
        self.reporter_backlog = Gauge("opencws_reporter_backlog_lines", "Lines waiting for an output that "
                                      "refused them", ["reporter"], registry=r)
        self.process_cache_size = Gauge("opencws_process_cache_size", "Processes in the cache", registry=r)
        self.process_cache_evictions = Counter("opencws_process_cache_evictions", "Processes evicted from the "
                                               "full cache", registry=r)
        self.discarders = Counter("opencws_discarders", "Discarders pushed to the kernel", ["kind"], registry=r)
        self.discarder_invalidations = Counter("opencws_discarder_invalidations", "Times every discarder was "
                                               "invalidated", registry=r)
        self.discarders_not_learned = Counter("opencws_discarders_not_learned", "Discarders the agent could "
                                              "have learned but did not, by reason (no_inode_identity: the file's "
                                              "filesystem gives its inodes no identity beside their number)",
                                              ["reason"], registry=r)
        self.rules_loaded = Gauge("opencws_rules_loaded", "Rules in the running rule set", registry=r)
        self.policy_reloads = Counter("opencws_policy_reloads", "Policy reloads, by outcome (ok, failed)",
                                      ["outcome"], registry=r)
        self.kernel = {
            "seen": CumulativeCounter("opencws_kernel_events_seen", "Events hooked in the kernel", ["type"]),
            "filtered": CumulativeCounter("opencws_kernel_events_filtered", "Events dropped in the kernel by "
                                          "approvers and discarders", ["type"]),
            "sent": CumulativeCounter("opencws_kernel_events_sent", "Events pushed to the ring buffer", ["type"]),
            "lost": CumulativeCounter("opencws_events_lost", "Events lost in the kernel: the ring buffer was "
                                      "full", ["type"]),
        }
        self.reporter_dropped = CumulativeCounter("opencws_reporter_dropped_lines", "Lines an output refused "
                                                  "beyond its backlog", ["reporter"])
        self.reporter_totals = {
            "sent": CumulativeCounter("opencws_reporter_sent_events", "Events the backend stored", ["reporter"]),
            "sent_batches": CumulativeCounter("opencws_reporter_sent_batches", "Batches the backend acknowledged",
                                              ["reporter"]),
            "retries": CumulativeCounter("opencws_reporter_retries", "Batches posted again after a failure",
                                         ["reporter"]),
            "spooled": CumulativeCounter("opencws_reporter_spooled_events", "Events written to the spool while the "
                                         "backend did not acknowledge them", ["reporter"]),
            "rejected": CumulativeCounter("opencws_reporter_rejected_events", "Events the backend refused (invalid, "
                                          "or a body it refused whole)", ["reporter"]),
        }
        self.reporter_spool = {
            "spool_batches": Gauge("opencws_reporter_spool_batches", "Batches waiting in the spool", ["reporter"],
                                   registry=r),
            "spool_bytes": Gauge("opencws_reporter_spool_bytes", "Bytes of the spool", ["reporter"], registry=r),
        }
        for collector in (*self.kernel.values(), self.reporter_dropped, *self.reporter_totals.values()):
            r.register(collector)
        self._seen = _children(self.events_seen)
        self._filtered = _children(self.events_filtered)
        self._sent = _children(self.events_sent)
        self._rate_limited = _children(self.events_rate_limited)
        self._matches = _children(self.rule_matches)
        self._reporter_errors = _children(self.reporter_errors)
        self._discarders = _children(self.discarders)

    # ------------------------------------------------------------------ per batch

    def add_seen(self, event_type: str, n: int = 1) -> None:
        self._seen(event_type).inc(n)

    def add_filtered(self, event_type: str, n: int = 1) -> None:
        self._filtered(event_type).inc(n)

    def add_sent(self, event_type: str, n: int = 1) -> None:
        self._sent(event_type).inc(n)

    def add_rate_limited(self, rule_id: str, n: int = 1) -> None:
        self._rate_limited(rule_id).inc(n)

    def add_rule_match(self, rule_id: str, n: int = 1) -> None:
        self._matches(rule_id).inc(n)

    def add_decode_errors(self, n: int = 1) -> None:
        self.decode_errors.inc(n)

    def add_reporter_error(self, reporter: str, n: int = 1) -> None:
        self._reporter_errors(reporter).inc(n)

    def set_process_cache_size(self, size: int) -> None:
        self.process_cache_size.set(size)

    def add_process_cache_evictions(self, n: int = 1) -> None:
        self.process_cache_evictions.inc(n)

    def add_discarders(self, kind: str, n: int = 1) -> None:
        """`kind`: `inode`, `pid`, or `inode_removal` (a discarder dropped because its inode gained a name)."""
        self._discarders(kind).inc(n)

    def add_discarder_invalidations(self, n: int = 1) -> None:
        self.discarder_invalidations.inc(n)

    def add_discarders_not_learned(self, reason: str, n: int = 1) -> None:
        """`reason`: `no_inode_identity` (see `filters.DiscarderStats.inodes_without_identity`)."""
        self.discarders_not_learned.labels(reason).inc(n)

    def set_rules_loaded(self, n: int) -> None:
        self.rules_loaded.set(n)

    def add_policy_reload(self, ok: bool) -> None:
        self.policy_reloads.labels("ok" if ok else "failed").inc()

    # ------------------------------------------------------------------ running totals read elsewhere

    def set_kernel_counters(self, counters: Mapping[str, Any]) -> None:
        """Per event type, the probe's running totals: a `Counters` (seen, filtered, sent, lost attributes) or
        a (seen, filtered, sent, lost) tuple, as `Probe.counters()` returns them."""
        kernel = self.kernel
        for event_type, values in counters.items():
            if hasattr(values, "seen"):
                values = (values.seen, values.filtered, values.sent, values.lost)
            for which, total in zip(KERNEL_COUNTERS, values, strict=True):
                kernel[which].set((event_type,), total)

    def set_reporter_stats(self, stats: Mapping[str, Any]) -> None:
        """A reporter's `stats()`: its backlog and the lines it dropped; an http(s) output's counts too."""
        name = str(stats["name"])
        self.reporter_backlog.labels(name).set(stats.get("backlog_lines", 0) or 0)
        self.reporter_dropped.set((name,), stats.get("dropped", 0) or 0)
        for key, counter in self.reporter_totals.items():
            if key in stats:
                counter.set((name,), stats[key] or 0)
        for key, gauge in self.reporter_spool.items():
            if key in stats:
                gauge.labels(name).set(stats[key] or 0)

    # ------------------------------------------------------------------ the endpoint

    def serve(self, host: str, port: int) -> MetricsServer:
        """Serve `/metrics` on host:port (port 0: any free port, see `.port`) from a daemon thread."""
        return MetricsServer(host, port, self.registry)

    def samples(self) -> Iterator[tuple[str, dict[str, str], float]]:
        """Every sample as (name, labels, value): what a scrape would read, for tests and `--metrics` dumps."""
        for family in self.registry.collect():
            for s in family.samples:
                yield s.name, s.labels, s.value
