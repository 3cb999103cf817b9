"""`opencws rules test PATH...`: run rule test suites against the policy they name.

Prints one line per failing case with its reasons and ends with `N passed, M failed`. Exit 0 when every
case passes, 1 when one fails (or the policy has load errors), 2 when a suite is malformed (nothing runs
then).
Dispatched from `opencws rules` (rules_cmd.py), which owns the `rules` command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from opencws.secl.rulesuite import Suite, SuiteError, find_suites, load_suite

HELP = "run rule test suites (YAML: CWS events and the rules they must and must not trigger)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="suite files or directories of *.tests.yaml")
    parser.add_argument("--policy", metavar="PATH", help="policy file or directory (overrides `policy:`)")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print a line per passing case")
    parser.add_argument(
        "--coverage",
        action="store_true",
        help="also fail when a rule has no case where it fires or none that forbids it",
    )


class _Policies:
    """Loads each policy once, however many suites name it."""

    def __init__(self) -> None:
        self._cache: dict[Path, Any] = {}
        self.load_errors = 0

    def get(self, path: Path) -> Any:
        key = path.resolve()
        if key not in self._cache:
            from opencws.secl import RuleSet, load_policies

            policy_set = load_policies([key])
            for err in policy_set.errors:
                print(f"{path}: policy error: {err.format()}", file=sys.stderr)
            self.load_errors += len(policy_set.errors)
            rules = list(policy_set.rules)
            self._cache[key] = (RuleSet(rules), {r.id for r in rules}, rules)
        return self._cache[key]


def run(args: argparse.Namespace) -> int:
    try:
        files = find_suites([Path(p) for p in args.paths])
    except SuiteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    suites: list[Suite] = []
    malformed = 0
    for f in files:
        try:
            suites.append(load_suite(f))
        except SuiteError as e:
            print(f"error: {e}", file=sys.stderr)
            malformed += 1
    override = Path(args.policy) if args.policy else None
    if override is not None and not override.exists():
        print(f"error: {override}: no such policy", file=sys.stderr)
        return 2
    for s in suites:
        if override is None and s.policy is None:
            print(f"error: {s.path}: no policy: add a `policy:` key or pass --policy", file=sys.stderr)
            malformed += 1
        elif override is None and s.policy is not None and not s.policy.exists():
            print(f"error: {s.path}: policy {s.policy} does not exist", file=sys.stderr)
            malformed += 1
    if malformed:
        print(f"{malformed} malformed suite(s); no case was run", file=sys.stderr)
        return 2

    policies = _Policies()
    passed = failed = 0
    fired_in: dict[Path, set[str]] = {}
    quiet_in: dict[Path, set[str]] = {}
    for s in suites:
        policy_path = override or s.policy
        assert policy_path is not None
        ruleset, known, _ = policies.get(policy_path)
        key = policy_path.resolve()
        for case in s.cases:
            unknown = [r for r in case.expect + case.forbid if r not in known]
            reasons = [f"rule {r!r} is not in the policy" for r in unknown]
            try:
                fired = list(ruleset.match(case.event))
            except Exception as e:  # an engine bug must not hide the other cases
                fired = []
                reasons.append(f"evaluation error: {type(e).__name__}: {e}")
            reasons += case.check(fired)
            if reasons:
                failed += 1
                print(f"FAIL {s.path}: {case.name}: {'; '.join(reasons)}")
            else:
                passed += 1
                fired_in.setdefault(key, set()).update(case.expect)
                quiet_in.setdefault(key, set()).update(case.forbid)
                if args.verbose:
                    print(f"ok   {s.path}: {case.name}")
    if args.coverage:
        for key, (_, _, rules) in policies._cache.items():
            for r in rules:
                gaps = []
                if r.id not in fired_in.get(key, set()):
                    gaps.append("no passing case where it fires")
                if r.id not in quiet_in.get(key, set()):
                    gaps.append("no passing case that forbids it")
                if gaps:
                    failed += 1
                    print(f"FAIL {key}: coverage: rule {r.id!r}: {', '.join(gaps)}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or policies.load_errors else 0
