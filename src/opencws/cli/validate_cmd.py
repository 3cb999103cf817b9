"""`opencws validate`: check CWS events against the schema."""

from __future__ import annotations

import argparse
import sys
from typing import IO

from opencws.cli.args import positive_int
from opencws.schema.reader import MAX_EVENT_BYTES
from opencws.schema.validation import validate_stream

HELP = "validate CWS events (one JSON document, a JSON array, or JSON lines) against the event schema"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", nargs="?", default="-", help="file to read, or - for standard input (default)"
    )
    parser.add_argument(
        "--legacy", action="store_true", help="validate against the legacy schema (without bpf and dd)"
    )
    parser.add_argument(
        "--format",
        choices=["auto", "json", "jsonl", "array"],
        default="auto",
        help="input format (default: detected from the input)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the summary line")
    parser.add_argument(
        "--max-event-bytes", type=positive_int, default=MAX_EVENT_BYTES, help="largest event accepted (bytes)"
    )


def _open(path: str) -> IO[bytes]:
    return sys.stdin.buffer if path == "-" else open(path, "rb")


def run(args: argparse.Namespace) -> int:
    try:
        stream = _open(args.file)
    except OSError as e:
        print(f"opencws validate: cannot read {args.file}: {e.strerror}", file=sys.stderr)
        return 2
    valid = invalid = 0
    out = sys.stdout
    with stream:
        for verdict in validate_stream(
            stream, legacy=args.legacy, fmt=args.format, max_event_bytes=args.max_event_bytes
        ):
            if verdict.valid:
                valid += 1
                continue
            invalid += 1
            if args.quiet:
                continue
            if verdict.error is not None:
                out.write(f"{verdict.where}: {verdict.error}\n")
            for issue in verdict.issues:
                out.write(f"{verdict.where}: {issue}\n")
    out.write(f"{valid} valid, {invalid} invalid\n")
    return 1 if invalid else 0
