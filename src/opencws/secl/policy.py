"""Policies: Datadog `.policy` YAML files (version, macros, rules) loaded into rules and macros.

A directory loads its `*.policy` files in name order, all macros first. A bad rule or macro is reported
(with file, id, line and column) and skipped; the others keep working. Duplicate ids are errors, except a
macro redefined with `combine: merge` (values added) or `combine: override` (replaced) by a later file, and a
rule redefined later with `combine: override` (the keys its `override_options.fields` name replace the
first definition's: the expression when it names none) or with `disabled: true` (the rule is turned off), as
Datadog's agent merges a custom policy over its default one.

Rules not meant for this platform are *skipped* with the reason, not errors (as Datadog's agent selects
them): a false `filters` expression or an `agent_version` that excludes the version this engine implements
(`opencws.secl.platform`), an event type the probe does not produce, a field the agent cannot know. Rule
`actions` declare variables (`set`, run by the rule set on a match) or are listed as not executed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from opencws.secl import ast
from opencws.secl.actions import (
    ActionError,
    SetAction,
    SetSpec,
    Skipped,
    compile_set,
    declare,
    parse_actions,
    parse_duration,
)
from opencws.secl.compiler import CompiledRule, Macro, check_macro, compile_parsed, compile_value
from opencws.secl.errors import SeclError, Unsupported
from opencws.secl.fields import UNSUPPORTED_EVENT_TYPES
from opencws.secl.parser import parse
from opencws.secl.platform import Platform, check_filters, version_satisfies
from opencws.secl.variables import VariableTable

_ID = re.compile(r"^[A-Za-z0-9_]+$")
_MACRO_KEYS = {"id", "expression", "values", "description", "agent_version", "filters", "combine"}
_RULE_KEYS = {
    "id", "version", "expression", "description", "tags", "disabled", "agent_version", "filters", "combine",
    "actions", "every", "silent", "group_id", "priority", "policy", "product_tags", "override_options",
}  # fmt: skip
_IGNORED = {"group_id", "priority", "policy", "product_tags"}  # fmt: skip
# What a `combine: override` may replace (`override_options.fields`), as Datadog names them.
_OVERRIDABLE = {"expression", "actions", "every", "tags", "product_tags"}


@dataclass
class Rule:
    id: str
    expression: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    event_type: str | None = None
    source: str | None = None
    version: str | None = None
    disabled: bool = False
    line: int | None = None  # line of the expression in the source file
    compiled: CompiledRule | None = None
    macros: dict[str, Macro] | None = None
    silent: bool = False  # runs its actions, raises no alert
    actions: list[SetAction] = field(default_factory=list)  # run by the rule set when the rule matches
    not_executed: list[Skipped] = field(default_factory=list)  # actions accepted and not executed
    every: int | None = None  # ns: at most one alert per this interval (the agent's rate limit), None: default

    def evaluate(self, event: Any) -> bool:
        return self.compiled is not None and self.compiled.evaluate(event)


@dataclass
class Skip:
    """A rule left out on purpose: `group` is the kind of reason, `subject` what it is about."""

    rule_id: str
    group: str  # "filter", "agent version", "event type not supported", "field the agent cannot know"
    subject: str  # the filter, the constraint, the event type, the field
    message: str
    file: str
    line: int | None = None  # 1-based

    def format(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}, rule {self.rule_id}: {self.message}"


@dataclass
class PolicyFile:
    path: str
    version: str | None = None
    rules: list[Rule] = field(default_factory=list)
    macros: list[str] = field(default_factory=list)
    errors: list[SeclError] = field(default_factory=list)
    warnings: list[SeclError] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)


@dataclass
class PolicySet:
    rules: list[Rule] = field(default_factory=list)
    macros: dict[str, Macro] = field(default_factory=dict)
    errors: list[SeclError] = field(default_factory=list)
    warnings: list[SeclError] = field(default_factory=list)
    policies: list[PolicyFile] = field(default_factory=list)
    invalid_macros: set[str] = field(default_factory=set)  # ids of macros skipped for an error
    skipped: list[Skip] = field(default_factory=list)
    variables: VariableTable = field(default_factory=VariableTable)

    def skip_summary(self) -> dict[str, dict[str, list[str]]]:
        """Skipped rule ids by reason: {group: {subject: [rule ids]}}."""
        return summarize(self.skipped)

    def not_executed(self) -> dict[str, list[str]]:
        """Rule ids by kind of action accepted and not executed (`kill`, `hash`...)."""
        out: dict[str, list[str]] = {}
        for r in self.rules:
            for a in r.not_executed:
                out.setdefault(a.kind, []).append(r.id)
        return out


def summarize(skipped: list[Skip]) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for s in skipped:
        out.setdefault(s.group, {}).setdefault(s.subject, []).append(s.rule_id)
    return out


class _Loader(yaml.SafeLoader):
    """Keeps the line (0-based) and style of each mapping value, for error locations. Timestamps stay
    strings (their text), as the other values of a policy."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=True)
    marks = {}
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            block = isinstance(value_node, yaml.ScalarNode) and value_node.style in ("|", ">")
            marks[key_node.value] = value_node.start_mark.line + (1 if block else 0)
    mapping["__lines__"] = marks
    mapping["__line__"] = node.start_mark.line
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def not_utf8_message(e: UnicodeDecodeError) -> str:
    """A precise message for a file that is not UTF-8 text."""
    bad = e.object[e.start : e.start + 1].hex()
    return f"not UTF-8 text: byte 0x{bad} at offset {e.start} cannot be decoded"


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; directories → their `*.policy` files in name order."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(q for q in p.glob("*.policy") if q.is_file())
            # An empty directory stays in the list so that the loader reports it.
            out.extend(found or [p])
        else:
            out.append(p)
    return out


def _err(
    msg: str, file: str, line: int | None = None, *, rule_id: str | None = None, kind: str = "policy"
) -> SeclError:
    e = SeclError(msg, file=file, rule_id=rule_id, kind=kind)
    e.file_line = line + 1 if line is not None else None
    return e


def _locate(e: SeclError, file: str, item_id: str, kind: str, base_line: int | None) -> SeclError:
    e.located(file=file, rule_id=item_id, kind=kind)
    if base_line is not None and e.line is not None:
        e.file_line = base_line + e.line
    return e


def _read(path: Path, pf: PolicyFile) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        pf.errors.append(_err(f"cannot read the policy: {e.strerror or e}", str(path)))
        return None
    except UnicodeDecodeError as e:
        line = e.object.count(b"\n", 0, e.start)
        pf.errors.append(_err(f"cannot read the policy: {not_utf8_message(e)}", str(path), line))
        return None
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line if mark is not None else None
        pf.errors.append(_err(f"invalid YAML: {getattr(e, 'problem', None) or e}", str(path), line))
        return None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        pf.errors.append(_err("a policy must be a mapping with `macros` and `rules`", str(path)))
        return None
    return doc


def _items(doc: dict[str, Any], key: str, pf: PolicyFile) -> list[dict[str, Any]]:
    items = doc.get(key) or []
    if not isinstance(items, list):
        pf.errors.append(_err(f"`{key}` must be a list", pf.path, doc.get("__lines__", {}).get(key)))
        return []
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            pf.errors.append(_err(f"`{key}` item {i + 1} must be a mapping", pf.path))
            continue
        out.append(item)
    return out


def _text(item: dict[str, Any], key: str) -> str | None:
    v = item.get(key)
    if v is None:
        return None
    return v if isinstance(v, str) else str(v)


def load_policies(paths: Iterable[str | Path], *, platform: Platform | None = None) -> PolicySet:
    """Load policy files and directories; problems are collected in `errors`, never raised. `platform`: the
    facts `filters` and `agent_version` are checked against (this machine by default)."""
    ps = PolicySet()
    plat = platform or _current_platform()
    docs: list[tuple[PolicyFile, dict[str, Any]]] = []
    for path in expand_paths(paths):
        pf = PolicyFile(str(path))
        ps.policies.append(pf)
        if not path.exists():
            pf.errors.append(_err("no such file or directory", str(path)))
            continue
        if path.is_dir():
            pf.errors.append(_err("no *.policy file in this directory", str(path)))
            continue
        doc = _read(path, pf)
        if doc is None:
            continue
        pf.version = _text(doc, "version")
        docs.append((pf, doc))

    # Macros first, from every file, so that rules may use macros of any file.
    macro_lines: dict[str, tuple[PolicyFile, int | None, str]] = {}
    for pf, doc in docs:
        for item in _items(doc, "macros", pf):
            if _selected(pf, item, plat, "macro") is True:
                _add_macro(ps, pf, item, macro_lines)
    for mid, macro in list(ps.macros.items()):
        pf, base, _ = macro_lines[mid]
        warnings: list[SeclError] = []
        try:
            check_macro(macro, ps.macros, warnings=warnings)
            pf.warnings.extend(_locate(w, pf.path, mid, "macro", base) for w in warnings)
        except Unsupported:
            pass  # valid, but about what this agent does not see: the rules using it are skipped
        except SeclError as e:
            _blame_invalid_macro(e, ps.invalid_macros)
            pf.errors.append(_locate(e, pf.path, mid, "macro", base))
            ps.invalid_macros.add(mid)
            del ps.macros[mid]
            pf.macros.remove(mid)

    selected: list[tuple[PolicyFile, dict[str, Any], _Actions]] = []
    for pf, item in _combined_rules(docs, plat):
        actions = _rule_actions(ps, pf, item)
        if actions is not None:
            selected.append((pf, item, actions))
    _type_variables(ps, [a.sets for _, _, a in selected])
    for pf, item, actions in selected:
        _add_rule(ps, pf, item, actions)

    for pf in ps.policies:
        pf.errors.sort(key=lambda e: e.file_line or 0)  # in file order (rules are selected, then compiled)
        ps.errors.extend(pf.errors)
        ps.warnings.extend(pf.warnings)
        ps.skipped.extend(pf.skipped)
    return ps


_PLATFORM: Platform | None = None


def _current_platform() -> Platform:
    global _PLATFORM
    if _PLATFORM is None:
        _PLATFORM = Platform.current()
    return _PLATFORM


def _selected(pf: PolicyFile, item: dict[str, Any], plat: Platform, kind: str) -> bool | Skip | None:
    """True when the item's `filters` and `agent_version` select it on `plat`, a Skip when they do not, None
    when they are malformed (the error reported)."""
    item_id = _text(item, "id") or "?"
    line = item.get("__line__")
    lines = item.get("__lines__", {})
    try:
        failed = check_filters(item.get("filters"), plat)
    except SeclError as e:
        pf.errors.append(_locate(e, pf.path, item_id, kind, lines.get("filters", line)))
        return None
    except ValueError as e:
        pf.errors.append(_err(str(e), pf.path, lines.get("filters", line), rule_id=item_id, kind=kind))
        return None
    if failed is not None:
        return Skip(item_id, "filter", failed, f"filter {failed!r} is false on this platform",
                    pf.path, line + 1 if line is not None else None)  # fmt: skip
    constraint = _text(item, "agent_version")
    if constraint is not None:
        try:
            ok = version_satisfies(plat.agent_version, constraint)
        except ValueError as e:
            pf.errors.append(_err(str(e), pf.path, lines.get("agent_version", line), rule_id=item_id, kind=kind))
            return None
        if not ok:
            msg = (f"agent_version {constraint!r} excludes {plat.agent_version}, the Datadog agent version "
                   "this engine implements")
            return Skip(item_id, "agent version", constraint, msg, pf.path, line + 1 if line is not None else None)
    return True


@dataclass
class _Actions:
    """A selected rule's actions as written: its `set`s (variables declared) and those not executed."""

    sets: list[SetSpec] = field(default_factory=list)
    not_executed: list[Skipped] = field(default_factory=list)


def _combined_rules(
    docs: list[tuple[PolicyFile, dict[str, Any]]], plat: Platform
) -> list[tuple[PolicyFile, dict[str, Any]]]:
    """The rules selected for `plat`, in order, each one definition: a later definition of the same id is
    combined into the first (`combine: override`, `disabled: true`) or is a duplicate (an error)."""
    out: list[list[Any]] = []  # [file of the expression, merged item, where first defined]
    by_id: dict[str, list[Any]] = {}
    for pf, doc in docs:
        for item in _items(doc, "rules", pf):
            rid = _checked_id(pf, item, _RULE_KEYS, "rule")
            if rid is None:
                continue
            sel = _selected(pf, item, plat, "rule")
            if isinstance(sel, Skip):
                pf.skipped.append(sel)
                continue
            if sel is None:
                continue
            line = item.get("__line__")
            first = by_id.get(rid)
            if first is None:
                where = f"{pf.path}:{line + 1}" if line is not None else pf.path
                by_id[rid] = [pf, item, where]
                out.append(by_id[rid])
                continue
            combine = _text(item, "combine")
            if combine == "override":
                try:
                    fields = _override_fields(item)
                except ValueError as e:
                    pf.errors.append(_err(str(e), pf.path, line, rule_id=rid, kind="rule"))
                    continue
                merged = dict(first[1])
                lines = dict(merged.get("__lines__", {}))
                for key in fields:
                    if key in item:
                        merged[key] = item[key]
                        lines[key] = item.get("__lines__", {}).get(key, line)
                    elif key != "expression":
                        merged.pop(key, None)
                merged["__lines__"] = lines
                merged["disabled"] = item.get("disabled", False)
                if "expression" in fields and "expression" in item:
                    first[0] = pf  # errors in the expression are located in the file that wrote it
                first[1] = merged
            elif combine is None and item.get("disabled"):
                first[1] = {**first[1], "disabled": True}
            else:
                msg = (f"duplicate rule id '{rid}' (redefine it with `combine: override`, or turn it off with "
                       f"`disabled: true`; first defined in {first[2]})")
                if combine not in (None, "override"):
                    msg = f"`combine` of a rule must be 'override', not {combine!r}"
                pf.errors.append(_err(msg, pf.path, line, rule_id=rid, kind="rule"))
    return [(pf, item) for pf, item, _ in out]


def _override_fields(item: dict[str, Any]) -> set[str]:
    """The keys a `combine: override` replaces: its `override_options.fields` (`all`: every one), the
    expression when it names none."""
    opts = item.get("override_options") or {}
    fields = opts.get("fields") if isinstance(opts, dict) else None
    if not fields:
        return {"expression"}
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise ValueError("`override_options.fields` must be a list of names")
    unknown = sorted(set(fields) - _OVERRIDABLE - {"all"})
    if unknown:
        raise ValueError(f"`override_options.fields`: cannot override {', '.join(unknown)} (only "
                         f"{', '.join(sorted(_OVERRIDABLE))} or all)")
    return set(_OVERRIDABLE) if "all" in fields else set(fields)


def _rule_actions(ps: PolicySet, pf: PolicyFile, item: dict[str, Any]) -> _Actions | None:
    """The selected rule's actions (its variables declared), else None (an error, reported)."""
    rid = _text(item, "id") or ""
    line = item.get("__line__")
    if item.get("disabled"):
        return _Actions()
    aline = item.get("__lines__", {}).get("actions", line)
    try:
        sets, not_executed, warnings = parse_actions(item.get("actions"), rid)
    except ActionError as e:
        pf.errors.append(_err(str(e), pf.path, aline, rule_id=rid, kind="rule"))
        return None
    for w in warnings:
        pf.warnings.append(_err(w, pf.path, aline, rule_id=rid, kind="rule"))
    for spec in sets:
        try:
            declare(ps.variables, spec)
        except ActionError as e:
            pf.errors.append(_err(str(e), pf.path, aline, rule_id=rid, kind="rule"))
            return None
    return _Actions(sets, not_executed)


def _type_variables(ps: PolicySet, selected: list[list[SetSpec]]) -> None:
    """Variables set by an `expression` alone (no `default_value`) take its type, before rules read them."""
    for sets in selected:
        for spec in sets:
            if not spec.var.type and spec.source == "expression":
                try:
                    c = compile_value(spec.value, ps.macros, variables=ps.variables)
                except SeclError:
                    continue  # reported when the rule compiles
                spec.var.type, spec.var.multi = c.value_type[0], spec.var.multi or c.value_type[1]


def _check_keys(
    pf: PolicyFile, item: dict[str, Any], known: set[str], what: str, item_id: str | None
) -> None:
    """Unknown keys are warnings (a typo such as `expresion` would otherwise pass unnoticed); keys of
    Datadog features this engine does not implement are warnings too, since they are ignored."""
    line = item.get("__line__")
    for key in item:
        if str(key).startswith("__line"):
            continue
        if key not in known:
            msg = f"unknown key '{key}' (ignored)"
        elif key in _IGNORED:
            msg = f"'{key}' is not supported by this engine (ignored)"
        else:
            continue
        w = _err(msg, pf.path, item.get("__lines__", {}).get(key, line), rule_id=item_id, kind=what)
        pf.warnings.append(w)


def _checked_id(pf: PolicyFile, item: dict[str, Any], keys: set[str], kind: str) -> str | None:
    """The item's id after its keys are checked, or None (the error reported) when it is not a valid id."""
    item_id = _text(item, "id")
    _check_keys(pf, item, keys, kind, item_id)
    if not item_id or not _ID.match(item_id):
        pf.errors.append(_err(f"invalid {kind} id {item_id!r}: use letters, digits and '_'", pf.path,
                              item.get("__line__"), kind=kind))
        return None
    return item_id


def _add_macro(ps: PolicySet, pf: PolicyFile, item: dict[str, Any], lines: dict[str, Any]) -> None:
    mid = _checked_id(pf, item, _MACRO_KEYS, "macro")
    if mid is None:
        return
    line = item.get("__line__")
    combine = _text(item, "combine")
    if combine is not None and combine not in ("merge", "override"):
        msg = f"`combine` must be 'merge' or 'override', not {combine!r}"
        pf.errors.append(_err(msg, pf.path, line, rule_id=mid, kind="macro"))
        return
    previous = ps.macros.get(mid)
    if previous is not None and combine is None:
        first = lines[mid][2]
        msg = (f"duplicate macro id '{mid}': `combine: merge` adds values to it, `combine: override` "
               f"replaces it (first defined in {first})")
        pf.errors.append(_err(msg, pf.path, line, rule_id=mid, kind="macro"))
        return
    expr = _text(item, "expression")
    values = item.get("values")
    base = item.get("__lines__", {}).get("expression")
    if expr is not None and values is not None:
        msg = "a macro has either `expression` or `values`, not both"
        pf.errors.append(_err(msg, pf.path, line, rule_id=mid, kind="macro"))
        return
    if values is not None:
        vline = item.get("__lines__", {}).get("values", line)
        if not isinstance(values, list) or not values:
            pf.errors.append(
                _err("`values` must be a non-empty list", pf.path, vline, rule_id=mid, kind="macro")
            )
            return
        for i, v in enumerate(values):
            if not isinstance(v, str | int | bool):
                msg = f"`values` item {i + 1} must be a string, an integer or a boolean, not {_kind(v)}"
                pf.errors.append(_err(msg, pf.path, vline, rule_id=mid, kind="macro"))
                ps.invalid_macros.add(mid)
                return
        expr = "[" + ", ".join(_literal(v) for v in values) + "]"
    if not expr:
        pf.errors.append(
            _err("the macro has no `expression` nor `values`", pf.path, line, rule_id=mid, kind="macro")
        )
        return
    try:
        node = parse(expr).node
    except SeclError as e:
        pf.errors.append(_locate(e, pf.path, mid, "macro", base))
        ps.invalid_macros.add(mid)
        return
    description = _text(item, "description") or ""
    if previous is not None and combine == "merge":
        # A list macro extended by a later policy (a user's exclusions): the values of both.
        if values is None or not isinstance(previous.node, ast.ArrayLit):
            msg = f"`combine: merge` adds `values` to a list macro: '{mid}' or this definition is not a list"
            pf.errors.append(_err(msg, pf.path, line, rule_id=mid, kind="macro"))
            return
        expr = previous.text[:-1].rstrip() + ", " + expr[1:]
        node = parse(expr).node
        description = description or previous.description
    if previous is not None:
        lines[mid][0].macros.remove(mid)
    ps.macros[mid] = Macro(mid, expr, node, description, pf.path)
    pf.macros.append(mid)
    lines[mid] = (pf, base, f"{pf.path}:{line + 1}" if line is not None else pf.path)


def _blame_invalid_macro(e: SeclError, invalid: set[str]) -> None:
    """An "unknown" macro that is in fact a macro skipped for its own error: say so."""
    if e.unknown_name is not None and e.unknown_name in invalid:
        inside = "".join(f"in macro '{m}': " for m in e.macro_chain)
        e.message = f"{inside}macro '{e.unknown_name}' has an error (reported with the macro)"


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, float):
        return f"a number with a fraction ({v!r})"
    return f"a {type(v).__name__}"


def _literal(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if len(s) >= 3 and s[0] in "~r" and s[1] == '"' and s[-1] == '"':
        return s  # already a pattern or regex literal: `~"/tmp/*"`, `r"[0-9]+"`
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


_HEAD = re.compile(r"(?<![\w.$])([a-z_]+)\.[a-z_]")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')


def _unsupported_type_in(expr: str) -> str | None:
    """An event type the probe does not produce that the expression's fields name (outside strings): a rule
    that does not parse here (Datadog syntax this engine lacks, such as CIDR literals) is still skipped for it."""
    for m in _HEAD.finditer(_STRINGS.sub('""', expr)):
        if m.group(1) in UNSUPPORTED_EVENT_TYPES:
            return m.group(1)
    return None


def _add_rule(ps: PolicySet, pf: PolicyFile, item: dict[str, Any], acts: _Actions) -> None:
    rid = _text(item, "id") or ""
    line = item.get("__line__")
    tags_raw = item.get("tags") or {}
    if not isinstance(tags_raw, dict):
        pf.errors.append(_err("`tags` must be a mapping", pf.path, line, rule_id=rid, kind="rule"))
        return
    tags = {str(k): str(v) for k, v in tags_raw.items() if not str(k).startswith("__line")}
    expr = _text(item, "expression")
    base = item.get("__lines__", {}).get("expression")
    try:
        every = parse_duration(item.get("every"), "every") or None
    except ActionError as e:
        pf.errors.append(_err(str(e), pf.path, item.get("__lines__", {}).get("every", line), rule_id=rid,
                              kind="rule"))  # fmt: skip
        return
    rule = Rule(
        rid,
        expr or "",
        description=_text(item, "description") or "",
        tags=tags,
        source=pf.path,
        version=_text(item, "version"),
        disabled=bool(item.get("disabled", False)),
        line=base + 1 if base is not None else None,
        macros=ps.macros,
        silent=bool(item.get("silent", False)),
        not_executed=acts.not_executed,
        every=every,
    )
    if not expr:
        pf.errors.append(_err("the rule has no `expression`", pf.path, line, rule_id=rid, kind="rule"))
        return
    if rule.disabled:
        return
    try:
        parsed = parse(expr)
    except SeclError as e:
        head = _unsupported_type_in(expr)
        if head is not None:
            _skip_unsupported(pf, rid, rule, Unsupported(
                f"'{head}' events are not supported by this engine", group="event type not supported",
                subject=head))  # fmt: skip
            return
        pf.errors.append(_locate(e, pf.path, rid, "rule", base))
        return
    variables = ps.variables

    def compile_expr(text: str) -> Any:
        return compile_value(text, ps.macros, variables=variables)

    try:
        compiled = compile_parsed(parsed, expr, ps.macros, variables=variables)
        actions = [compile_set(spec, variables, compile_expr) for spec in acts.sets]
    except Unsupported as e:
        _skip_unsupported(pf, rid, rule, e)
        return
    except SeclError as e:
        _blame_invalid_macro(e, ps.invalid_macros)
        pf.errors.append(_locate(e, pf.path, rid, "rule", base))
        return
    except ActionError as e:
        pf.errors.append(_err(str(e), pf.path, item.get("__lines__", {}).get("actions", line),
                              rule_id=rid, kind="rule"))  # fmt: skip
        return
    rule.compiled = compiled
    rule.event_type = compiled.event_type
    rule.actions = actions
    for w in compiled.warnings:
        pf.warnings.append(_locate(w, pf.path, rid, "rule", base))
    pf.rules.append(rule)
    ps.rules.append(rule)


def _skip_unsupported(pf: PolicyFile, rid: str, rule: Rule, e: Unsupported) -> None:
    pf.skipped.append(Skip(rid, e.group, e.subject, e.message, pf.path, rule.line))
