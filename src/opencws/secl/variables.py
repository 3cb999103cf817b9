"""Rule variables: values that rules' `set` actions store and rules read back as `${scope.name}`.

A variable has a scope, which decides whose value a rule reads for an event:
- `global` (`${name}`): one value;
- `process` (`${process.name}`): one per process, identified by its pid and fork time (the same process keeps
  its variables across `exec`); an `inherited` variable is also seen by the process's descendants forked
  after it was set, until they set their own;
- `container` (`${container.name}`): one per container id (events outside a container have none: reads give
  the default value, `set` does nothing);
- `cgroup` (`${cgroup.name}`): one per cgroup (the agent knows each process's cgroup; an event read back from
  its JSON, which carries no cgroup, falls back to its container, as a container is one cgroup).

A variable is typed at load from its `set` actions (a literal `value`, a `field`, a `default_value` or the
`expression`'s type); `append` makes it a list. Values may expire (`ttl`, in nanoseconds of event time: each
appended item expires on its own) and lists may be bounded (`size`: the oldest items leave first). Reads
and writes use the event's date, so replaying events gives the same answers.

Memory is bounded: each scope keeps at most `MAX_KEYS` owners (processes, containers, cgroups), the least
recently written leaving first (the agent does not tell the rules about exits).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opencws.secl.fields import BOOL, INT, STRING

SCOPES = ("global", "process", "container", "cgroup")
MAX_KEYS = 65536
_ZERO = {STRING: "", INT: 0, BOOL: False}


@dataclass
class Variable:
    scope: str
    name: str
    type: str  # STRING, INT or BOOL (of each item when `multi`)
    multi: bool = False
    default: Any = None  # the value read when none is set (None: the type's zero value, or [])
    ttl: int | None = None  # nanoseconds
    size: int | None = None  # at most this many items (lists)
    inherited: bool = False
    setters: list[str] = field(default_factory=list)  # ids of the rules whose actions set it

    @property
    def ref(self) -> str:
        """How rules name it: `process.x`, `cgroup.x`, or `x` for a global one."""
        return self.name if self.scope == "global" else f"{self.scope}.{self.name}"

    def zero(self) -> Any:
        if self.multi:
            return [] if self.default in (None, "") else [self.default]
        return _ZERO[self.type] if self.default is None else self.default


def _now(e: Any) -> int:
    d = getattr(e, "date", None)
    return d if d else time.time_ns()


def _process_key(p: Any) -> tuple[int, int] | None:
    if p is None or p.pid is None:
        return None
    return (p.pid, p.fork_time or p.exec_time or 0)


def _container_key(e: Any) -> str | None:
    c = getattr(e, "container", None)
    if c is not None and c.id:
        return c.id
    p = e.process
    if p is not None and p.container is not None and p.container.id:
        return p.container.id
    return None


def _cgroup_key(e: Any) -> Any:
    p = e.process
    if p is not None and getattr(p, "cgroup_id", None):
        return p.cgroup_id
    cid = _container_key(e)
    return ("container", cid) if cid else None


_KEYS: dict[str, Callable[[Any], Any]] = {
    "global": lambda e: (),
    "process": lambda e: _process_key(e.process),
    "container": _container_key,
    "cgroup": _cgroup_key,
}


class _Slot:
    """One owner's value of one variable: (value, expiry) for a scalar, items → expiry for a list."""

    __slots__ = ("expires", "items", "set_at", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.expires: int | None = None
        self.items: OrderedDict[Any, int | None] | None = None
        self.set_at = 0


class VariableStore:
    """The values of a policy set's variables (its runtime state)."""

    def __init__(self) -> None:
        self.scopes: dict[str, OrderedDict[Any, dict[str, _Slot]]] = {s: OrderedDict() for s in SCOPES}
        # pid → the process (pid, fork_time), for a `scope_field` naming a process the event does not carry
        # (the agent plugs its process cache in); None: only the event's process and ancestors are known
        self.process_lookup: Callable[[int], Any] | None = None

    def owner_key(self, scope: str, value: Any, e: Any) -> Any:
        """The owner named by a `scope_field` value (a pid, a container id, a cgroup id), or None when there is
        none to find (the action does nothing)."""
        if not value:
            return None
        if scope == "container":
            return str(value)
        if scope == "cgroup":
            return int(value) if isinstance(value, int) or str(value).isdigit() else ("container", str(value))
        p = e.process
        for candidate in (p, *(p.ancestors or ())) if p is not None else ():
            if candidate.pid == value:
                return _process_key(candidate)
        found = self.process_lookup(value) if self.process_lookup is not None else None
        return _process_key(found)

    def clear(self) -> None:
        for owners in self.scopes.values():
            owners.clear()

    def _live(self, var: Variable, slot: _Slot, now: int) -> Any:
        """The slot's value at `now`, or None when expired or empty."""
        if slot.items is not None:
            items = slot.items
            if var.ttl is not None:
                for k in [k for k, exp in items.items() if exp is not None and exp <= now]:
                    del items[k]
            return list(items) if items else None
        if slot.expires is not None and slot.expires <= now:
            return None
        return slot.value

    def read(self, var: Variable, e: Any) -> Any:
        owners = self.scopes[var.scope]
        now = _now(e)
        if var.scope == "process":
            return self._read_process(var, e, owners, now)
        key = _KEYS[var.scope](e)
        slots = owners.get(key) if key is not None else None
        slot = slots.get(var.name) if slots is not None else None
        v = self._live(var, slot, now) if slot is not None else None
        return var.zero() if v is None else v

    def _read_process(self, var: Variable, e: Any, owners: Any, now: int) -> Any:
        p = e.process
        key = _process_key(p)
        if key is None:
            return var.zero()
        slots = owners.get(key)
        slot = slots.get(var.name) if slots is not None else None
        if slot is not None:
            v = self._live(var, slot, now)
            if v is not None:
                return v
        if not var.inherited or not owners:
            return var.zero()
        # Inherited: the nearest ancestor holding a value set before its child on the way down was forked
        # (a value set later was not copied to that child).
        child_start = p.fork_time
        for a in p.ancestors or ():
            slots = owners.get(_process_key(a))
            slot = slots.get(var.name) if slots is not None else None
            if slot is not None and (child_start is None or slot.set_at <= child_start):
                v = self._live(var, slot, now)
                if v is not None:
                    return v
            child_start = a.fork_time
        return var.zero()

    def write(self, var: Variable, e: Any, value: Any, append: bool, *, key: Any = None) -> bool:
        """Set (or append to) `var` for the event's owner (`key`: another owner, from a `scope_field`); False
        when the event has no owner in that scope."""
        own = key is None
        if own:
            key = _KEYS[var.scope](e)
        if key is None:
            return False
        owners = self.scopes[var.scope]
        slots = owners.get(key)
        if slots is None:
            if len(owners) >= MAX_KEYS:
                owners.popitem(last=False)
            slots = owners[key] = {}
        else:
            owners.move_to_end(key)
        slot = slots.get(var.name)
        if slot is None:
            slot = slots[var.name] = _Slot()
        now = _now(e)
        slot.set_at = now
        expires = now + var.ttl if var.ttl else None
        if var.multi:
            if slot.items is None or not append:
                if slot.items is None and append and var.scope == "process" and var.inherited and own:
                    # appending to an inherited list starts from what the process inherited
                    inherited = self._read_process(var, e, owners, now)
                    slot.items = OrderedDict((v, expires) for v in inherited)
                else:
                    slot.items = OrderedDict()
            values = value if isinstance(value, list) else [value]
            for v in values:
                slot.items.pop(v, None)
                slot.items[v] = expires
            if var.size is not None:
                while len(slot.items) > var.size:
                    slot.items.popitem(last=False)
        else:
            slot.value, slot.expires = value, expires
        return True


BUILTINS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    # a new random UUID at every read (Datadog's `${builtins.uuid4}`: a unique id for a correlation key)
    "builtins.uuid4": (STRING, lambda e: str(uuid.uuid4())),
}


class VariableTable:
    """The variables a policy set declares (by `set` actions), and their store."""

    def __init__(self) -> None:
        self.vars: dict[str, Variable] = {}
        self.store = VariableStore()

    def __contains__(self, ref: str) -> bool:
        return ref in self.vars or ref in BUILTINS

    def get(self, ref: str) -> Variable | None:
        return self.vars.get(ref)

    def reader(self, ref: str) -> tuple[str, bool, Callable[[Any], Any]] | None:
        """(type, multi, read(event)) of a variable or built-in, or None when `ref` is neither."""
        b = BUILTINS.get(ref)
        if b is not None:
            return b[0], False, b[1]
        var = self.vars.get(ref)
        if var is None:
            return None
        read = self.store.read
        return var.type, var.multi, lambda e: read(var, e)
