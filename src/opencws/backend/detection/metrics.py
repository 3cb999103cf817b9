"""Detection's Prometheus metrics, on the backend's registry."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from opencws.backend.detection.signals import Signal


class DetectionMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter("opencws_detection_events", "Stored events evaluated by the detection rules",
                              registry=registry)  # fmt: skip
        self.errors = Counter(
            "opencws_detection_errors", "Events whose evaluation failed (logged)", registry=registry
        )
        self.signals = Counter(
            "opencws_signals", "Signals raised, by severity", ["severity"], registry=registry
        )
        self.seconds = Histogram(
            "opencws_detection_seconds", "Time to evaluate one request's events and write the state",
            registry=registry, buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )  # fmt: skip
        self.webhooks = Counter(
            "opencws_webhook_deliveries", "Webhook delivery attempts, by outcome (delivered, error, abandoned)",
            ["outcome"], registry=registry,
        )  # fmt: skip
        self.webhook_pending = Gauge("opencws_webhook_pending", "Signals whose webhook is not delivered yet",
                                     registry=registry)  # fmt: skip

    def observed(self, n: int, new: Sequence[Signal], errors: int, seconds: float) -> None:
        self.events.inc(n)
        if errors:
            self.errors.inc(errors)
        for s in new:
            self.signals.labels(s.severity).inc()
        self.seconds.observe(seconds)
