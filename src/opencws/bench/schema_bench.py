"""Benchmark of the event schema path: validation of a typical event mix and serialization."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import random
import time
from collections.abc import Callable
from typing import Any

import orjson

from opencws.bench.timing import best_rate, line
from opencws.cli.args import positive_int
from opencws.model.codec import serialize, to_dict
from opencws.model.event import Event
from opencws.model.examples import exec_event, open_event
from opencws.schema.validation import event_validator

OPEN_PATHS = ["/etc/passwd", "/etc/ld.so.cache", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/tmp/build.log"]


def typical_mix(n: int, seed: int = 7) -> list[bytes]:
    """`n` serialized events: 70% opens (3 ancestors), 30% execs (5 ancestors), all valid."""
    rng = random.Random(seed)
    samples = [serialize(open_event(p)) for p in OPEN_PATHS] + [serialize(exec_event(5))]
    weights = [0.175] * len(OPEN_PATHS) + [0.3]
    return rng.choices(samples, weights, k=n)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events", type=positive_int, default=20_000, help="events per round (default 20000)"
    )


def run(args: argparse.Namespace) -> int:
    n = args.events
    lines = typical_mix(n)
    validator = event_validator()
    docs = [orjson.loads(x) for x in lines]
    assert all(validator.is_valid(d) for d in docs), "the benchmark mix must be valid"

    print(
        f"Schema validation: typical mix of {n} events (70% open/3 ancestors, 30% exec/5 ancestors), one core"
    )
    # Inputs live for the whole run: keep the cyclic garbage collector from rescanning them on every pass
    # (a streaming `opencws validate` holds one event at a time). Results are not accumulated either.
    gc.freeze()
    loads, is_valid = orjson.loads, validator.is_valid
    parse = best_rate(lambda: _each(loads, lines), n)
    check = best_rate(lambda: _each(is_valid, docs), n)
    both = best_rate(lambda: _each(lambda x: is_valid(loads(x)), lines), n)
    print(line("baseline: JSON parsing alone (orjson)", parse))
    print(line("validation alone (opencws.schema.validator, jsonschema-rs)", check, parse))
    print(line("parse + validate (what `opencws validate` does)", both, parse))
    try:
        from jsonschema import Draft7Validator
    except ImportError:
        pass
    else:
        from opencws.schema.generate import event_schema

        ref = Draft7Validator(event_schema(), format_checker=Draft7Validator.FORMAT_CHECKER)
        few = docs[:500]
        rate = best_rate(lambda: [ref.is_valid(d) for d in few], len(few), rounds=2)
        print(line("reference: jsonschema Draft7Validator", rate, parse))
        print(f"  opencws validator vs the jsonschema package: {check / rate:.0f}x faster")

    print("Serialization: exec event with 5 ancestors, one core, CPU time")
    m = min(n, 3000)
    dicts = [to_dict(e) for e in (exec_event(5) for _ in range(m))]
    base = best_rate(lambda: _each(orjson.dumps, dicts), m)
    print(line("baseline: orjson.dumps of the equivalent plain dict", base))
    # Each round serializes events never serialized before (frozen values keep their JSON).
    cold = _best_first_pass(lambda: [exec_event(5) for _ in range(m)])
    steady = _best_first_pass(lambda: _events_sharing_ancestors(m))
    print(line("cold: every file, credential and process entry new", cold, base))
    print(line("steady state: new process entry, known ancestors/binary/creds", steady, base))
    return 0


def _each(fn: Callable[[Any], Any], items: list[Any]) -> None:
    for x in items:
        fn(x)


def _best_first_pass(make: Callable[[], list[Event]], rounds: int = 5) -> float:
    """Best serialization rate over `rounds` fresh batches of events, each serialized once."""
    best = 0.0
    for _ in range(rounds):
        events = make()
        gc.collect()
        start = time.thread_time()
        for e in events:
            serialize(e)
        best = max(best, len(events) / max(time.thread_time() - start, 1e-9))
    return best


def _events_sharing_ancestors(m: int) -> list[Event]:
    """Exec events as an agent in steady state builds them: each a new process entry; its ancestors,
    credentials and executable are values the agent has already seen (process and file caches)."""
    template = exec_event(5)
    proc = template.process
    out = []
    for i in range(m):
        e = exec_event(0)
        e.process = dataclasses.replace(proc, pid=5000 + i, tid=5000 + i)
        out.append(e)
    return out
