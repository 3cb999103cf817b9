"""Detection rules: YAML files loaded, checked and compiled once, each error located (file, line, rule, key,
and SECL's caret).

A file holds `rules:` (and, for its test cases, `templates:`); see docs/detection.md for the format. The
shipped rules (`rules/*.yaml` beside this module) load first; a directory given with `--detection-rules`
adds its files, and a file there named like a shipped one replaces it.
"""

from __future__ import annotations

import fnmatch
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import yaml

from opencws.backend.settings import SettingsError
from opencws.model.event import Event
from opencws.secl import CompiledRule, SeclError, compile_search
from opencws.secl.fields import Field
from opencws.secl.sql import SEARCH_REGISTRY

DEFAULT_DIR = Path(__file__).parent / "rules"
SEVERITIES = ("info", "low", "medium", "high", "critical")
ENVELOPE_FIELDS = ("host", "rule_id")  # what the agent's envelope adds: not SECL fields, usable in rules
_ID = re.compile(r"^[A-Za-z0-9_]+$")
_DURATION = re.compile(r"^([1-9][0-9]{0,9})(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RULE_KEYS = {
    "id", "title", "message", "severity", "condition", "group_by", "threshold", "new_value", "description",
    "tags", "tests",
}  # fmt: skip
MAX_THRESHOLD = 10_000
NS = 1_000_000_000


class RulesError(SettingsError):
    """Detection rule files the backend cannot use: every problem, one per line, located."""


@dataclass(frozen=True)
class Getter:
    """A value of the event for group-by fields, new values and templates: a SECL field or an envelope key."""

    name: str
    field: Field | None  # None: an envelope key (`host`, `rule_id`)

    def value(self, view: Event, envelope: dict[str, str]) -> Any:
        if self.field is None:
            return envelope.get(self.name, "")
        return self.field.getter(view)  # type: ignore[misc]

    def present(self, view: Event, envelope: dict[str, str]) -> bool:
        """Whether the event has the value (SECL reads a missing one as ""/0: templates show it as missing)."""
        if self.field is None:
            return bool(envelope.get(self.name))
        if self.field.source is not None:
            o: Any = view
            for attr in self.field.source[0]:
                o = (o.parent if o.parent is not None else (o.ancestors[0] if o.ancestors else None)) \
                    if attr == "@parent" else getattr(o, attr, None)  # fmt: skip
                if o is None:
                    return False
        v = self.value(view, envelope)
        return v is not None and v != "" and v != ()


@dataclass(frozen=True)
class Template:
    text: str
    parts: tuple[tuple[str, Getter | None], ...]  # (literal, field after it or None)

    def render(self, view: Event, envelope: dict[str, str]) -> str:
        out = []
        for literal, g in self.parts:
            out.append(literal)
            if g is None:
                continue
            if not g.present(view, envelope):
                out.append(f"<{g.name}: missing>")
                continue
            v = g.value(view, envelope)
            out.append(", ".join(map(str, v)) if isinstance(v, list | tuple) else str(v))
        return "".join(out)


@dataclass
class DetectionRule:
    id: str
    title: Template
    message: Template
    severity: str
    source: str  # file
    line: int
    expression: str | None = None
    compiled: CompiledRule | None = None
    rule_ids: tuple[str, ...] = ()  # agent rule ids (globs allowed); empty: any
    group_by: tuple[Getter, ...] = ()
    kind: str = "threshold"  # or "new_value"
    count: int = 1  # threshold
    window_ns: int = 3600 * NS  # threshold: the counting window; both kinds: how long a signal takes events
    value: Getter | None = None  # new_value: the field whose new values count
    learning_ns: int = 0  # new_value
    description: str = ""
    tags: dict[str, str] = dc_field(default_factory=dict)
    tests: list[dict[str, Any]] = dc_field(default_factory=list)

    def matches_rule_id(self, rule_id: str) -> bool:
        return not self.rule_ids or any(fnmatch.fnmatchcase(rule_id, p) for p in self.rule_ids)

    @property
    def condition(self) -> str:
        """The condition as one line of text (the API's `condition`)."""
        parts = []
        if self.rule_ids:
            parts.append(f"rule_id in [{', '.join(self.rule_ids)}]")
        if self.expression:
            parts.append(self.expression if not parts else f"({self.expression})")
        return " && ".join(parts)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "title": self.title.text, "message": self.message.text, "severity": self.severity,
            "condition": self.condition, "rule_ids": list(self.rule_ids), "expression": self.expression,
            "group_by": [g.name for g in self.group_by], "kind": self.kind, "window": _fmt(self.window_ns),
            "description": self.description, "tags": self.tags, "source": self.source,
        }  # fmt: skip
        if self.kind == "threshold":
            out["threshold"] = {"count": self.count, "window": _fmt(self.window_ns)}
        else:
            assert self.value is not None
            out["new_value"] = {
                "field": self.value.name,
                "learning": _fmt(self.learning_ns),
                "window": _fmt(self.window_ns),
            }
        return out


def _fmt(ns: int) -> str:
    s = ns // NS
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s % n == 0 and s >= n:
            return f"{s // n}{unit}"
    return f"{s}s"


# --- YAML with lines ------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Keeps each mapping's line and its keys' lines (1-based) for error locations; dates stay text."""


def _mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    m = yaml.SafeLoader.construct_mapping(loader, node, deep=True)
    m["__line__"] = node.start_mark.line + 1
    m["__lines__"] = {
        k.value: v.start_mark.line
        + 1
        + (1 if isinstance(v, yaml.ScalarNode) and v.style in ("|", ">") else 0)
        for k, v in node.value
        if isinstance(k, yaml.ScalarNode)
    }
    return m


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def strip_lines(value: Any) -> Any:
    """A loaded value without the line bookkeeping (for events of test cases)."""
    if isinstance(value, dict):
        return {k: strip_lines(v) for k, v in value.items() if k not in ("__line__", "__lines__")}
    if isinstance(value, list):
        return [strip_lines(v) for v in value]
    return value


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(
        self, where: str, line: int | None, msg: str, rule: str | None = None, key: str | None = None
    ) -> None:
        loc = f"{where}:{line}" if line else where
        ctx = "".join((f" rule {rule}" if rule else "", f" `{key}`" if key else ""))
        self.items.append(f"{loc}:{ctx}: {msg}" if ctx else f"{loc}: {msg}")

    def raise_any(self) -> None:
        if self.items:
            n = len(self.items)
            raise RulesError(f"{n} error{'s' * (n > 1)} in the detection rules:\n" + "\n".join(self.items))


def parse_duration(text: Any) -> int:
    """`30s`, `10m`, `1h`, `7d` → nanoseconds; ValueError otherwise."""
    m = _DURATION.match(str(text)) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"expected a duration such as 30s, 10m, 1h or 7d, got {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2)] * NS


def getter(name: Any) -> Getter:
    """The value named `name` (a SECL field with one value, or `host`/`rule_id`); ValueError otherwise."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"expected a field name, got {name!r}")
    if name in ENVELOPE_FIELDS:
        return Getter(name, None)
    f = SEARCH_REGISTRY.get(name)
    if f is None:
        hint = " (or host, rule_id: the agent's envelope)"
        raise ValueError(f"unknown field {name!r}{hint}")
    if f.multi:
        raise ValueError(f"{name!r} has several values per event: choose a field with one value")
    return Getter(name, f)


def template(text: Any) -> Template:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("expected a non-empty string")
    parts = []
    try:
        for literal, name, spec, conv in string.Formatter().parse(text):
            if name is None:
                parts.append((literal, None))
                continue
            if spec or conv:
                raise ValueError(
                    f"'{{{name}}}': formats and conversions are not supported (write '{{{name}}}')"
                )
            try:
                parts.append((literal, getter(name.strip())))
            except ValueError as e:
                raise ValueError(f"'{{{name}}}': {e}") from None
    except ValueError as e:
        if "'{" in str(e):
            raise
        raise ValueError(f"{e} (write '{{{{' and '}}}}' for literal braces)") from None
    return Template(text, tuple(parts))


# --- loading ---------------------------------------------------------------------------------------------


def rule_files(extra_dirs: Iterable[str | Path] = (), with_defaults: bool = True) -> list[Path]:
    """The shipped files, then each directory's `*.yaml` (a later file with the same name replaces)."""
    files: dict[str, Path] = {}
    dirs = ([DEFAULT_DIR] if with_defaults else []) + [Path(d) for d in extra_dirs]
    for d in dirs:
        if d.is_file():
            files[d.name] = d
            continue
        if not d.is_dir():
            raise RulesError(f"{d}: no such detection rules directory")
        for f in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
            files[f.name] = f
    return list(files.values())


def load_rules(extra_dirs: Iterable[str | Path] = (), with_defaults: bool = True) -> list[DetectionRule]:
    """Every rule of the files; RulesError listing every problem (nothing is half-loaded)."""
    problems = _Problems()
    rules: list[DetectionRule] = []
    seen: dict[str, str] = {}
    for path in rule_files(extra_dirs, with_defaults):
        for r in _load_file(path, problems):
            if r.id in seen:
                problems.add(r.source, r.line, f"duplicate rule id (first defined at {seen[r.id]})", r.id)
                continue
            seen[r.id] = f"{r.source}:{r.line}"
            rules.append(r)
    problems.raise_any()
    return rules


def load_file(path: str | Path) -> tuple[list[DetectionRule], dict[str, Any]]:
    """One file's rules and its test templates; RulesError on any problem."""
    problems = _Problems()
    templates: dict[str, Any] = {}
    rules = _load_file(Path(path), problems, templates)
    if problems.items:
        raise RulesError("\n".join(problems.items))
    return rules, templates


def _load_file(
    path: Path, problems: _Problems, templates: dict[str, Any] | None = None
) -> list[DetectionRule]:
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        problems.add(where, None, f"cannot read: {e.strerror or e}")
        return []
    except UnicodeDecodeError as e:
        problems.add(
            where, e.object.count(b"\n", 0, e.start) + 1, f"not UTF-8 text (byte at offset {e.start})"
        )
        return []
    return _load_text(text, where, problems, templates)


def load_text(text: str, where: str) -> list[DetectionRule]:
    """The rules of a file's text (`where` names it in errors); RulesError listing every problem."""
    problems = _Problems()
    rules = _load_text(text, where, problems)
    problems.raise_any()
    return rules


def _load_text(
    text: str, where: str, problems: _Problems, templates: dict[str, Any] | None = None
) -> list[DetectionRule]:
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problems.add(
            where, mark.line + 1 if mark else None, f"invalid YAML: {getattr(e, 'problem', None) or e}"
        )
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        problems.add(where, None, "a detection rule file is a mapping with a `rules` list")
        return []
    unknown = sorted(set(doc) - {"rules", "templates", "description", "__line__", "__lines__"})
    for k in unknown:
        problems.add(
            where, doc["__lines__"].get(k), f"unknown key `{k}` (expected rules, templates, description)"
        )
    if templates is not None and isinstance(doc.get("templates"), dict):
        templates.update(strip_lines(doc["templates"]))
    out = []
    for i, item in enumerate(doc["rules"]):
        if not isinstance(item, dict):
            problems.add(where, None, f"`rules` item {i + 1} must be a mapping")
            continue
        r = _rule(item, where, problems)
        if r is not None:
            out.append(r)
    return out


def _rule(item: dict[str, Any], where: str, problems: _Problems) -> DetectionRule | None:
    line, lines = item["__line__"], item["__lines__"]
    rid = item.get("id")
    before = len(problems.items)
    if not isinstance(rid, str) or not _ID.match(rid):
        problems.add(
            where, lines.get("id", line), f"invalid rule id {rid!r}: use letters, digits and '_'", key="id"
        )
        return None

    def bad(key: str, msg: str, at: int | None = None) -> None:
        problems.add(where, at or lines.get(key, line), msg, rid, key)

    for k in item:
        if k not in _RULE_KEYS and not str(k).startswith("__line"):
            bad(k, f"unknown key (expected {', '.join(sorted(_RULE_KEYS))})")
    for k in ("title", "message", "severity", "condition"):
        if k not in item:
            bad(k, "missing", line)
    compiled_templates = {}
    for k in ("title", "message"):
        if k in item:
            try:
                compiled_templates[k] = template(item[k])
            except ValueError as e:
                bad(k, str(e))
    severity = item.get("severity")
    if "severity" in item and severity not in SEVERITIES:
        bad("severity", f"{severity!r} is not a severity: choose among {', '.join(SEVERITIES)}")
    rule = DetectionRule(rid, compiled_templates.get("title"), compiled_templates.get("message"),  # type: ignore[arg-type]
                         str(severity), where, line)  # fmt: skip
    _condition(rule, item, bad, where, problems)
    group_by = item.get("group_by") or []
    if not isinstance(group_by, list):
        bad("group_by", "expected a list of fields")
        group_by = []
    gs = []
    for name in group_by:
        try:
            gs.append(getter(name))
        except ValueError as e:
            bad("group_by", str(e))
    rule.group_by = tuple(gs)
    _kind(rule, item, bad)
    rule.description = str(item.get("description") or "")
    tags = item.get("tags") or {}
    if not isinstance(tags, dict):
        bad("tags", "expected a mapping")
    else:
        rule.tags = {str(k): str(v) for k, v in strip_lines(tags).items()}
    tests = item.get("tests") or []
    if not isinstance(tests, list):
        bad("tests", "expected a list of cases")
    else:
        rule.tests = tests
    return rule if len(problems.items) == before else None


def _condition(rule: DetectionRule, item: dict[str, Any], bad: Callable[..., None], where: str,
               problems: _Problems) -> None:  # fmt: skip
    cond = item.get("condition")
    lines = item["__lines__"]
    expr, ids, expr_line = None, None, lines.get("condition")
    if isinstance(cond, str):
        expr = cond
    elif isinstance(cond, dict):
        for k in cond:
            if k not in ("expression", "rule_id", "__line__", "__lines__"):
                bad(
                    "condition", f"unknown key `{k}` (expected expression, rule_id)", cond["__lines__"].get(k)
                )
        expr, ids = cond.get("expression"), cond.get("rule_id")
        expr_line = cond["__lines__"].get("expression", expr_line)
        if expr is None and ids is None:
            bad("condition", "give `expression` (SECL) and/or `rule_id` (the agent rules that matched)")
        if expr is not None and not isinstance(expr, str):
            bad("condition", "`expression` must be a SECL expression (a string)", expr_line)
            expr = None
    elif "condition" in item:
        bad("condition", "expected a SECL expression or a mapping with `expression` and/or `rule_id`")
    if ids is not None:
        ids = [ids] if isinstance(ids, str) else ids
        if not isinstance(ids, list) or not ids or not all(isinstance(x, str) and x for x in ids):
            bad("condition", "`rule_id` must be a rule id or a list of them (globs allowed: credential_*)",
                cond["__lines__"].get("rule_id"))  # fmt: skip
        else:
            rule.rule_ids = tuple(ids)
    if expr is not None:
        try:
            rule.compiled = compile_search(expr, registry=SEARCH_REGISTRY)
            rule.expression = expr
        except SeclError as e:
            at = expr_line + (e.line or 1) - 1 if expr_line else None
            msg = e.message
            if e.pos is not None:
                msg += f"\n    {e.source_line}\n    {e.caret}"
            problems.add(where, at, msg, rule.id, "condition")


def _kind(rule: DetectionRule, item: dict[str, Any], bad: Callable[..., None]) -> None:
    th, nv = item.get("threshold"), item.get("new_value")
    if (th is None) == (nv is None):
        bad("threshold", "give either `threshold` ({count, window}) or `new_value` ({field, learning})",
            item["__line__"])  # fmt: skip
        return
    spec, key = (th, "threshold") if th is not None else (nv, "new_value")
    if not isinstance(spec, dict):
        bad(key, "expected a mapping")
        return
    allowed = {"count", "window"} if key == "threshold" else {"field", "learning", "window"}
    sl = spec["__lines__"]
    for k in spec:
        if k not in allowed and not str(k).startswith("__line"):
            bad(key, f"unknown key `{k}` (expected {', '.join(sorted(allowed))})", sl.get(k))
    try:
        rule.window_ns = parse_duration(spec.get("window", "1h"))
    except ValueError as e:
        bad(key, f"window: {e}", sl.get("window"))
    if key == "threshold":
        count = spec.get("count", 1)
        if type(count) is not int or not 1 <= count <= MAX_THRESHOLD:
            bad(key, f"count: expected an integer from 1 to {MAX_THRESHOLD}, got {count!r}", sl.get("count"))
        else:
            rule.count = count
        return
    rule.kind = "new_value"
    try:
        rule.value = getter(spec.get("field"))
    except ValueError as e:
        bad(key, f"field: {e}", sl.get("field"))
    try:
        rule.learning_ns = (
            parse_duration(spec.get("learning")) if spec.get("learning") not in (None, 0, "0") else 0
        )
    except ValueError as e:
        bad(key, f"learning: {e}", sl.get("learning"))
