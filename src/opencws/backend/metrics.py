"""Prometheus metrics of one backend application (a registry of its own, so that tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "opencws_intake_events", "Events received, by outcome", ["outcome"], registry=self.registry
        )
        self.requests = Counter(
            "opencws_http_requests",
            "HTTP requests, by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.search_seconds = Histogram(
            "opencws_search_seconds", "Time to answer a search", registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
        self.insert_seconds = Histogram(
            "opencws_store_insert_seconds", "Time to store one request's events", registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )  # fmt: skip
