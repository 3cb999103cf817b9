"""`OpenCWSSpanProcessor`: the integration as an OpenTelemetry SDK span processor.

`provider.add_span_processor(OpenCWSSpanProcessor())` installs the context hook (`opencws.tracing.install`);
`provider.shutdown()` uninstalls it. The processor itself does nothing per span: which span a thread is in is
decided by the context (a span started without being made current does not change it), which the hook follows.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import SpanProcessor

from opencws.tracing.context import install, uninstall


class OpenCWSSpanProcessor(SpanProcessor):
    def __init__(self) -> None:
        install()

    def shutdown(self) -> None:
        uninstall()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
