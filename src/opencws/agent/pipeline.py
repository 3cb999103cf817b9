"""The agent's pipeline: kernel events → resolvers → rules → serializer → reporters.

`Pipeline.handle(batch)` takes the events of one read of the ring buffer, in order:
- fork, exec, exit and credential changes update the process cache first (whatever the rules: the cache
  must stay true), then the event goes to the rules of its type, if any;
- every other event is looked up in the cache and evaluated as a `LazyEvent` (fields resolved when read);
- a match is serialized once (the CWS event), wrapped in an envelope per matching rule (`serializer`),
  rate-limited per rule, and written to every reporter.

Every event read is counted exactly once per outcome: `sent` (some rule matched and a line was written),
`filtered` (no rule matched, or the type has no rule), `rate_limited` (rules matched, every match was
over its rule's budget). Events the kernel could not queue are its `lost` counter, read from the probe.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from opencws import __version__
from opencws.agent.event import LazyEvent, Resolvers
from opencws.agent.serializer import envelope_prefix, event_parts
from opencws.probe import events as kev
from opencws.secl import PolicySet, Rule, RuleSet

NOT_FOR_RULES = frozenset({"fork"})
"""Kernel event types that feed the cache only (SECL has no fork events)."""


@dataclass
class RuleInfo:
    """What an envelope says of a rule."""

    id: str
    version: str | None
    tags: list[str]
    policy: str


@dataclass
class LoadedRules:
    """A policy set ready to evaluate: swapped whole on reload."""

    policies: PolicySet
    ruleset: RuleSet
    info: dict[str, RuleInfo]
    types: frozenset[str]

    @classmethod
    def build(cls, policies: PolicySet) -> LoadedRules:
        rules = [r for r in policies.rules if r.compiled is not None and not r.disabled]
        info = {r.id: _rule_info(r) for r in rules}
        return cls(policies, RuleSet(rules), info, frozenset(r.event_type for r in rules if r.event_type))


def _rule_info(r: Rule) -> RuleInfo:
    tags = [f"{k}:{v}" for k, v in sorted(r.tags.items())]  # (the policy loader makes tags a mapping of strings)
    policy = Path(r.source).name if r.source else ""
    return RuleInfo(r.id, r.version, tags, policy)


@dataclass
class Counts:
    seen: dict[str, int] = field(default_factory=dict)
    filtered: dict[str, int] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)
    rate_limited: dict[str, int] = field(default_factory=dict)
    matches: dict[str, int] = field(default_factory=dict)
    """Per rule: events that matched it (written or rate-limited)."""
    limited_rules: dict[str, int] = field(default_factory=dict)
    lines: int = 0


def _inc(d: dict[str, int], key: str, n: int = 1) -> None:
    d[key] = d.get(key, 0) + n


def _no_match(event: Any) -> list[str]:
    return []


class Pipeline:
    def __init__(self, resolvers: Resolvers, rules: LoadedRules, reporters: list[Any], *,
                 allow: Callable[[str], bool] | None = None, host: str | None = None,
                 on_report_error: Callable[[Any, Exception], None] | None = None,
                 observe: Callable[..., Any] | None = None, observe_matched: Iterable[str] | None = None):
        """`observe(event, matched=False)`: the kernel filters' learner (`KernelFilters.observe`), told whether
        a rule matched the event; `observe_matched`: the types of which it learns from a matched event too
        (`Discarders.LEARNS_FROM_MATCHED`: the others are not handed over when a rule matched); None: every type."""
        self.r = resolvers
        self.rules = rules
        self.reporters = reporters
        self.allow = allow
        self.host = host or socket.gethostname()
        self.agent_version = __version__
        self.on_report_error = on_report_error
        self.observe = observe
        self.observe_matched = frozenset(observe_matched) if observe_matched is not None else None
        self.counts = Counts()
        self._prefixes: dict[str, bytes] = {}
        self.set_rules(rules)

    def set_rules(self, rules: LoadedRules) -> None:
        self.rules = rules
        self._prefixes = {}
        self._matchers: dict[str, Callable[[Any], list[str]]] = {}
        # a `set` action's `scope_field` may name a process the event does not carry: the cache knows it
        rules.policies.variables.store.process_lookup = self._process_of

    def _process_of(self, pid: int) -> Any:
        e = self.r.processes.get(pid, read_proc=False)
        return self.r.processes.model(e) if e is not None else None

    def handle(self, batch: Iterable[kev.KernelEvent]) -> None:
        procs = self.r.processes
        counts = self.counts
        seen, filtered, types = counts.seen, counts.filtered, self.rules.types
        observe = self.observe
        observe_matched = self.observe_matched
        for k in batch:
            t = k.type
            seen[t] = seen.get(t, 0) + 1
            if t == "fork":
                procs.on_fork(k)  # type: ignore[arg-type]
                entry = None
            elif t == "exec":
                entry = procs.on_exec(k)  # type: ignore[arg-type]
            elif t == "exit":
                entry = procs.on_exit(k) or procs.get(k.pid)  # type: ignore[arg-type]
            elif isinstance(k, kev.CredentialsEvent):
                entry = procs.for_event(k)
                event = LazyEvent(k, self.r, entry) if t in self.rules.types else None
                if event is not None:
                    _ = event.process  # the "before" credentials, read before the cache moves on
                procs.on_credentials(k)
                self._evaluate(t, event)
                continue
            else:
                entry = procs.for_event(k)
            if t in NOT_FOR_RULES or t not in types:
                if observe is not None:
                    observe(k)
                filtered[t] = filtered.get(t, 0) + 1
                continue
            matched = self._evaluate(t, LazyEvent(k, self.r, entry))
            if observe is not None and (not matched or observe_matched is None or t in observe_matched):
                # after the rules: an event some rule matched cannot be discarded, and its discarder attempt is
                # skipped (1.3-2.4 µs an event); of most types, it is not even handed over
                observe(k, matched)
        procs.end_batch()

    def _evaluate(self, t: str, event: LazyEvent | None) -> bool:
        """Whether some rule matched (written or rate-limited)."""
        counts = self.counts
        if event is None:
            _inc(counts.filtered, t)
            return False
        m = self._matchers.get(t)
        if m is None:
            m = self._matchers[t] = self.rules.ruleset.matcher(t) or _no_match
        matched = m(event)
        if not matched:
            filtered = counts.filtered
            filtered[t] = filtered.get(t, 0) + 1
            return False
        body: list[bytes] | None = None
        wrote = False
        matches, allow = counts.matches, self.allow
        for rid in matched:
            matches[rid] = matches.get(rid, 0) + 1
            if allow is not None and not allow(rid):
                _inc(counts.limited_rules, rid)
                continue
            if body is None:
                body = event_parts(event)
            prefix = self._prefixes.get(rid)
            if prefix is None:
                prefix = self._prefixes[rid] = envelope_prefix(self.rules.info[rid], self.host, self.agent_version)
            self._write((prefix, *body, b"}"))  # the envelope's head, the event, the envelope's brace
            wrote = True
        done = counts.sent if wrote else counts.rate_limited
        done[t] = done.get(t, 0) + 1
        return True

    def _write(self, parts: tuple[bytes, ...]) -> None:
        """One line, given as pieces: a reporter that takes pieces (`write_parts`) joins them where it writes
        (an output thread), the others get the line joined once."""
        self.counts.lines += 1
        line = None
        for rep in self.reporters:
            try:
                write_parts = getattr(rep, "write_parts", None)
                if write_parts is not None:
                    write_parts(parts)
                else:
                    if line is None:
                        line = b"".join(parts)
                    rep.write(line)
            except Exception as exc:  # a reporter's failure is reported, never fatal
                if self.on_report_error is not None:
                    self.on_report_error(rep, exc)

    def flush(self) -> None:
        for rep in self.reporters:
            try:
                rep.flush()
            except Exception as exc:
                if self.on_report_error is not None:
                    self.on_report_error(rep, exc)


def self_event(kind: str, host: str | None = None, **fields: Any) -> bytes:
    """An agent self-event (rule set loaded, events lost, rate limit hit, reporter error) as JSON."""
    doc = {"agent_event": kind, "host": host or socket.gethostname(), "agent_version": __version__,
           "pid": os.getpid(), **fields}
    return orjson.dumps(doc, default=str)
