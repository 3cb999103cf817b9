"""`opencws bench`: benchmarks that print measured figures and ratios against an in-run baseline.

Each benchmark is a module with `add_arguments(parser)` and `run(args) -> int`; add one with a line in
BENCHMARKS.
"""

from __future__ import annotations

import argparse
import importlib

HELP = "run a benchmark and print measured figures with ratios against a baseline run in the same invocation"

BENCHMARKS: dict[str, tuple[str, str]] = {
    "schema": ("opencws.bench.schema_bench", "event validation and serialization"),
    "probe": ("opencws.bench.probe_bench", "kernel probe overhead (open/close, fork+exec) and reader decode rate"),
    "secl": ("opencws.bench.secl_bench", "SECL evaluation of the default policy against a realistic event mix"),
    "agent": ("opencws.bench.agent_bench", "the whole agent: end-to-end events/s, sustained rate, overhead on the "
                                           "workload, memory with 20,000 processes"),
    "tracing": ("opencws.bench.tracing_bench", "what opencws.tracing adds to an application's spans (vs the "
                                               "OpenTelemetry SDK alone)"),
    "backend": ("opencws.bench.backend_bench", "backend intake throughput and search latency (chdb or ClickHouse)"),
    "reporter": ("opencws.bench.reporter_bench", "the HTTP reporter: its cost on the pipeline's thread, zstd and "
                                                 "gzip (both sides), and events/s to a real backend"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (module, text) in BENCHMARKS.items():
        p = sub.add_parser(name, help=text, description=text)
        p.set_defaults(_bench_module=module)
        importlib.import_module(module).add_arguments(p)


def run(args: argparse.Namespace) -> int:
    return importlib.import_module(args._bench_module).run(args)
