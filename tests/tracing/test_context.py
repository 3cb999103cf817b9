"""`opencws.tracing` in the application: what each thread's record holds as spans are entered and left (read
back from the record's memory, as the probe reads it)."""

from __future__ import annotations

import ctypes
import os
import re
import threading
from pathlib import Path

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import opencws.tracing
from opencws.tracing import context as hook
from opencws.tracing import records
from opencws.tracing.sdk import OpenCWSSpanProcessor


@pytest.fixture(params=["compiled", "python"])
def tracer(request, monkeypatch):
    """A tracer whose spans go through the hook: its C attach/detach (`_hook.c`), or their Python twins."""
    if request.param == "python":
        monkeypatch.setattr(hook, "_hook", None)
    provider = TracerProvider()
    provider.add_span_processor(OpenCWSSpanProcessor())
    yield provider.get_tracer("test")
    provider.shutdown()
    assert not opencws.tracing.installed()


def record_now() -> tuple[int, int]:
    """The calling thread's record, read from its address (the bytes the probe reads)."""
    rec = hook.current_record()
    raw = ctypes.string_at(rec.address, records.RECORD_SIZE)
    return int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")


def ids(span) -> tuple[int, int]:
    sc = span.get_span_context()
    return sc.span_id, sc.trace_id & (2**64 - 1)


def test_entering_a_span_publishes_it_and_leaving_it_gives_the_parents_ids_back(tracer):
    assert record_now()[0] == 0
    with tracer.start_as_current_span("request") as outer:
        assert record_now() == ids(outer)
        with tracer.start_as_current_span("query") as inner:
            assert record_now() == ids(inner) and ids(inner) != ids(outer)
        assert record_now() == ids(outer)
    assert record_now()[0] == 0


def test_install_uses_the_compiled_hook_set_up_builds_or_else_its_python_twin(tracer, request):
    compiled = request.node.callspec.params["tracer"] == "compiled"
    with tracer.start_as_current_span("request"):
        assert otel_context._RUNTIME_CONTEXT.compiled is compiled


def test_the_trace_id_is_the_low_64_bits_of_the_128_bit_id(tracer):
    with tracer.start_as_current_span("request") as span:
        trace_id = span.get_span_context().trace_id
        assert record_now()[1] == trace_id & (2**64 - 1) == trace_id % 2**64


def test_a_span_started_but_not_made_current_changes_nothing(tracer):
    with tracer.start_as_current_span("request") as current:
        other = tracer.start_span("background")
        assert record_now() == ids(current)
        with trace.use_span(other, end_on_exit=True):
            assert record_now() == ids(other)
        assert record_now() == ids(current)


def test_each_thread_has_its_own_record(tracer):
    seen = {}
    both_in = threading.Barrier(2)

    def work(name: str) -> None:
        with tracer.start_as_current_span(name) as span:
            both_in.wait()
            seen[name] = (record_now(), ids(span), hook.current_record().tid)
            both_in.wait()

    ts = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert seen["a"][0] == seen["a"][1] and seen["b"][0] == seen["b"][1] and seen["a"][1] != seen["b"][1]
    assert seen["a"][2] != seen["b"][2] and {seen["a"][2], seen["b"][2]} <= set(hook.registered_threads())


def test_uninstall_restores_opentelemetrys_context_and_zeroes_every_record(tracer):
    original = otel_context._RUNTIME_CONTEXT.inner
    opencws.tracing.install()  # twice: still one wrapper
    assert otel_context._RUNTIME_CONTEXT.inner is original
    with tracer.start_as_current_span("request"):
        rec = hook.current_record()
        assert rec.ids[0] != 0
        opencws.tracing.uninstall()
        assert otel_context._RUNTIME_CONTEXT is original
        assert (rec.ids[0], rec.ids[1]) == (0, 0) and hook.registered_threads() == []
    with tracer.start_as_current_span("after"):  # no longer published
        assert (rec.ids[0], rec.ids[1]) == (0, 0)


def test_a_forked_child_registers_its_own_record(tracer):
    with tracer.start_as_current_span("request") as span:
        parent_record = hook.current_record()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            rec = hook.current_record()
            ok = rec is not parent_record and rec.tid == os.getpid() and hook.registered_threads() == [os.getpid()]
            os.write(w, b"1" if ok and record_now() == ids(span) else b"0")
            os._exit(0)
        os.close(w)
        assert os.read(r, 1) == b"1"
        os.close(r)
        os.waitpid(pid, 0)


def test_the_librarys_constants_are_the_probes():
    header = (Path(records.__file__).parent.parent / "probe" / "bpf" / "ddcontext.h").read_text()
    defined = dict(re.findall(r"#define (DD_PRCTL_\w+) (0x[0-9a-f]+)", header))
    assert int(defined["DD_PRCTL_OPTION"], 16) == records.DD_PRCTL_OPTION
    assert int(defined["DD_PRCTL_MAGIC"], 16) == records.DD_PRCTL_MAGIC


def test_the_ids_read_from_the_span_context_tuple_are_those_of_its_properties(tracer, monkeypatch):
    """The hook reads a SpanContext by index (a tuple: cheaper); the properties give the same ids."""
    assert hook._TUPLE_IDS
    with tracer.start_as_current_span("request") as span:
        by_index = record_now()
        monkeypatch.setattr(hook, "_TUPLE_IDS", False)
        hook.PublishingContext(otel_context._RUNTIME_CONTEXT.inner, hook._REGISTRY).publish(span)
        assert record_now() == by_index == ids(span)


def test_records_of_threads_gone_are_dropped_when_new_threads_register(monkeypatch):
    registry = records.Registry()
    monkeypatch.setattr(registry, "PRUNE_ABOVE", 2)
    gone = []
    for _ in range(4):
        t = threading.Thread(target=lambda: gone.append(registry.current().tid))
        t.start()
        t.join()
    alive = registry.current().tid  # (the fourth thread pruned the first three, all gone)
    assert registry.registered_tids() == sorted({gone[-1], alive})
    assert registry.unregister_all() == 2 and registry.registered_tids() == []


def test_the_span_processor_flushes_nothing_and_says_so():
    processor = OpenCWSSpanProcessor()
    assert processor.force_flush() is True and opencws.tracing.installed()
    processor.shutdown()
    assert not opencws.tracing.installed()
