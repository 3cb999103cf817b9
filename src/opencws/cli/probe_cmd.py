"""`opencws probe trace`: print the kernel events the probe decodes, as JSON lines (a debugging tool)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

from opencws.model import jsontext

NAME = "probe"
HELP = "debug the kernel probe: print decoded kernel events as JSON lines, and its counters"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["trace"], help="trace: print events until interrupted")
    parser.add_argument("--types", default="", help="comma-separated event types to enable (default: all)")
    parser.add_argument("--pid", type=int, action="append", default=[], help="only events of these pids")
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds")
    parser.add_argument("--count", type=int, default=0, help="stop after this many events")
    parser.add_argument("--counters", action="store_true",
                        help="print the per-type kernel counters (seen, filtered, sent, lost) when stopping")
    parser.add_argument("--snapshot", action="store_true", help="first print the /proc snapshot of processes")
    parser.add_argument("--include-self", action="store_true", help="keep the probe's own bpf() activity")


def _line(obj: dict) -> None:
    sys.stdout.buffer.write(jsontext.dumps(obj) + b"\n")  # (kernel strings need not be UTF-8: see jsontext)


def run(args: argparse.Namespace) -> int:
    from opencws.probe.errors import ProbeError
    from opencws.probe.eventtypes import EventType
    from opencws.probe.probe import Probe

    try:
        types = [EventType.parse(t.strip()) for t in args.types.split(",") if t.strip()] or list(EventType)
    except ValueError as exc:
        print(f"opencws probe: {exc}", file=sys.stderr)
        return 2
    try:
        probe = Probe(event_types=types)
        probe.start()
    except ProbeError as exc:
        print(f"opencws probe: {exc}", file=sys.stderr)
        return 1
    try:
        if not args.include_self:
            probe.ignore_pid(os.getpid())
        if args.snapshot:
            from opencws.probe.procfs import snapshot

            for proc in snapshot():
                _line({"type": "snapshot", **dataclasses.asdict(proc)})
        pids = set(args.pid)
        shown = 0
        deadline = time.monotonic() + args.duration if args.duration else None
        try:
            while deadline is None or time.monotonic() < deadline:
                for event in probe.poll(100):
                    if pids and event.pid not in pids:
                        continue
                    fields = dataclasses.asdict(event)
                    fields.pop("_raw", None)
                    _line({"type": event.type, **fields})
                    shown += 1
                    if args.count and shown >= args.count:
                        return 0
                sys.stdout.flush()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        if args.counters:
            counters = {name: dataclasses.asdict(c) for name, c in probe.counters().items()}
            _line({"type": "counters", "counters": counters, "decode_errors": probe.decode_errors})
        sys.stdout.flush()
        probe.close()
