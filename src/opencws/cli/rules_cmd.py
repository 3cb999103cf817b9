"""`opencws rules`: check policies, evaluate rules against CWS events, run rule test suites.

opencws rules check PATH...                                  exit 1 on any error
opencws rules eval (--expr EXPR | --policy PATH) --event FILE exit 2 on a bad expression or event
opencws rules test PATH...                                   (opencws.cli.rules_test_cmd)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from opencws.cli import rules_test_cmd

HELP = "check, evaluate and test SECL rules"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")
    check = sub.add_parser("check", help="load and type-check policies", description=_check.__doc__)
    check.add_argument("paths", nargs="+", metavar="PATH", help="policy files or directories of *.policy")
    check.add_argument("-q", "--quiet", action="store_true", help="do not print warnings")
    check.add_argument(
        "-v", "--verbose", action="store_true", help="list every skipped rule with its place and reason"
    )
    check.set_defaults(rules_run=_check)

    ev = sub.add_parser(
        "eval", help="evaluate an expression or a policy against a CWS event", description=_eval.__doc__
    )
    what = ev.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--expr", metavar="EXPR", help="a SECL expression (naming no event type, it applies to every event)"
    )
    what.add_argument("--policy", metavar="PATH", help="a policy file or directory")
    ev.add_argument(
        "--event", required=True, metavar="FILE", help="a CWS event in JSON ('-' for standard input)"
    )
    ev.set_defaults(rules_run=_eval)

    test = sub.add_parser("test", help=rules_test_cmd.HELP, description=rules_test_cmd.HELP)
    rules_test_cmd.add_arguments(test)
    test.set_defaults(rules_run=rules_test_cmd.run)


def run(args: argparse.Namespace) -> int:
    fn = getattr(args, "rules_run", None)
    if fn is None:
        print("usage: opencws rules {check,eval,test} ... (see opencws rules --help)", file=sys.stderr)
        return 2
    return int(fn(args) or 0)


def _check(args: argparse.Namespace) -> int:
    """Load policies (files or directories of *.policy) and report, per policy file, how many rules loaded,
    how many were skipped (rules not meant for this platform, or needing what this agent does not see), grouped
    by reason, the actions accepted but not executed, and each error with its location and a caret under the
    offending token."""
    from opencws.secl import load_policies
    from opencws.secl.policy import summarize

    ps = load_policies(args.paths)
    for pf in ps.policies:
        n, k, m = len(pf.rules), len(pf.skipped), len(pf.errors)
        groups = summarize(pf.skipped)
        why = " (" + "; ".join(f"{sum(map(len, g.values()))} {name}" for name, g in groups.items()) + ")" if k else ""
        print(f"{pf.path}: {n} rule{'s' if n != 1 else ''} loaded, {k} skipped{why}, {m} error{'s' if m != 1 else ''}")
        for name, subjects in groups.items():
            print(f"  skipped, {name}:")
            for subject, ids in sorted(subjects.items(), key=lambda kv: (-len(kv[1]), kv[0])):
                print(f"    {len(ids):4}  {subject}" + ("" if args.verbose else f": {_ids(ids)}"))
                if args.verbose:
                    for s in pf.skipped:
                        if s.group == name and s.subject == subject:
                            print(f"          {s.format()}")
        for r in pf.rules:
            for a in r.not_executed:
                print(f"  action not executed: rule {r.id}: {a.kind} ({a.reason})")
        for e in pf.errors:
            print(_indent("error: " + e.format()))
        if not args.quiet:
            for w in pf.warnings:
                print(_indent("warning: " + w.format()))
    return 1 if ps.errors else 0


def _ids(ids: list[str], most: int = 4) -> str:
    return ", ".join(ids[:most]) + (f" and {len(ids) - most} more" if len(ids) > most else "")


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _read_events(path: str) -> list[object]:
    """The CWS event(s) of a JSON file: one event, or an array of events, each checked against the CWS event
    schema before it is decoded (a type-wrong field would crash or silently mis-evaluate)."""
    import orjson

    from opencws.model.codec import DecodeError, event_from_json
    from opencws.schema.validation import event_validator

    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON: {e}") from None
    docs = doc if isinstance(doc, list) else [doc]
    events = []
    validator = event_validator()
    for i, d in enumerate(docs):
        where = f"{path}[{i}]" if isinstance(doc, list) else path
        if not validator.is_valid(d):
            issues = validator.issues(d)
            listed = "; ".join(f"{x.pointer or '/'}: {x.reason}" for x in issues[:10])
            more = f" (and {len(issues) - 10} more)" if len(issues) > 10 else ""
            raise ValueError(f"{where}: not a CWS event: {listed}{more}")
        try:
            events.append(event_from_json(d))
        except (DecodeError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: not a CWS event: {e}") from None
    return events


def _eval(args: argparse.Namespace) -> int:
    """Evaluate an expression (prints true or false) or a policy (prints the ids of the matching rules,
    space-separated) against a CWS event in its JSON form; a file holding an array of events gives one
    line per event. The expression may name no event type (it then applies to every event): one naming an
    event type is false on events of other types."""
    from opencws.secl import RuleSet, SeclError, compile_search, load_policies

    rule = None
    if args.expr is not None:
        try:
            # A search expression: it may name no event type (then it applies to every event) or several.
            rule = compile_search(args.expr)
        except SeclError as e:
            print(f"error: {e.format()}", file=sys.stderr)
            return 2
        for w in rule.warnings:
            print(f"warning: {w.format()}", file=sys.stderr)
    try:
        events = _read_events(args.event)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if rule is not None:
        for event in events:
            print("true" if rule.evaluate(event) else "false")
        return 0
    if not Path(args.policy).exists():
        print(f"error: {args.policy}: no such file or directory", file=sys.stderr)
        return 2
    ps = load_policies([args.policy])
    for e in ps.errors:
        print(f"error: {e.format()}", file=sys.stderr)
    ruleset = RuleSet(ps.rules)
    for event in events:
        ids = ruleset.match(event)
        if len(events) == 1:
            for rid in ids:
                print(rid)
        else:
            print(" ".join(ids))
    return 1 if ps.errors else 0
