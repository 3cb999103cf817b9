"""`opencws detection`: check detection rule files and run their test cases."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "check detection rule files (the backend's) and run their test cases"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="detection_command", metavar="COMMAND", required=True)
    c = sub.add_parser("check", help="load the shipped rules and these files or directories, report errors")
    c.add_argument("paths", nargs="*", help="rule files or directories (as --detection-rules takes them)")
    t = sub.add_parser("test", help="run the test cases of rule files (default: the shipped rules)")
    t.add_argument("paths", nargs="*", help="rule files or directories")
    t.add_argument("-v", "--verbose", action="store_true", help="also list the passing cases")


def run(args: argparse.Namespace) -> int:
    from opencws.backend.detection.rules import DEFAULT_DIR, RulesError, load_rules

    if args.detection_command == "check":
        try:
            rules = load_rules(args.paths)
        except RulesError as e:
            print(e, file=sys.stderr)
            return 1
        print(f"{len(rules)} detection rules loaded, 0 errors")
        return 0
    files: list[Path] = []
    for p in [Path(x) for x in args.paths] or [DEFAULT_DIR]:
        files += sorted([*p.glob("*.yaml"), *p.glob("*.yml")]) if p.is_dir() else [p]
    return _test(files, args.verbose)


def _test(files: list[Path], verbose: bool) -> int:
    from opencws.backend.detection.rules import RulesError
    from opencws.backend.detection.suite import run_file

    passed = failed = 0
    for f in files:
        try:
            results = run_file(f)
        except RulesError as e:
            print(e, file=sys.stderr)
            return 2
        for r in results:
            if r.failures:
                failed += 1
                print(f"FAIL {f}: {r.rule}: {r.name}: {'; '.join(r.failures)}")
            else:
                passed += 1
                if verbose:
                    print(f"ok   {f}: {r.rule}: {r.name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
