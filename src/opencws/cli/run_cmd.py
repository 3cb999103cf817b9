"""`opencws run`: the main job.

Until the agent (resolvers, rule evaluation on enriched events, reporters) lands, the main job runs what
exists end to end on the real kernel: the default policy is loaded and checked, its in-kernel filters
(event types, approvers, discarders learned at run time) are pushed into the eBPF probe, and every kernel
event that passes them is printed as a JSON line. The per-type kernel counters are printed at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from opencws.model import jsontext
from opencws.secl.policies import DEFAULT_POLICY

HELP = "run the main job: the eBPF probe with the default policy's kernel filters, printing what passes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy", type=Path, action="append", help="policy file or directory (default: the default policy)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="stop after this many seconds (default: run until interrupted)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the summary, not each event")


def _summary(event) -> dict:
    out = {"type": event.type, "pid": event.pid, "comm": event.comm}
    for name in ("file", "retval", "child_pid", "exit_code"):
        value = getattr(event, name, None)
        if value is None:
            continue
        out[name] = value.path if name == "file" else value
    return out


def run(args: argparse.Namespace) -> int:
    from opencws.agent.filters import KernelFilters
    from opencws.probe import ProbeError
    from opencws.probe.probe import Probe
    from opencws.secl import load_policies

    policies = load_policies(args.policy or [DEFAULT_POLICY])
    for error in policies.errors:
        print(error, file=sys.stderr)
    print(f"opencws run: {len(policies.rules)} rules loaded, {len(policies.errors)} errors", file=sys.stderr)
    try:
        probe = Probe()
        probe.start()
    except ProbeError as exc:
        print(f"opencws run: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    shown = 0
    try:
        # Our own map updates are bpf() calls: the agent's activity never leaves the kernel.
        filters = KernelFilters(probe, policies, ignored_pids=[os.getpid()])
        enabled = ", ".join(sorted(filters.plan.event_types))
        print(f"opencws run: kernel events enabled: {enabled}; Ctrl-C to stop", file=sys.stderr)
        deadline = time.monotonic() + args.duration if args.duration else None
        out = sys.stdout.buffer
        while deadline is None or time.monotonic() < deadline:
            for event in probe.poll(100):
                filters.observe(event)
                shown += 1
                if not args.quiet:
                    out.write(jsontext.dumps(_summary(event)) + b"\n")
            out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        counters = probe.counters()
        probe.close()
        print(f"opencws run: {shown} events received", file=sys.stderr)
        for name, c in sorted(counters.items()):
            if c.seen:
                print(
                    f"  {name:<12} seen {c.seen:>9}  filtered {c.filtered:>9}  sent {c.sent:>9}  lost {c.lost:>6}",
                    file=sys.stderr,
                )
    return 0
