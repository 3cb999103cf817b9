"""`opencws schema`: the CWS event JSON Schema and its Markdown reference, generated from the model."""

from __future__ import annotations

import argparse
import json
import sys

from opencws.schema.docs import schema_docs
from opencws.schema.generate import event_schema

HELP = "print the CWS event JSON Schema or its Markdown reference, generated from the event model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    for name, text in (("json", "print the JSON Schema"), ("docs", "print the Markdown reference")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--legacy", action="store_true", help="the legacy schema (without bpf and dd)")


def run(args: argparse.Namespace) -> int:
    schema = event_schema(legacy=args.legacy)
    if args.what == "json":
        sys.stdout.write(json.dumps(schema, indent=2) + "\n")
    else:
        sys.stdout.write(schema_docs(schema))
    return 0
