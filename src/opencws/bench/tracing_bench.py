"""`opencws bench tracing`: what `opencws.tracing` adds to an application's spans.

A span entered and left (`with tracer.start_as_current_span(...)`: start, attach, detach, end) with the
OpenTelemetry SDK alone, then with the context hook installed, in interleaved rounds of the same process; the
hook publishes the span's ids at the attach and the parent's at the detach. Two SDK set-ups: no span processor
(the cheapest spans: the largest ratio) and a BatchSpanProcessor with an exporter that drops the spans (what an
application exporting its traces pays per span). Measured in this thread's CPU time (other jobs on a shared
machine do not count); best round of each, and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spans", type=int, default=50_000, help="spans per round (default 50000)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")


def _tracers() -> dict[str, Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    bare = TracerProvider()
    batch = TracerProvider()
    batch.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=1 << 20))
    return {"SDK, no span processor": bare, "SDK + BatchSpanProcessor (spans dropped)": batch}


def _loop(tracer: Any, n: int, nested: bool) -> Callable[[], None]:
    def one_level() -> None:
        for _ in range(n):
            with tracer.start_as_current_span("request"):
                pass

    def two_levels() -> None:  # n spans: n/2 requests, each with a child span
        for _ in range(n // 2):
            with tracer.start_as_current_span("request"), tracer.start_as_current_span("query"):
                pass

    return two_levels if nested else one_level


def _cpu(fn: Callable[[], None]) -> float:
    start = time.thread_time()
    fn()
    return time.thread_time() - start


def run(args: argparse.Namespace) -> int:
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        print("opencws bench tracing: needs the OpenTelemetry SDK (pip install opentelemetry-sdk)")
        return 1
    import opencws.tracing

    n, rounds = args.spans, args.rounds
    print(f"opencws.tracing: cost per span entered and left, {n:,} spans per round, {rounds} interleaved rounds, "
          "thread CPU time; SDK alone vs SDK + the context hook (same process, same run)")
    worst = 0.0
    for name, provider in _tracers().items():
        for nested in (False, True):
            loop = _loop(provider.get_tracer("bench"), n, nested)
            loop()  # warm-up (both ways: the thread's record registered once)
            opencws.tracing.install()
            loop()
            opencws.tracing.uninstall()
            base: list[float] = []
            hooked: list[float] = []
            for r in range(rounds):
                order = (False, True) if r % 2 == 0 else (True, False)
                for on in order:
                    if on:
                        opencws.tracing.install()
                        hooked.append(_cpu(loop))
                        opencws.tracing.uninstall()
                    else:
                        base.append(_cpu(loop))
            b, h = min(base) / n * 1e6, min(hooked) / n * 1e6
            ratio = statistics.median(x / y for x, y in zip(hooked, base, strict=True))
            worst = max(worst, ratio)
            shape = "a request span and a child span" if nested else "one span"
            print(f"  {name + ', ' + shape:<66} SDK alone {b:6.2f} us/span   with opencws.tracing {h:6.2f} us/span"
                  f"   best {h / b:.3f}x, median of rounds {ratio:.3f}x  (+{(h - b) * 1000:.0f} ns/span)")
        provider.shutdown()
    print(f"  largest median ratio {worst:.3f}x (goal <= 1.05x)")
    return 0
