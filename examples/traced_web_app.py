"""A small web application traced with OpenTelemetry whose requests are linked to OpenCWS's security events.

Every request is a server span (the standard library's ThreadingHTTPServer: a thread per request);
`opencws.tracing` publishes each thread's current span to the OpenCWS probe. `GET /report` reads the app's secret
file, which the example policy watches: the agent's event for that read carries `dd.span_id` and `dd.trace_id`,
the ids this response shows. Run it (as root, from the checkout; examples/README.md):

    .venv/bin/opencws agent run --policy examples/traced_web_app.policy &
    .venv/bin/python examples/traced_web_app.py --port 8000 &
    curl -s localhost:8000/report

It needs the OpenTelemetry SDK (`pip install opentelemetry-sdk`, in the project's dev dependencies).
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.trace import SpanKind

import opencws.tracing
from opencws.tracing.sdk import OpenCWSSpanProcessor

SECRET = Path("/tmp/opencws-example/secret.txt")


def make_tracer(print_spans: bool):
    provider = TracerProvider()
    provider.add_span_processor(OpenCWSSpanProcessor())  # installs opencws.tracing's context hook
    if print_spans:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    return provider.get_tracer("traced_web_app")


class Handler(BaseHTTPRequestHandler):
    tracer = None  # set by main()

    def do_GET(self) -> None:
        with self.tracer.start_as_current_span(f"GET {self.path}", kind=SpanKind.SERVER) as span:
            if self.path != "/report":
                self.send_error(404)
                return
            with self.tracer.start_as_current_span("read secret") as child:
                words = len(SECRET.read_text().split())  # the watched open, inside the child span
            ctx = child.get_span_context()
            body = json.dumps({
                "words": words,
                "request_span_id": span.get_span_context().span_id,
                "span_id": ctx.span_id,  # the span the thread was in when it opened the secret
                "trace_id": ctx.trace_id & opencws.tracing.TRACE_ID_MASK,  # the low 64 bits, as dd.trace_id
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="0: any free port (printed)")
    parser.add_argument("--print-spans", action="store_true", help="print the finished spans on standard output")
    args = parser.parse_args()
    SECRET.parent.mkdir(parents=True, exist_ok=True)
    if not SECRET.exists():
        SECRET.write_text("the example's secret\n")
    Handler.tracer = make_tracer(args.print_spans)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/report", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
