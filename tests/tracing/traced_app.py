"""A small application instrumented with the OpenTelemetry SDK and `opencws.tracing`, run as a child by the tests.

`python traced_app.py SCENARIO PATH...` opens the given files as the scenario says and prints, on one JSON line,
what the application itself knew when it opened each: {path: [span_id, low 64 bits of trace_id] or null}. Then it
waits for a line on standard input before exiting (the test reads its events while it is alive), unless
`--exit` is given.
"""

from __future__ import annotations

import json
import sys
import threading

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import opencws.tracing
from opencws.tracing.sdk import OpenCWSSpanProcessor

provider = TracerProvider()
provider.add_span_processor(OpenCWSSpanProcessor())
tracer = provider.get_tracer("traced_app")
seen: dict[str, list[int] | None] = {}


def touch(path: str) -> None:
    with open(path):
        pass
    sc = trace.get_current_span().get_span_context()
    seen[path] = [sc.span_id, sc.trace_id & opencws.tracing.TRACE_ID_MASK] if sc.is_valid else None


def in_span(path: str) -> None:
    with tracer.start_as_current_span("request"):
        touch(path)


def nested(outer: str, inner: str, after: str) -> None:
    """A span, a child span, and the parent again once the child is left."""
    with tracer.start_as_current_span("request"):
        touch(outer)
        with tracer.start_as_current_span("query"):
            touch(inner)
        touch(after)


def threads(a: str, b: str) -> None:
    """Two threads, each in its own span, each opening its file while the other is inside its span too."""
    both_in = threading.Barrier(2)

    def work(path: str) -> None:
        with tracer.start_as_current_span(f"worker {path}"):
            both_in.wait()
            touch(path)
            both_in.wait()

    ts = [threading.Thread(target=work, args=(p,)) for p in (a, b)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def unregistered(inside: str, after: str) -> None:
    """In a span; then the application turns the link off (still in the span) and opens another file."""
    with tracer.start_as_current_span("request"):
        touch(inside)
        opencws.tracing.uninstall()
        touch(after)


SCENARIOS = {"span": in_span, "nospan": touch, "nested": nested, "threads": threads, "unregister": unregistered}

if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--exit"]
    SCENARIOS[args[0]](*args[1:])
    print(json.dumps(seen), flush=True)
    if "--exit" not in sys.argv:
        sys.stdin.readline()
