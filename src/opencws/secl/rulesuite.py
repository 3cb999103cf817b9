"""Rule test suites: YAML files of CWS events and the rules each must and must not trigger.

The format (documented in docs/policy.md)::

    policy: default.policy          # optional, relative to this file (or `opencws rules test --policy`)
    definitions: {...}              # optional, ignored: a place for YAML anchors shared by the cases
    templates:                      # optional: named partial events that cases extend
      host_exec: {evt: {name: exec}, process: {...}}
    cases:
      - name: cat reads /etc/shadow # unique within the file
        extends: [host_exec]        # optional: template name or list, deep-merged in order
        event: {file: {...}}        # CWS event JSON, deep-merged over the templates
        expect: [credential_shadow_read]   # rules that must fire
        forbid: [some_rule]         # optional: rules that must not fire
        exact: true                 # optional (default true): no rule outside `expect` may fire

Deep merge: mappings merge key by key, any other value replaces, and `null` removes the key. When
`process.parent` is omitted it is set to `process.ancestors[0]`, the same entry by convention. Loading is
separate from running so that a malformed suite is reported (file, case, what is wrong) before any rule runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from opencws.model.codec import DecodeError, event_from_json
from opencws.model.event import Event
from opencws.secl.policy import not_utf8_message

SUITE_GLOBS = ("*.tests.yaml", "*.tests.yml")
_SUITE_KEYS = {"policy", "definitions", "templates", "cases", "description"}
_CASE_KEYS = {"name", "description", "extends", "event", "expect", "forbid", "exact"}


class _SuiteLoader(yaml.SafeLoader):
    """YAML without the timestamp type: an unquoted `2025-11-21T17:55:02Z` stays the string it is in the
    event's JSON form (the schema then checks it)."""


_SuiteLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


class SuiteError(ValueError):
    """A malformed suite; the message names the file and, when known, the case."""


@dataclass
class Case:
    name: str
    event_json: dict[str, Any]
    event: Event
    expect: list[str]
    forbid: list[str] = field(default_factory=list)
    exact: bool = True
    description: str = ""

    def check(self, fired: list[str]) -> list[str]:
        """The reasons this case fails given the rules that fired (empty when it passes)."""
        fired_set = set(fired)
        reasons = [f"rule {r!r} did not fire" for r in self.expect if r not in fired_set]
        for r in sorted(fired_set):
            if r in self.forbid:
                reasons.append(f"rule {r!r} fired but is forbidden")
            elif self.exact and r not in self.expect:
                reasons.append(f"rule {r!r} fired unexpectedly")
        return reasons


@dataclass
class Suite:
    path: Path
    policy: Path | None
    cases: list[Case]
    description: str = ""


def deep_merge(base: Any, over: Any) -> Any:
    """`over` merged onto `base`: mappings key by key, anything else replaces; None removes the key."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        return over
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif k in out:
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def _with_parent(event: dict[str, Any]) -> dict[str, Any]:
    """Fill `process.parent` with `process.ancestors[0]` (the same entry by convention) when it is omitted."""
    proc = event.get("process")
    if isinstance(proc, dict) and "parent" not in proc:
        ancestors = proc.get("ancestors")
        if isinstance(ancestors, list) and ancestors:
            event = {**event, "process": {**proc, "parent": ancestors[0]}}
    return event


def _id_list(value: Any, where: str, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
        raise SuiteError(f"{where}: `{key}` must be a list of rule ids")
    return list(value)


def _load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SuiteError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        line = e.object.count(b"\n", 0, e.start) + 1
        raise SuiteError(f"{path}:{line}: cannot read: {not_utf8_message(e)}") from None
    try:
        return yaml.load(text, Loader=_SuiteLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise SuiteError(f"{path}{at}: invalid YAML: {problem}") from None


def load_suite(path: Path) -> Suite:
    """Parse and check one suite file; raises SuiteError naming the file and case on any problem."""
    doc = _load_yaml(path)
    if not isinstance(doc, dict):
        raise SuiteError(f"{path}: a suite is a mapping with a `cases` list")
    unknown = sorted(set(doc) - _SUITE_KEYS)
    if unknown:
        keys = ", ".join(map(repr, unknown))
        raise SuiteError(f"{path}: unknown key(s) {keys} (expected {', '.join(sorted(_SUITE_KEYS))})")
    policy = doc.get("policy")
    if policy is not None and (not isinstance(policy, str) or not policy):
        raise SuiteError(f"{path}: `policy` must be a path relative to the suite file")
    templates = doc.get("templates") or {}
    if not isinstance(templates, dict) or not all(isinstance(v, dict) for v in templates.values()):
        raise SuiteError(f"{path}: `templates` must map names to partial events (mappings)")
    raw_cases = doc.get("cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise SuiteError(f"{path}: `cases` must be a non-empty list")
    cases: list[Case] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_cases):
        cases.append(_load_case(path, i, raw, templates, seen))
    return Suite(
        path=path,
        policy=(path.parent / policy) if policy else None,
        cases=cases,
        description=str(doc.get("description") or ""),
    )


def _load_case(path: Path, index: int, raw: Any, templates: dict[str, Any], seen: set[str]) -> Case:
    where = f"{path}: case #{index + 1}"
    if not isinstance(raw, dict):
        raise SuiteError(f"{where}: a case is a mapping with `name`, `event` and `expect`")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SuiteError(f"{where}: `name` is missing or not a string")
    where = f"{path}: case {name!r}"
    if name in seen:
        raise SuiteError(f"{where}: duplicate case name")
    seen.add(name)
    unknown = sorted(set(raw) - _CASE_KEYS)
    if unknown:
        keys = ", ".join(map(repr, unknown))
        raise SuiteError(f"{where}: unknown key(s) {keys} (expected {', '.join(sorted(_CASE_KEYS))})")
    if "expect" not in raw:
        raise SuiteError(f"{where}: `expect` is missing (use `expect: []` for a case where no rule may fire)")
    expect = _id_list(raw["expect"], where, "expect")
    forbid = _id_list(raw.get("forbid"), where, "forbid")
    both = sorted(set(expect) & set(forbid))
    if both:
        raise SuiteError(f"{where}: rule(s) {', '.join(both)} both expected and forbidden")
    exact = raw.get("exact", True)
    if not isinstance(exact, bool):
        raise SuiteError(f"{where}: `exact` must be true or false")
    extends = raw.get("extends") or []
    if isinstance(extends, str):
        extends = [extends]
    if not isinstance(extends, list) or not all(isinstance(x, str) for x in extends):
        raise SuiteError(f"{where}: `extends` must be a template name or a list of them")
    event_over = raw.get("event")
    if event_over is None and not extends:
        raise SuiteError(f"{where}: `event` is missing")
    if event_over is not None and not isinstance(event_over, dict):
        raise SuiteError(f"{where}: `event` must be a mapping (a CWS event in its JSON form)")
    merged: Any = {}
    for t in extends:
        if t not in templates:
            defined = ", ".join(sorted(templates)) or "none"
            raise SuiteError(f"{where}: unknown template {t!r} (defined: {defined})")
        merged = deep_merge(merged, templates[t])
    merged = _with_parent(_strip_nulls(deep_merge(merged, event_over or {})))
    issues = _schema_issues(merged)
    if issues:
        raise SuiteError(f"{where}: event does not match the CWS event schema: {'; '.join(issues)}")
    try:
        event = event_from_json(merged)
    except DecodeError as e:
        raise SuiteError(f"{where}: invalid event: {e}") from None
    except (TypeError, ValueError) as e:
        raise SuiteError(f"{where}: invalid event: {e}") from None
    return Case(
        name=name,
        event_json=merged,
        event=event,
        expect=expect,
        forbid=forbid,
        exact=exact,
        description=str(raw.get("description") or ""),
    )


def _schema_issues(doc: dict[str, Any]) -> list[str]:
    from opencws.schema.validation import event_validator

    validator = event_validator()
    if validator.is_valid(doc):
        return []
    return [str(i) for i in validator.issues(doc)[:5]]


def find_suites(paths: list[Path]) -> list[Path]:
    """Suite files named on the command line: files as given, directories searched for `*.tests.yaml`."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            hits = sorted({f for g in SUITE_GLOBS for f in p.rglob(g) if f.is_file()})
            if not hits:
                raise SuiteError(f"{p}: no rule test suite (*.tests.yaml) in this directory")
            found += hits
        elif p.exists():
            found.append(p)
        else:
            raise SuiteError(f"{p}: no such file or directory")
    return found
