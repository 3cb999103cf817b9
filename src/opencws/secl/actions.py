"""Rule actions: what happens when a rule matches, besides the alert.

- `set` stores a value in a rule variable (`opencws.secl.variables`): `value` (a literal), `field` (the event's
  value of a field) or `expression` (a SECL expression on the event: `"cgroup_${builtins.uuid4}"`,
  `${cgroup.count} + 1`), with `scope`, `append`, `ttl`, `size`, `default_value`, `inherited`; an action's
  `filter` (a SECL expression) decides, per event, whether it runs. `set` actions run in the rule engine.
  `scope_field` names the owner by a field of the event instead of the event's own: a pid for the process
  scope (the process of `cgroup_write.pid`), a container id, a cgroup id.
- `kill`, `hash`, `coredump`, `network_filter`, `log` are accepted and not executed: OpenCWS observes and
  does not act on processes, files or the network. `opencws rules check` lists each one with the reason.

A rule that is `silent` runs its actions but raises no alert (a context rule that only sets variables).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opencws.secl.errors import SeclError, Unsupported
from opencws.secl.fields import BOOL, INT, REGISTRY, STRING, UNSUPPORTED_EVENT_TYPES, unavailable_reason
from opencws.secl.variables import SCOPES, Variable, VariableTable

NOT_EXECUTED = {
    "kill": "OpenCWS observes and does not enforce: no signal is sent",
    "hash": "the agent does not hash files (the event carries the file's path, inode and mode)",
    "coredump": "the agent does not take core dumps of processes",
    "network_filter": "the agent does not filter network traffic (no network events)",
    "log": "the agent does not write action logs (the alert itself is the record)",
}
_SET_KEYS = {"name", "scope", "value", "field", "expression", "append", "ttl", "size", "default_value",
             "inherited", "private", "scope_field"}  # fmt: skip
_DURATION = re.compile(r"^(\d+)(ns|us|µs|ms|s|m|h)$")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ActionError(ValueError):
    """A malformed action (reported as an error of its rule)."""


@dataclass
class SetSpec:
    """A `set` action as written, before its rule is compiled."""

    var: Variable
    source: str  # "value", "field" or "expression"
    value: Any  # the literal, the field name or the expression text
    append: bool
    filter: str | None
    index: int  # position among the rule's actions (1-based), for messages
    scope_field: Any = None  # Datadog: a field naming the owner (the process of `cgroup_write.pid`)


@dataclass
class SetAction:
    """A compiled `set` action: `run(event)` after its rule matched."""

    spec: SetSpec
    get: Callable[[Any], Any]
    when: Callable[[Any], Any] | None
    table: VariableTable
    owner: Callable[[Any], Any] | None = None  # `scope_field`: the owner's pid, container id or cgroup id

    failures: int = 0  # events on which the action could not run (counted, never raised to the engine)

    def run(self, e: Any) -> None:
        try:
            if self.when is not None and not self.when(e):
                return
            value = self.get(e)
            if isinstance(value, tuple):
                value = list(value)
            store = self.table.store
            if self.owner is None:
                store.write(self.spec.var, e, value, self.spec.append)
            else:
                key = store.owner_key(self.spec.var.scope, self.owner(e), e)
                if key is not None:
                    store.write(self.spec.var, e, value, self.spec.append, key=key)
        except Exception:
            self.failures += 1


@dataclass
class Skipped:
    """An action accepted and not executed, with the reason (listed by `rules check`)."""

    kind: str
    reason: str


def parse_duration(v: Any, what: str) -> int | None:
    """Nanoseconds from an integer (ns) or a text such as `10s`, `30m`; None when absent."""
    if v is None:
        return None
    if type(v) is int and v >= 0:
        return v
    m = _DURATION.match(str(v).strip())
    if m is None:
        raise ActionError(f"`{what}` must be a duration (nanoseconds, or such as 10s, 30m), not {v!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _type_of(v: Any) -> tuple[str, bool] | None:
    if isinstance(v, bool):
        return BOOL, False
    if isinstance(v, int):
        return INT, False
    if isinstance(v, str):
        return STRING, False
    if isinstance(v, list) and v:
        inner = _type_of(v[0])
        if inner is not None and not inner[1] and all(_type_of(x) == inner for x in v):
            return inner[0], True
    return None


def parse_actions(
    actions: Any, rule_id: str
) -> tuple[list[SetSpec], list[Skipped], list[str]]:
    """The `set` actions of a rule (variables typed from `value`, `field` or `default_value`; an expression's
    type is found when the rule compiles), the actions not executed, and warnings. Raise ActionError."""
    if actions is None:
        return [], [], []
    if not isinstance(actions, list):
        raise ActionError("`actions` must be a list")
    sets: list[SetSpec] = []
    skipped: list[Skipped] = []
    warnings: list[str] = []
    for i, action in enumerate(actions, 1):
        if not isinstance(action, dict):
            raise ActionError(f"action {i} must be a mapping")
        keys = [k for k in action if not str(k).startswith("__line")]
        filt = action.get("filter")
        if filt is not None and not isinstance(filt, str):
            raise ActionError(f"action {i}: `filter` must be a SECL expression")
        kinds = [k for k in keys if k != "filter"]
        if len(kinds) != 1:
            raise ActionError(f"action {i} must have exactly one kind (set, kill, hash, ...), not {kinds}")
        (kind,) = kinds
        if kind == "set":
            sets.append(_set_spec(action["set"], i, filt, rule_id, warnings))
        elif kind in NOT_EXECUTED:
            skipped.append(Skipped(kind, NOT_EXECUTED[kind]))
        else:
            skipped.append(Skipped(kind, "unknown action kind"))
            warnings.append(f"action {i}: unknown action kind '{kind}' (not executed)")
    return sets, skipped, warnings


def _set_spec(body: Any, i: int, filt: str | None, rule_id: str, warnings: list[str]) -> SetSpec:
    where = f"action {i} (set)"
    if not isinstance(body, dict):
        raise ActionError(f"{where} must be a mapping")
    unknown = sorted(str(k) for k in body if not str(k).startswith("__line") and k not in _SET_KEYS)
    if unknown:
        warnings.append(f"{where}: unknown keys {unknown} (ignored)")
    name = body.get("name")
    if not isinstance(name, str) or not _VAR_NAME.match(name):
        raise ActionError(f"{where}: `name` must be a variable name (letters, digits, '_'), not {name!r}")
    scope = body.get("scope") or "global"
    if scope not in SCOPES:
        raise ActionError(f"{where}: `scope` must be one of {', '.join(SCOPES)}, not {scope!r}")
    sources = [k for k in ("value", "field", "expression") if body.get(k) is not None]
    if len(sources) != 1:
        raise ActionError(f"{where}: give exactly one of `value`, `field` or `expression`")
    (source,) = sources
    value = body[source]
    append = bool(body.get("append", False))
    default = body.get("default_value")
    typ: tuple[str, bool] | None = None
    if source == "value":
        typ = _type_of(value)
        if typ is None:
            raise ActionError(f"{where}: `value` must be a string, an integer, a boolean or a list of one of them")
    elif source == "field":
        if not isinstance(value, str):
            raise ActionError(f"{where}: `field` must be a field name")
        f = REGISTRY.get(value)
        if f is None:
            why = unavailable_reason(value)
            raise ActionError(f"{where}: unknown field '{value}'" + (f" ({why})" if why else ""))
        typ = (f.type, f.multi)
    elif not isinstance(value, str):
        raise ActionError(f"{where}: `expression` must be a SECL expression")
    if default is not None:
        dtyp = _type_of(default)
        if dtyp is None:
            raise ActionError(f"{where}: `default_value` must be a string, an integer or a boolean")
        if typ is not None and typ[0] != dtyp[0]:
            raise ActionError(f"{where}: `default_value` is a {dtyp[0]} but the value is a {typ[0]}")
        typ = typ or dtyp
    var = Variable(
        scope, name, typ[0] if typ else "", multi=append or (typ[1] if typ else False), default=default,
        ttl=parse_duration(body.get("ttl"), "ttl"), size=body.get("size"), inherited=bool(body.get("inherited")),
        setters=[rule_id],
    )  # fmt: skip
    if var.size is not None and (type(var.size) is not int or var.size <= 0):
        raise ActionError(f"{where}: `size` must be a positive integer")
    return SetSpec(var, source, value, append, filt, i, body.get("scope_field"))


def declare(table: VariableTable, spec: SetSpec) -> None:
    """Add (or check against) the table's variable of this `set`; raise ActionError on a type conflict."""
    var = spec.var
    have = table.vars.get(var.ref)
    if have is None:
        table.vars[var.ref] = var
        return
    if var.type and have.type and (var.type, var.multi) != (have.type, have.multi):
        raise ActionError(
            f"action {spec.index} (set): variable '${{{var.ref}}}' is {_kind(var)} here but {_kind(have)} as "
            f"set by rule {have.setters[0]}"
        )
    if not have.type:
        have.type, have.multi = var.type, var.multi
    have.setters.append(var.setters[0])
    have.inherited = have.inherited or var.inherited
    have.ttl = have.ttl if var.ttl is None else var.ttl
    have.size = have.size if var.size is None else var.size
    if have.default is None:
        have.default = var.default
    spec.var = have


def _kind(v: Variable) -> str:
    base = {STRING: "a string", INT: "an integer", BOOL: "a boolean"}.get(v.type, "untyped")
    return f"{base} list" if v.multi else base


def compile_set(spec: SetSpec, table: VariableTable, compile_expr: Callable[..., Any]) -> SetAction:
    """The runnable action; `compile_expr(text)` compiles a SECL expression for any event (the rule's
    compiler with the table). Raise SeclError for a bad expression or filter, ActionError for a type clash."""
    var = spec.var
    owner = None if spec.scope_field is None else _owner_getter(spec)
    if spec.source == "value":
        const = spec.value
        get: Callable[[Any], Any] = lambda e: const  # noqa: E731
    elif spec.source == "field":
        f = REGISTRY.get(spec.value)
        assert f is not None
        get = f.getter  # type: ignore[assignment]
    else:
        c = compile_expr(spec.value)
        typ, multi = c.value_type
        if not var.type:
            var.type, var.multi = typ, var.multi or multi
        elif typ != var.type:
            raise ActionError(
                f"action {spec.index} (set): the expression gives {typ} but '${{{var.ref}}}' holds {var.type}"
            )
        get = c.fn
    when = None
    if spec.filter is not None:
        w = compile_expr(spec.filter)
        if w.value_type != (BOOL, False):
            raise SeclError(f"action {spec.index}: `filter` must be a boolean condition", spec.filter)
        when = w.fn
    return SetAction(spec, get, when, table, owner)


def _owner_getter(spec: SetSpec) -> Callable[[Any], Any]:
    """The getter of a `scope_field`: a known field of the right kind for the scope (a pid is an integer)."""
    name = spec.scope_field
    where = f"action {spec.index} (set)"
    if not isinstance(name, str):
        raise ActionError(f"{where}: `scope_field` must be a field name")
    f = REGISTRY.get(name)
    if f is None:
        head = name.split(".", 1)[0]
        if head in UNSUPPORTED_EVENT_TYPES:
            raise Unsupported(f"'{name}': '{head}' events are not supported by this engine",
                              group="event type not supported", subject=head)
        raise ActionError(f"{where}: `scope_field`: unknown field '{name}'")
    scope = spec.var.scope
    if scope == "global":
        raise ActionError(f"{where}: a global variable has no `scope_field`")
    if f.multi or (scope == "process" and f.type != INT):
        what = "a pid (an integer field)" if scope == "process" else "one id"
        raise ActionError(f"{where}: `scope_field` of a {scope} variable must be {what}, not '{name}'")
    return f.getter  # type: ignore[return-value]
