"""Prometheus metrics of one backend application (a registry of its own, so that tests can run several)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


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

    def watch_journal(self, store: Callable[[], Any]) -> None:
        """The store's journal, read at each scrape (`store()`: the store open now, or None)."""
        self.registry.register(_JournalCollector(store))


class _JournalCollector(Collector):
    def __init__(self, store: Callable[[], Any]) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        store = self.store()
        stats = store.journal_stats() if store is not None else {}
        yield GaugeMetricFamily(
            "opencws_journal_pending_rows", "Events and contexts acknowledged, not yet in the store",
            value=stats.get("pending_rows", 0),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "opencws_journal_pending_bytes", "Bytes of journal records not yet in the store",
            value=stats.get("pending_bytes", 0),
        )  # fmt: skip
        yield CounterMetricFamily(
            "opencws_journal_inserts", "Inserts of journaled records into the store", value=stats.get("inserts", 0)
        )
        yield CounterMetricFamily(
            "opencws_journal_insert_errors", "Inserts of journaled records the store refused (retried)",
            value=stats.get("insert_errors", 0),
        )  # fmt: skip


class RequestCounter:
    """ASGI middleware: each HTTP request counted in `opencws_http_requests` by its route's path and the status
    answered (500 when the application failed before answering). Plain ASGI: Starlette's `BaseHTTPMiddleware`
    runs each request in a task of its own and streams the answer through a copy, about a fifth of the event
    loop's time on a small request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def answer(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            route = scope.get("route")  # set by the router on the scope itself
            metrics: Metrics = scope["app"].state.metrics
            metrics.requests.labels(getattr(route, "path", "unmatched"), str(status)).inc()
