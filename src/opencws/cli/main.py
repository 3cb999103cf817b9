"""Entry point of the `opencws` command.

Each subcommand lives in its own module exposing ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Exit codes: 0 success, 1 the command ran and found a problem, 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType

from opencws import __version__

# Modules are imported lazily so that `opencws schema json` does not pay for the probe or the rule engine.
COMMANDS: dict[str, tuple[str, str]] = {
    "agent": ("opencws.cli.agent_cmd", "run the agent (opencws agent run)"),
    "run": ("opencws.cli.run_cmd", "run the whole product: the backend and the agent reporting to it"),
    "schema": ("opencws.cli.schema_cmd", "print the CWS event JSON Schema or its documentation"),
    "validate": ("opencws.cli.validate_cmd", "validate CWS events against the schema"),
    "bench": ("opencws.cli.bench_cmd", "run benchmarks and print measured figures"),
    "rules": ("opencws.cli.rules_cmd", "check, evaluate and test SECL rules"),
    "probe": ("opencws.cli.probe_cmd", "debug the kernel probe: trace decoded kernel events, counters"),
    "backend": ("opencws.cli.backend_cmd", "run the backend (intake, storage, search) and manage its API keys"),
    "detection": ("opencws.cli.detection_cmd", "check detection rule files and run their test cases"),
}


def _load(module: str) -> ModuleType:
    return importlib.import_module(module)


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, ModuleType | None]:
    parser = argparse.ArgumentParser(prog="opencws", description="Open-source Cloud Workload Security.")
    parser.add_argument("--version", action="version", version=f"opencws {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    module = None
    for name, (modname, help_text) in COMMANDS.items():
        if name == chosen:
            module = _load(modname)
            p = sub.add_parser(name, help=module.HELP, description=module.HELP)
            module.add_arguments(p)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, module = build_parser(argv)
    args = parser.parse_args(argv)
    if module is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): the output is incomplete, so no verdict can be given.
        # Point stdout at /dev/null so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
