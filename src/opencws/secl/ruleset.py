"""A set of compiled rules, bucketed by event type, evaluated against events.

Matching is two-staged. Each rule's *approvers* (values a field must have for the rule to match, found at
compile time) give it a cheap gate on one scalar field: an exact value, a path prefix or substring taken
from a glob, or a flag mask. Per event, each gate field is read once, a dict lookup and a C-level
`startswith` over all prefixes select the candidate rules, and only those (plus the rules without a gate)
run their compiled closures. A gate is only a necessary condition, so the result is exactly that of
evaluating every rule.

A rule with `set` actions runs them as soon as it matches (rules later in the order see the new values, as
in Datadog's agent); a `silent` rule runs its actions and is not in the result (it raises no alert).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opencws.secl import partial
from opencws.secl.approvers import Approver, pattern_key
from opencws.secl.compiler import CompiledRule
from opencws.secl.fields import GETTER_ENV, REGISTRY, Field, InlineReader
from opencws.secl.matchers import build_matcher
from opencws.secl.policy import Rule


@dataclass
class _Gate:
    """Candidate selection on one field: which rules each value (or path prefix, substring, flag) admits."""

    field: Field
    exact: dict[Any, list[int]] = field(default_factory=dict)
    by_dir: dict[str, dict[int, list[str]]] = field(default_factory=dict)  # top dir → rule → globs
    other_prefixes: list[tuple[str, int]] = field(default_factory=list)
    substrings: list[tuple[str, int]] = field(default_factory=list)
    masks: list[tuple[int, int]] = field(default_factory=list)


def _top_dir(path: str) -> str:
    """`/usr/lib/x` → `/usr/`: path prefixes are grouped by their first component."""
    j = path.find("/", 1)
    return path[: j + 1] if path.startswith("/") and j > 0 else ""


def _choose_gates(rules: list[tuple[str, CompiledRule]]) -> list[frozenset[tuple[str, Approver]] | None]:
    """One gate per rule: among its gates, the one on the fields most rules share (fewer field reads per
    event), then the most selective."""

    def fields_of(gate: frozenset[tuple[str, Approver]]) -> frozenset[str]:
        return frozenset(n for n, _ in gate)

    popularity: dict[str, int] = {}
    for _, c in rules:
        for f in {f for g in c.gates for f in fields_of(g)}:
            popularity[f] = popularity.get(f, 0) + 1
    chosen: list[frozenset[tuple[str, Approver]] | None] = []
    for _, c in rules:
        if not c.gates:
            chosen.append(None)
            continue
        ranked = sorted(
            enumerate(c.gates), key=lambda kg: (-min(popularity[f] for f in fields_of(kg[1])), kg[0])
        )
        chosen.append(ranked[0][1])
    return chosen


def _dir_group(rules: dict[int, list[str]]) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """The globs of one top directory: all their heads (one C-level test for the whole group), then per
    rule its heads, its tails (None when a glob ends with `*`) and the full matcher, tested in that order
    so that most paths are turned away by `startswith`/`endswith` alone."""
    entries = []
    all_heads: list[str] = []
    for i, globs in rules.items():
        heads = tuple(gl.split("*", 1)[0] for gl in globs)
        tails = tuple(gl.rsplit("*", 1)[-1] for gl in globs)
        all_heads += heads
        entries.append((heads, None if "" in tails else tails, build_matcher(globs), i))
    return tuple(all_heads), tuple(entries)


class _Bucket:
    """The rules of one event type, with a gate index: each rule's gate, grouped by field."""

    def __init__(self, rules: list[tuple[str, CompiledRule]]) -> None:
        self.ids = [rid for rid, _ in rules]
        self.fns = [c.fn for _, c in rules]
        self.always: list[int] = []
        gates: dict[str, _Gate] = {}
        for i, gate in enumerate(_choose_gates(rules)):
            if gate is None:
                self.always.append(i)
                continue
            for name, a in gate:
                f = REGISTRY.get(name)
                assert f is not None
                g = gates.setdefault(name, _Gate(f))
                if a.kind == "exact":
                    g.exact.setdefault(a.value, []).append(i)
                elif a.kind == "flags":
                    g.masks.append((a.value, i))
                else:
                    kind, key = pattern_key(a.value)  # type: ignore[misc]
                    if kind == "substring":
                        g.substrings.append((key, i))
                    elif _top_dir(key):
                        g.by_dir.setdefault(_top_dir(key), {}).setdefault(i, []).append(a.value)
                    else:
                        g.other_prefixes.append((key, i))
        self.gates = list(gates.values())
        self.always_pairs = [(self.ids[i], self.fns[i]) for i in self.always]
        self.match = self._generate()

    def _generate(self) -> Callable[[Any], list[str]]:
        """Generate `match(event)`: one straight block per gate field collects the candidate rules, which
        are then evaluated in rule order; with no candidate, only the rules without a gate run."""
        env: dict[str, Any] = dict(GETTER_ENV)
        env.update(always=self.always, always_pairs=self.always_pairs)
        env["ids"], env["fns"] = self.ids, self.fns
        lines = ["def match(e):", "    found = []"]
        reader = InlineReader()
        for n, g in enumerate(self.gates):
            f = g.field
            if f.source is not None and not f.multi:
                lines += reader.read(*f.source, f.type, "v")
            else:
                env[f"get{n}"] = f.getter
                lines.append(f"    v = get{n}(e)")
            if g.exact:
                env[f"exact{n}"] = {k: tuple(v) for k, v in g.exact.items()}
                lines += [f"    h = exact{n}.get(v)", "    if h:", "        found.extend(h)"]
            if g.by_dir:
                env[f"dirs{n}"] = {k: _dir_group(rules) for k, rules in g.by_dir.items()}
                lines += [
                    "    j = v.find('/', 1)",
                    "    if j > 0:",
                    f"        grp = dirs{n}.get(v[:j + 1])",
                    "        if grp is not None and v.startswith(grp[0]):",
                    "            for heads, tails, m, i in grp[1]:",
                    "                if v.startswith(heads) and (tails is None or v.endswith(tails)) and m(v):",
                    "                    found.append(i)",
                ]
            for kind, entries in (("other", g.other_prefixes), ("subs", g.substrings), ("masks", g.masks)):
                if not entries:
                    continue
                env[f"{kind}{n}"] = tuple(entries)
                test = {"other": "v.startswith(x)", "subs": "x in v", "masks": "v & x"}[kind]
                loop = [f"for x, i in {kind}{n}:", f"    if {test}:", "        found.append(i)"]
                if kind == "other":  # one C-level test of all the prefixes first
                    env[f"other_heads{n}"] = tuple(x for x, _ in entries)
                    lines += [f"    if v.startswith(other_heads{n}):", *("        " + x for x in loop)]
                else:
                    lines += ["    " + x for x in loop]
        lines += [
            "    if not found:",
            "        return [rid for rid, fn in always_pairs if fn(e)] if always_pairs else []",
            "    if always:",
            "        found.extend(always)",
            "    if len(found) > 1:",
            "        found = sorted(set(found))",
            "    return [ids[i] for i in found if fns[i](e)]",
        ]
        self.source = "\n".join(lines)
        exec(self.source, env)
        return env["match"]  # type: ignore[no-any-return]


def _with_actions(fn: Callable[[Any], Any], rule: Rule) -> Callable[[Any], bool]:
    """The rule's condition, then its actions when it holds; false for a silent rule (no alert)."""
    runs = tuple(a.run for a in rule.actions)
    alert = not rule.silent

    def matched(e: Any) -> bool:
        if not fn(e):
            return False
        for run in runs:
            run(e)
        return alert

    return matched


class RuleSet:
    """`match(event)` returns the ids of the rules the event satisfies, in rule order.

    Only the rules of the event's type (`evt.name`) are considered.
    """

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: list[Rule] = [r for r in rules if r.compiled is not None]
        by_type: dict[str, list[tuple[str, CompiledRule]]] = {}
        for r in self.rules:
            assert r.compiled is not None
            c = r.compiled
            if getattr(r, "actions", None) or getattr(r, "silent", False):  # rule-like objects may lack both
                c = dataclasses.replace(c, fn=_with_actions(c.fn, r))
            by_type.setdefault(c.event_type, []).append((r.id, c))
        self._buckets: dict[str | None, _Bucket] = {t: _Bucket(rs) for t, rs in by_type.items()}
        self._partial_pairs: dict[str, list[Any]] = {}
        self._matchers: dict[str | None, Callable[[Any], list[str]]] = {
            t: b.match for t, b in self._buckets.items()
        }

    @property
    def event_types(self) -> list[str]:
        return sorted(t for t in self._buckets if t)

    def rules_for(self, event_type: str) -> list[Rule]:
        return [r for r in self.rules if r.event_type == event_type]

    def match(self, event: Any, event_type: str | None = None) -> list[str]:
        """Ids of the rules the event matches. `event_type`: the event's type when the caller knows it (the
        event's `evt` block is then not read for it)."""
        if event_type is None:
            evt = event.evt
            event_type = evt.name if evt is not None else None
        m = self._matchers.get(event_type)
        return m(event) if m is not None else []

    def matcher(self, event_type: str | None) -> Callable[[Any], list[str]] | None:
        """`match` for events of this type, as one callable (None: no rule of the type)."""
        return self._matchers.get(event_type)

    def match_all(self, event: Any) -> list[str]:
        """`match` without the gates: every rule of the event's type is evaluated (for tests and checks)."""
        evt = event.evt
        return [
            r.id for r in self.rules if evt is not None and r.event_type == evt.name and r.evaluate(event)
        ]

    def could_match(self, event_type: str, field: str | Mapping[str, Any], value: Any = None) -> bool:
        """Partial evaluation: could a rule of `event_type` match an event whose `field` is `value`?

        `field` may also be a mapping of several field values. Other fields are "could be anything"."""
        values = dict(field) if isinstance(field, Mapping) else {field: value}
        pairs = self._partial_pairs.get(event_type)
        if pairs is None:
            pairs = [(r.compiled, r.macros) for r in self.rules_for(event_type) if r.compiled is not None]
            self._partial_pairs[event_type] = pairs
        return partial.could_match(pairs, event_type, values)

    def approvers(self, event_type: str, field: str) -> list[Approver] | None:
        """Values of `field` that every rule of `event_type` requires (their union), or None."""
        compiled: list[CompiledRule] = [
            r.compiled for r in self.rules_for(event_type) if r.compiled is not None
        ]
        return partial.approvers(compiled, event_type, field)

    def all_approvers(self, event_type: str) -> dict[str, list[Approver]]:
        """Every field of `event_type` for which each rule of that type has approvers."""
        fields: set[str] = set()
        for r in self.rules_for(event_type):
            if r.compiled is not None:
                fields.update(r.compiled.approvers)
        out = {}
        for f in sorted(fields):
            a = self.approvers(event_type, f)
            if a is not None:
                out[f] = a
        return out
