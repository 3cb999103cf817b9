"""The context hook: OpenTelemetry's runtime context, wrapped so that every attach and detach publishes the current
span's ids in the calling thread's record (`records.py`).

Hot path (every span entered and left goes through it twice; `opencws bench tracing` measures it): `attach` and
`detach` come from a small C extension (`_hook.c`) when it is built; their Python twins are closures over the
context variable and `publish`, itself a closure over the thread-local records (the span's ids read straight
from its `SpanContext` tuple, two stores into the record).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context.context import Context, _RuntimeContext
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation import _SPAN_KEY

from opencws.tracing.records import TRACE_ID_MASK, Registry

try:
    from opencws.tracing import _hook
except ImportError:  # not built (a checkout without set-up): the Python closures do the same, slower
    _hook = None  # type: ignore[assignment]

_TUPLE_IDS = SpanContext(trace_id=1, span_id=2, is_remote=False)[:2] == (1, 2)
"""A SpanContext is a tuple starting (trace_id, span_id) (read by index: cheaper than its properties)."""


def _publisher(registry: Registry) -> Callable[[Any], None]:
    """`publish(span)`: write the span's ids (None or an invalid span: no span) in the calling thread's record."""
    local, current, mask = registry.local, registry.current, TRACE_ID_MASK

    def publish(span: Any) -> None:
        try:
            ids = local.ids
        except AttributeError:
            ids = current().ids
        if span is None:
            ids[0] = 0
            return
        sc = span.get_span_context()
        if _TUPLE_IDS:
            ids[1] = sc[0] & mask
            ids[0] = sc[1]
        else:
            ids[1] = sc.trace_id & mask
            ids[0] = sc.span_id  # (0 for an invalid span: no dd)
    return publish


class PublishingContext(_RuntimeContext):
    """A runtime context that publishes the current span after each change (delegating the rest to `inner`)."""

    def __init__(self, inner: _RuntimeContext, registry: Registry, compiled: bool = True):
        """`compiled`: attach and detach from the C extension when it is built (`_hook.c`), else the Python
        closures below (its twin, and the fallback)."""
        self.inner = inner
        self.registry = registry
        self.publish = publish = _publisher(registry)
        cv = getattr(inner, "_current_context", None)
        if type(inner) is ContextVarsRuntimeContext and isinstance(cv, ContextVar):
            # OpenTelemetry's default runtime context: its context variable, without its methods' frames
            set_, reset, get = cv.set, cv.reset, cv.get
        else:
            set_, reset, get = inner.attach, inner.detach, inner.get_current  # type: ignore[assignment]
        key = _SPAN_KEY

        def attach(context: Context) -> object:
            token = set_(context)
            publish(context.get(key))
            return token

        def detach(token: Any) -> None:
            reset(token)
            publish(get().get(key))

        self.compiled = compiled and _hook is not None
        if self.compiled:  # the same two in C (`_hook.c`)
            hook = _hook.Hook(set_, reset, get, key, registry.local, registry.current)
            attach, detach = hook.attach, hook.detach  # type: ignore[assignment]
        self.attach = attach  # type: ignore[method-assign]
        self.detach = detach  # type: ignore[method-assign]
        self.get_current = get  # type: ignore[method-assign]

    # (the instance's closures above replace these)
    def attach(self, context: Context) -> object:  # pragma: no cover
        raise NotImplementedError

    def detach(self, token: object) -> None:  # pragma: no cover
        raise NotImplementedError

    def get_current(self) -> Context:  # pragma: no cover
        raise NotImplementedError


_lock = threading.Lock()
_hooks_registered = False
_REGISTRY = Registry()


def installed() -> bool:
    return isinstance(otel_context._RUNTIME_CONTEXT, PublishingContext)


def install() -> None:
    """Publish the current span of every thread from now on (idempotent). The calling thread publishes at once,
    so its registration is done before it needs it."""
    global _hooks_registered
    with _lock:
        if not installed():
            otel_context._RUNTIME_CONTEXT = PublishingContext(otel_context._RUNTIME_CONTEXT, _REGISTRY)
        if not _hooks_registered:
            atexit.register(uninstall)
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _hooks_registered = True
        runtime = otel_context._RUNTIME_CONTEXT
    runtime.publish(otel_context.get_current().get(_SPAN_KEY))


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
    runtime = otel_context._RUNTIME_CONTEXT
    if isinstance(runtime, PublishingContext):
        runtime.publish(otel_context.get_current().get(_SPAN_KEY))


def current_record() -> Any:
    """The calling thread's record (registered now if it was not)."""
    return _REGISTRY.current()


def registered_threads() -> list[int]:
    """The tids whose records this process registered (for tests and diagnostics)."""
    return _REGISTRY.registered_tids()
