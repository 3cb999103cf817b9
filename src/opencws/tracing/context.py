"""The context hook: OpenTelemetry's runtime context, wrapped so that every attach and detach publishes the current
span's ids in the calling thread's record (`records.py`).

Hot path: each span entered and left costs one publication on each side (a thread-local read, the span's
context, two stores into the record).
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context.context import Context, _RuntimeContext
from opentelemetry.trace.propagation import _SPAN_KEY

from opencws.tracing.records import TRACE_ID_MASK, Registry

_REGISTRY = Registry()


def publish(span: Any) -> None:
    """Write `span`'s ids (None or an invalid span: no span) into the calling thread's record."""
    try:
        ids = _REGISTRY._local.record.ids
    except AttributeError:
        ids = _REGISTRY.current().ids
    if span is None:
        ids[0] = 0
        return
    sc = span.get_span_context()
    ids[1] = sc.trace_id & TRACE_ID_MASK
    ids[0] = sc.span_id  # (0 for an invalid span: no dd)


class PublishingContext(_RuntimeContext):
    """A runtime context that publishes the current span after each change (delegating the rest)."""

    def __init__(self, inner: _RuntimeContext):
        self.inner = inner
        self._attach = inner.attach
        self._detach = inner.detach
        self.get_current = inner.get_current  # type: ignore[method-assign]

    def attach(self, context: Context) -> object:
        token = self._attach(context)
        publish(context.get(_SPAN_KEY))
        return token

    def detach(self, token: object) -> None:
        self._detach(token)
        publish(self.get_current().get(_SPAN_KEY))

    def get_current(self) -> Context:  # (replaced by the inner one's in __init__)
        return self.inner.get_current()


_lock = threading.Lock()
_at_exit = False


def installed() -> bool:
    return isinstance(otel_context._RUNTIME_CONTEXT, PublishingContext)


def install() -> None:
    """Publish the current span of every thread from now on (idempotent). The calling thread publishes at once,
    so its registration is done before it needs it."""
    global _at_exit
    with _lock:
        if not installed():
            otel_context._RUNTIME_CONTEXT = PublishingContext(otel_context._RUNTIME_CONTEXT)
        if not _at_exit:
            atexit.register(uninstall)
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _at_exit = True
    publish(otel_context.get_current().get(_SPAN_KEY))


def uninstall() -> None:
    """Stop publishing; zero and unregister every thread's record (process exit and exec forget them in the kernel
    anyway: this is for an application that turns the link off while it runs)."""
    with _lock:
        runtime = otel_context._RUNTIME_CONTEXT
        if isinstance(runtime, PublishingContext):
            otel_context._RUNTIME_CONTEXT = runtime.inner
        _REGISTRY.unregister_all()


def _after_fork_in_child() -> None:
    _REGISTRY.forget_after_fork()
    if installed():
        publish(otel_context.get_current().get(_SPAN_KEY))


def registered_threads() -> list[int]:
    """The tids whose records this process registered (for tests and diagnostics)."""
    return _REGISTRY.registered_tids()
