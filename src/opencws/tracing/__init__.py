"""Link the OpenCWS agent's security events to the application's OpenTelemetry traces.

An application calls `opencws.tracing.install()` once (or adds `OpenCWSSpanProcessor` to its `TracerProvider`):
from then on every thread publishes the span it is in, in memory the OpenCWS probe reads at each kernel event
of that thread, and the agent fills `dd.span_id` / `dd.trace_id` in the CWS events. Entering a span (attaching a
context) publishes its ids; leaving it (detaching) publishes the parent's again. No syscall or network call per
span: one `prctl` per thread, the first time it enters a span.

Only the OpenTelemetry API is needed here (`opentelemetry-api`); `OpenCWSSpanProcessor` comes from
`opencws.tracing.sdk` and needs the SDK.

Limits: contexts switched without attach/detach are not seen (asyncio tasks sharing a thread: the thread shows the
span last entered or left on it); the ids are what the application says (a correlation aid, not a security fact).
"""

from __future__ import annotations

from opencws.tracing.context import install, installed, uninstall
from opencws.tracing.records import TRACE_ID_MASK

__all__ = ["TRACE_ID_MASK", "install", "installed", "uninstall"]
