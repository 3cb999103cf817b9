"""The SECL field registry: every field a rule may use, its type and a getter compiled from the event model.

Getters are generated Python functions (attribute chains with None checks, one function per field) so that
reading a field costs one call. A missing value reads as the type's zero value ("" / 0 / false / no values),
as in Datadog's agent. Multi-valued fields (`process.ancestors.*` iterators and lists such as `exec.argv`)
return a list and are compared with "any value matches" semantics by the compiler.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from opencws.model import names
from opencws.model.event import Event

STRING, INT, BOOL = "string", "int", "bool"

# Event types a rule can be written for (fork is not rule-visible).
EVENT_TYPES = (
    "exec", "open", "chmod", "chown", "mkdir", "rmdir", "rename", "unlink", "utimes", "link", "setxattr",
    "removexattr", "setuid", "setgid", "capset", "selinux", "bpf", "mount", "umount", "exit",
    "mknod", "symlink", "setgroups",  # OpenCWS's additions to Datadog's event types
)  # fmt: skip
# Event types of Datadog's agent that this engine's event model does not carry (a clearer error than
# "unknown field" for policies written for newer agents).
UNSUPPORTED_EVENT_TYPES = (
    "accept", "bind", "cgroup_write", "chdir", "connect", "dns", "imds", "load_module", "mmap", "mprotect",
    "network", "network_flow_monitor", "packet", "prctl", "ptrace", "raw_packet", "setrlimit", "setsockopt",
    "signal", "splice", "sysctl", "unload_module",
    "fim",  # Datadog's file-integrity events (fim.write.file.path)
    "create", "write", "set", "open_key", "create_key", "delete_key", "change_permission",  # Windows events
)  # fmt: skip

# Fields of Datadog's model whose value this agent cannot know (a rule using one is skipped with the reason,
# rather than evaluated on a made-up value): (pattern of field names, why).
_ENTRY = r"(process|exec|exit)(\.parent|\.ancestors)?"
UNAVAILABLE_FIELDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(_ENTRY + r"\.user_session\.ssh_"), "SSH user sessions are not tracked"),
    (re.compile(r"(" + _ENTRY + r"\.)?cgroup\.(?!id$|file\.inode$)"),
     "of a cgroup the agent knows its id only (cgroup.id, cgroup.file.inode)"),
    (re.compile(r"mount\.root\.path$"), "a mount's root is not captured by the probe"),
)  # fmt: skip

# Fields of Datadog's model that this agent does not track and that always read as "none" here: a rule using
# one loads (its condition evaluated on that value) with a warning saying so. On a host without Datadog's
# Kubernetes admission controller, no process has a Kubernetes user session: "" is the true value.
NOTED_FIELDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(_ENTRY + r"\.user_session\."),
     "user sessions (Kubernetes exec sessions) are not tracked: it reads as no session (empty)"),
)  # fmt: skip


def noted_reason(name: str) -> str | None:
    """Why field `name` always reads as its zero value on this agent (see NOTED_FIELDS), or None."""
    for pattern, why in NOTED_FIELDS:
        if pattern.match(name):
            return why
    return None


def unavailable_reason(name: str) -> str | None:
    """Why the agent cannot know field `name` (a Datadog field), or None."""
    for pattern, why in UNAVAILABLE_FIELDS:
        if pattern.match(name):
            return why
    return None
FILE_EVENT_TYPES = (
    "open", "chmod", "chown", "mkdir", "rmdir", "rename", "unlink", "utimes", "link", "setxattr",
    "removexattr", "mknod", "symlink",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str  # STRING, INT or BOOL (of each value when `multi`)
    getter: Callable[[Event], Any] | None  # None until first looked up (see `Registry.get`)
    event_type: str | None  # None: common to every event type (process.*, container.id)
    multi: bool = False  # several values: any/none semantics
    iterator: bool = False  # one value per ancestor (process.ancestors.*)
    path: bool = False  # a path: literal values must be absolute (or patterns)
    date: bool = False  # nanoseconds since the epoch: compared with a duration, it is an age
    cost: int = 1  # relative evaluation cost, to order && / || operands
    alias_of: str | None = None  # legacy name of another field
    source: tuple[tuple[str, ...], str] | None = None  # (attribute chain, expression): for inlining

    @property
    def canonical(self) -> str:
        """The field's own name: the target of a legacy alias, else its name."""
        return self.alias_of or self.name

    @property
    def type_name(self) -> str:
        base = {STRING: "string", INT: "integer", BOOL: "boolean"}[self.type]
        return f"{base} list" if self.multi else base


_OUTCOME_RETVAL = {"Success": 0, "Refused": -names.ERRNO["EACCES"], "Error": -1}


def retval_of(e: Event) -> int:
    """The syscall return value: `Event.retval`, else derived from `evt.outcome` (JSON events carry no
    return value): Success → 0, Refused → EACCES, i.e. -13 (it may also have been EPERM), Error → -1."""
    if e.retval is not None:
        return e.retval
    outcome = e.evt.outcome if e.evt is not None else None
    return _OUTCOME_RETVAL.get(outcome or "", 0)


_BITS_CACHE: dict[tuple[Callable[[Any], int], tuple[str, ...]], int] = {}


def _safe_bits(fn: Callable[[Any], int], flags: Iterable[str] | None) -> int:
    """Flag names → bits, memoized: events repeat a handful of flag combinations."""
    if not flags:
        return 0
    key = (fn, tuple(flags))
    bits = _BITS_CACHE.get(key)
    if bits is None:
        try:
            bits = fn(key[1])
        except (KeyError, ValueError):
            # A name this version does not know: keep the bits of the others rather than lose them all.
            bits = 0
            for n in key[1]:
                with contextlib.suppress(KeyError, ValueError):
                    bits |= fn((n,))
        if len(_BITS_CACHE) < 4096:
            _BITS_CACHE[key] = bits
    return bits


_OPEN_BITS: dict[tuple[str, ...], int] = {}


def open_bits(flags: list[str] | None) -> int:
    """open(2) flag names → bits (the hot path of `open.flags`: one tuple and one dict lookup)."""
    if not flags:
        return 0
    key = tuple(flags)
    bits = _OPEN_BITS.get(key)
    if bits is None:
        bits = _safe_bits(names.open_flag_bits, key)
        if len(_OPEN_BITS) < 4096:
            _OPEN_BITS[key] = bits
    return bits


def _safe_mask(caps: Iterable[str] | None) -> int:
    return _safe_bits(names.capability_mask, caps)


def args_flags(args: list[str] | None) -> list[str]:
    """Flags among the arguments: `-abc` gives a, b, c and abc; `--verbose` gives verbose.

    `--k=v` is an option, not a flag."""
    out: list[str] = []
    for arg in args or ():
        if len(arg) < 2 or arg[0] != "-":
            continue
        body = arg[1:]
        long = body.startswith("-")
        if long:
            body = body[1:]
        if not body or "=" in body:
            continue
        if not long and body.isalnum():
            out.extend(body)
        if long or len(body) > 1:
            out.append(body)
    return out


def args_options(args: list[str] | None) -> list[str]:
    """Options among the arguments, as `name=value`: `--name=value`, `--name value` and `-n value`."""
    out: list[str] = []
    seq = list(args or ())
    for i, arg in enumerate(seq):
        if len(arg) < 2 or arg[0] != "-":
            continue
        body = arg.lstrip("-")
        if not body:
            continue
        if "=" in body:
            out.append(body)
        elif i + 1 < len(seq) and not seq[i + 1].startswith("-"):
            out.append(f"{body}={seq[i + 1]}")
    return out


def _int_or_zero(v: Any) -> int:
    """A free-form value read as an integer field: an int (not a bool), else 0."""
    return v if type(v) is int else 0


def _str_or_empty(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _caps_or_none(v: Any) -> list[str] | None:
    """A capability list from a free-form value: only a list of strings."""
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return v
    return None


def _exit_cause(status: int | None) -> int | None:
    """EXITED (0), COREDUMPED (1) or SIGNALED (2) from a wait status; None when unknown."""
    if status is None:
        return None
    if status & 0x7F == 0:
        return 0
    return 1 if status & 0x80 else 2


def _exit_code(status: int | None) -> int | None:
    """The exit code, or the signal that ended the process."""
    if status is None:
        return None
    return (status >> 8) & 0xFF if status & 0x7F == 0 else status & 0x7F


def _event_container(e: Any) -> Any:
    """The event's container, else its process's."""
    c = e.container
    if c is None or not c.id:
        p = e.process
        c = p.container if p is not None else None
    return c


def _container_created(e: Any) -> int:
    """The creation time of the event's container (the agent's: its first process's start), else 0."""
    c = _event_container(e)
    return (c.created_at or 0) if c is not None else 0


def _service(e: Any) -> str:
    """The service of the event's process: its `DD_SERVICE` environment variable (the agent's entries keep the
    full environment; a stored event has the names only, and reads "")."""
    p = e.process
    envp = p.envp if p is not None else None
    if not envp:
        return ""
    i = envp.find("DD_SERVICE=")
    while i > 0 and envp[i - 1] != "\0":
        i = envp.find("DD_SERVICE=", i + 1)
    if i < 0:
        return ""
    j = envp.find("\0", i)
    return envp[i + 11: j if j >= 0 else len(envp)]


def _container_tags(e: Any) -> list[str]:
    c = _event_container(e)
    return (c.tags or []) if c is not None else []


def _basename(path: str | None) -> str | None:
    return posixpath.basename(path) if path else None


def _extension(name: str | None) -> str:
    """A file name's extension with its dot, from the last dot (`.gz` of `a.tar.gz`; a name without a dot has
    none), as Datadog's `file.extension`."""
    if not name:
        return ""
    i = name.rfind(".")
    return name[i:] if i >= 0 else ""


_ENV: dict[str, Any] = {
    "capability_mask": _safe_mask,
    "open_bits": open_bits,
    "unlink_bits": lambda f: _safe_bits(names.unlink_flag_bits, f),
    "name_value": names.name_value,
    "BPF_COMMANDS": names.BPF_COMMANDS,
    "BPF_MAP_TYPES": names.BPF_MAP_TYPES,
    "BPF_PROGRAM_TYPES": names.BPF_PROGRAM_TYPES,
    "BPF_ATTACH_TYPES": names.BPF_ATTACH_TYPES,
    "BPF_HELPERS": names.BPF_HELPERS_READ,
    "args_flags": args_flags,
    "args_options": args_options,
    "basename": _basename,
    "container_created": _container_created,
    "exit_cause": _exit_cause,
    "exit_code": _exit_code,
    "extension": _extension,
    "int_or_zero": _int_or_zero,
    "str_or_empty": _str_or_empty,
    "caps_or_none": _caps_or_none,
    "retval_of": retval_of,
    "service": _service,
    "container_tags": _container_tags,
}

_ZERO = {STRING: "''", INT: "0", BOOL: "False"}


# Chain steps that are expressions rather than attributes.
_STEPS = {
    # The parent entry, else the nearest ancestor (the same process by the spec's conventions).
    "@parent": "o.parent if o.parent is not None else (o.ancestors[0] if o.ancestors else None)",
}


def _step(attr: str) -> str:
    return _STEPS[attr] if attr.startswith("@") else f"o.{attr}"


def _walk(chain: tuple[str, ...], default: str, indent: str = "    ") -> list[str]:
    lines = []
    for attr in chain:
        lines.append(f"{indent}o = {_step(attr)}")
        lines.append(f"{indent}if o is None: return {default}")
    return lines


class InlineReader:
    """Generates statements reading fields from event `e` without calls, for generated matchers. Objects
    along attribute chains are computed once and shared by the fields that need them (`e.process`,
    `e.process.executable`, ...)."""

    def __init__(self, indent: str = "    ") -> None:
        self.indent = indent
        self.chains: dict[tuple[str, ...], str] = {}
        self.lines: list[str] = []

    def chain(self, chain: tuple[str, ...]) -> str:
        cur = "e"
        for k in range(1, len(chain) + 1):
            key = chain[:k]
            name = self.chains.get(key)
            if name is None:
                name = f"_c{len(self.chains)}"
                step = _O.sub(cur, _step(chain[k - 1]))
                guard = "" if cur == "e" else f"None if {cur} is None else "
                self.lines.append(f"{self.indent}{name} = {guard}({step})")
                self.chains[key] = name
            cur = name
        return cur

    def read(self, chain: tuple[str, ...], expr: str, typ: str, target: str) -> list[str]:
        """Statements setting `target` to the field's value (its zero value when missing)."""
        self.lines = []
        obj = self.chain(chain)
        zero = _ZERO[typ]
        value = _O.sub(obj, expr)
        i = self.indent
        if obj == "e":
            self.lines.append(f"{i}{target} = {value}")
        else:
            self.lines.append(f"{i}{target} = {zero} if {obj} is None else ({value})")
        self.lines.append(f"{i}if {target} is None:")
        self.lines.append(f"{i}    {target} = {zero}")
        return self.lines


GETTER_ENV = _ENV
_O = re.compile(r"(?<![\w.])o\b")


def inline_expr(chain: tuple[str, ...], expr: str, typ: str, tag: str) -> str:
    """A field's value from event `e` as one Python *expression* (assignment expressions walk the chain),
    for rules compiled to source. Names are suffixed with `tag` to stay distinct."""
    zero = _ZERO[typ]
    cur = "e"
    steps = []
    for k, attr in enumerate(chain):
        name = f"_o{tag}_{k}"
        steps.append((name, _O.sub(cur, _step(attr))))
        cur = name
    value = f"_v{tag}"
    inner = f"({zero} if ({value} := {_O.sub(cur, expr)}) is None else {value})"
    for name, step in reversed(steps):
        inner = f"({zero} if ({name} := {step}) is None else {inner})"
    return inner


def make_getter(
    chain: tuple[str, ...], expr: str, typ: str, *, multi: bool = False
) -> Callable[[Event], Any]:
    """Generate `get(e)`: walk `chain` from the event (None → zero value), then evaluate `expr` on `o`."""
    default = "()" if multi else _ZERO[typ]
    lines = [
        "def get(e):",
        "    o = e",
        *_walk(chain, default),
        f"    v = {expr}",
        f"    return {default} if v is None else v",
    ]
    env = dict(_ENV)
    exec("\n".join(lines), env)
    return env["get"]


ITER_CACHE_SIZE = 1024


def make_iter_getter(
    list_chain: tuple[str, ...], chain: tuple[str, ...], expr: str, typ: str, *, multi: bool = False
) -> Callable[[Event], Any]:
    """Generate `get(e)` returning one value per item of the list at `list_chain` (ancestors).

    Ancestor entries are frozen and a process's ancestor list is shared by all its events, so the values
    are memoized per list object (checked by identity, length and last entry, the list being held by
    the cache so that its id cannot be reused). The returned list must not be modified."""
    zero = _ZERO[typ]
    lines = [
        "def get(e):",
        "    o = e",
        *_walk(list_chain, "()"),
        "    if not o:",
        "        return ()",
        "    lst = o",
        "    c = cache.get(id(lst))",
        "    if c is not None and c[0] is lst and c[1] == len(lst) and c[2] is lst[-1]:",
        "        return c[3]",
        "    out = []",
        "    for o in lst:",
    ]
    body = []
    for attr in chain:
        body.append(f"o = {_step(attr)}")
        body.append("if o is None:")
        body.append(f"    {'pass' if multi else f'out.append({zero})'}")
        body.append("    continue")
    body.append(f"v = {expr}")
    if multi:
        body.append("if v: out.extend(v)")
    else:
        body.append(f"out.append({zero} if v is None else v)")
    lines += ["        " + b for b in body]
    lines += [
        f"    if len(cache) >= {ITER_CACHE_SIZE}:",
        "        cache.clear()",
        "    cache[id(lst)] = (lst, len(lst), lst[-1], out)",
        "    return out",
    ]
    env = dict(_ENV)
    env["cache"] = {}
    exec("\n".join(lines), env)
    return env["get"]


# (suffix, type, chain from the File object, expression on `o`, options)
_FILE_FIELDS: list[tuple[str, str, tuple[str, ...], str, dict[str, Any]]] = [
    ("path", STRING, (), "o.path", {"path": True}),
    ("name", STRING, (), "o.name or basename(o.path)", {}),
    ("path.length", INT, (), "len(o.path) if o.path else 0", {}),
    ("name.length", INT, (), "len(o.name or basename(o.path) or '')", {}),
    ("extension", STRING, (), "extension(o.name or basename(o.path))", {}),
    ("filesystem", STRING, (), "o.filesystem", {}),
    ("inode", INT, (), "o.inode", {}),
    ("mode", INT, (), "o.mode", {}),
    ("rights", INT, (), "None if o.mode is None else o.mode & 0o7777", {}),
    ("uid", INT, (), "o.uid", {}),
    ("gid", INT, (), "o.gid", {}),
    ("user", STRING, (), "o.user", {}),
    ("group", STRING, (), "o.group", {}),
    ("mount_id", INT, (), "o.mount_id", {}),
    ("in_upper_layer", BOOL, (), "o.in_upper_layer", {}),
    ("change_time", INT, (), "o.change_time", {"date": True}),
    ("modification_time", INT, (), "o.modification_time", {"date": True}),
]
_FILE_LEGACY = {"filename": "path", "basename": "name"}

# Fields of a process entry (ProcessCacheEntry): (suffix, type, chain, expression, options)
_PROCESS_FIELDS: list[tuple[str, str, tuple[str, ...], str, dict[str, Any]]] = [
    ("pid", INT, (), "o.pid", {}),
    ("ppid", INT, (), "o.ppid", {}),
    ("tid", INT, (), "o.tid", {}),
    ("uid", INT, (), "o.uid if o.credentials is None else o.credentials.uid", {}),
    ("gid", INT, (), "o.gid if o.credentials is None else o.credentials.gid", {}),
    (
        "user",
        STRING,
        (),
        "o.credentials.user if o.credentials is not None and o.credentials.user else o.user",
        {},
    ),
    (
        "group",
        STRING,
        (),
        "o.credentials.group if o.credentials is not None and o.credentials.group else o.group",
        {},
    ),
    ("euid", INT, ("credentials",), "o.euid", {}),
    ("egid", INT, ("credentials",), "o.egid", {}),
    ("fsuid", INT, ("credentials",), "o.fsuid", {}),
    ("fsgid", INT, ("credentials",), "o.fsgid", {}),
    ("euser", STRING, ("credentials",), "o.euser", {}),
    ("egroup", STRING, ("credentials",), "o.egroup", {}),
    ("fsuser", STRING, ("credentials",), "o.fsuser", {}),
    ("fsgroup", STRING, ("credentials",), "o.fsgroup", {}),
    ("cap_effective", INT, ("credentials",), "capability_mask(o.cap_effective)", {}),
    ("cap_permitted", INT, ("credentials",), "capability_mask(o.cap_permitted)", {}),
    ("comm", STRING, (), "o.comm", {}),
    # argv[0] as the program was started with it (not serialized: the agent's entries carry it; a stored event
    # has none, and reads "")
    ("argv0", STRING, (), "o.argv0", {}),
    ("tty_name", STRING, (), "o.tty", {}),
    # the cgroup (v2) the process runs in, as the agent's entries know it (not in the CWS event): its id is the
    # cgroup directory's inode; `cgroup.id` is that number as text (Datadog's is the cgroup's name)
    ("cgroup.id", STRING, (), "str(o.cgroup_id) if o.cgroup_id else ''", {}),
    ("cgroup.file.inode", INT, (), "o.cgroup_id", {}),
    # the login uid (not in the CWS event: a stored event has none, and reads as unset, 4294967295)
    ("auid", INT, (), "4294967295 if o.auid is None else o.auid", {}),
    ("created_at", INT, (), "o.exec_time or o.fork_time", {"date": True}),
    ("container.id", STRING, ("container",), "o.id", {}),
    # Kubernetes user sessions: not tracked (NOTED_FIELDS), no session
    ("user_session.id", STRING, (), "''", {}),
    ("user_session.identity", STRING, (), "''", {}),
    ("user_session.session_type", INT, (), "0", {}),
    ("user_session.k8s_username", STRING, (), "''", {}),
    ("user_session.k8s_uid", STRING, (), "''", {}),
    ("user_session.k8s_groups", STRING, (), "()", {"multi": True}),
    ("args", STRING, (), "' '.join(o.args) if o.args else ''", {"cost": 3}),
    ("argv", STRING, (), "o.args", {"multi": True}),
    ("args_flags", STRING, (), "args_flags(o.args)", {"multi": True, "cost": 6}),
    ("args_options", STRING, (), "args_options(o.args)", {"multi": True, "cost": 6}),
    ("args_truncated", BOOL, (), "o.args_truncated", {}),
    (
        "envs",
        STRING,
        (),
        "[x.split('=', 1)[0] for x in o.envs] if o.envs else ()",
        {"multi": True, "cost": 4},
    ),
    # the agent's entries keep the full pairs apart (`envp`); a stored event has `envs` only
    ("envp", STRING, (), "(o.envp.split('\\0') if o.envp else ()) if o.envp is not None else o.envs",
     {"multi": True}),
    ("envs_truncated", BOOL, (), "o.envs_truncated", {}),
]
# As Datadog's legacy field table: `process.name` is the command name (`process.comm`).
_PROCESS_LEGACY = {"name": "comm", "filename": "file.path", "basename": "file.name"}


class Registry:
    """All fields by name, with their legacy aliases."""

    def __init__(self) -> None:
        self.fields: dict[str, Field] = {}
        # Getters are generated on first use (`get`): most of the ~500 fields are never used by a policy.
        self._builders: dict[str, Callable[[], Callable[[Event], Any]]] = {}
        # Iterator fields: how to read one value from one item (an ancestor), for registers (`[A]`).
        self._entry_specs: dict[str, tuple[tuple[str, ...], str, str, bool]] = {}
        self._entry_getters: dict[str, Callable[[Any], Any]] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.fields

    def get(self, name: str) -> Field | None:
        f = self.fields.get(name)
        if f is not None and f.getter is None:
            f = dataclasses.replace(f, getter=self._builders[name]())
            self.fields[name] = f
        return f

    def entry_getter(self, name: str) -> Callable[[Any], Any]:
        """For an iterator field (`process.ancestors.file.name`), a getter of its value on one item."""
        f = self.fields[name]
        canonical = f.canonical
        g = self._entry_getters.get(canonical)
        if g is None:
            chain, expr, typ, multi = self._entry_specs[canonical]
            g = make_getter(chain, expr, typ, multi=multi)
            self._entry_getters[canonical] = g
        return g

    def entry_multi(self, name: str) -> bool:
        """Whether an iterator field has several values per item (`process.ancestors.argv`)."""
        return self._entry_specs[self.fields[name].canonical][3]

    def names(self, event_type: str | None = None) -> list[str]:
        return sorted(
            n for n, f in self.fields.items() if event_type is None or f.event_type in (None, event_type)
        )

    def add(
        self, name: str, typ: str, chain: tuple[str, ...], expr: str, event_type: str | None, **opt: Any
    ) -> None:
        multi = bool(opt.get("multi"))
        self._builders[name] = lambda: make_getter(chain, expr, typ, multi=multi)
        cost = opt.get("cost", 1) + len(chain) // 2
        self.fields[name] = Field(
            name, typ, None, event_type, multi=multi, path=bool(opt.get("path")),
            date=bool(opt.get("date")), cost=cost, source=(chain, expr),
        )  # fmt: skip

    def alias(self, legacy: str, target: str) -> None:
        self.fields[legacy] = dataclasses.replace(
            self.fields[target], name=legacy, alias_of=target, getter=None
        )
        self._builders[legacy] = lambda: self.get(target).getter  # type: ignore[union-attr,return-value]

    def add_file(self, prefix: str, chain: tuple[str, ...], event_type: str | None) -> None:
        for suffix, typ, sub, expr, opt in _FILE_FIELDS:
            self.add(f"{prefix}.{suffix}", typ, chain + sub, expr, event_type, **opt)

    def add_process(self, prefix: str, chain: tuple[str, ...], event_type: str | None) -> None:
        for suffix, typ, sub, expr, opt in _PROCESS_FIELDS:
            self.add(f"{prefix}.{suffix}", typ, chain + sub, expr, event_type, **opt)
        self.add_file(f"{prefix}.file", (*chain, "executable"), event_type)
        for legacy, target in _PROCESS_LEGACY.items():
            self.alias(f"{prefix}.{legacy}", f"{prefix}.{target}")

    def add_ancestors(self, prefix: str, list_chain: tuple[str, ...]) -> None:
        specs = [(s, t, c, e, o) for s, t, c, e, o in _PROCESS_FIELDS]
        specs += [("file." + s, t, ("executable", *c), e, o) for s, t, c, e, o in _FILE_FIELDS]
        for suffix, typ, sub, expr, opt in specs:
            name = f"{prefix}.{suffix}"
            self._builders[name] = functools.partial(
                make_iter_getter, list_chain, sub, expr, typ, multi=bool(opt.get("multi"))
            )
            self._entry_specs[name] = (sub, expr, typ, bool(opt.get("multi")))
            self.fields[f"{prefix}.{suffix}"] = Field(
                name, typ, None, None, multi=True, iterator=True,
                path=bool(opt.get("path")),
                date=bool(opt.get("date")), cost=10 + opt.get("cost", 1),
            )  # fmt: skip
        for legacy, target in _PROCESS_LEGACY.items():
            self.alias(f"{prefix}.{legacy}", f"{prefix}.{target}")


def build_registry() -> Registry:
    r = Registry()
    # Common to every event type.
    r.add_process("process", ("process",), None)
    r.add_process("process.parent", ("process", "@parent"), None)
    r.add_ancestors("process.ancestors", ("process", "ancestors"))
    r.add(
        "container.id",
        STRING,
        (),
        "(e.container.id if e.container is not None and e.container.id else "
        "(e.process.container.id if e.process is not None and e.process.container is not None else None))",
        None,
    )
    # Where the event comes from: this agent's events all come from its eBPF probe (Datadog's agent also has
    # "ebpfless", ptrace-based, origins).
    r.add("event.origin", STRING, (), "'ebpf'", None)
    r.add("container.created_at", INT, (), "container_created(o)", None, date=True)
    # the service (DD_SERVICE of the process; Datadog also reads a container's service tag, not resolved here)
    r.add("event.service", STRING, (), "service(o)", None, cost=3)
    # the agent's: read from the container runtime's files (image, names, pod); a stored event has none
    r.add("container.tags", STRING, (), "container_tags(o)", None, multi=True, cost=2)
    r.alias("cgroup.id", "process.cgroup.id")
    r.alias("cgroup.file.inode", "process.cgroup.file.inode")
    # Process events: the fields of the new (exec) or exiting process.
    r.add_process("exec", ("process",), "exec")
    r.add_process("exit", ("process",), "exit")
    # how it ended, from the wait status the agent's exit events carry (a stored event has none: 0, EXITED)
    r.add("exit.cause", INT, (), "exit_cause(o.exit_status)", "exit")
    r.add("exit.code", INT, (), "exit_code(o.exit_status)", "exit")
    # File events.
    for t in FILE_EVENT_TYPES:
        r.add_file(f"{t}.file", ("file",), t)
        r.add(f"{t}.retval", INT, (), "retval_of(e)", t)
        for legacy, target in _FILE_LEGACY.items():
            r.alias(f"{t}.{legacy}", f"{t}.file.{target}")
    r.add("open.flags", INT, ("file",), "open_bits(o.flags)", "open")
    r.add("open.file.destination.mode", INT, ("file", "destination"), "o.mode", "open")
    r.alias("open.mode", "open.file.destination.mode")
    for t in ("chmod", "mkdir", "mknod"):
        r.add(f"{t}.file.destination.mode", INT, ("file", "destination"), "o.mode", t)
        r.add(f"{t}.file.destination.rights", INT, ("file", "destination"),
              "None if o.mode is None else o.mode & 0o7777", t)  # fmt: skip
        r.alias(f"{t}.mode", f"{t}.file.destination.mode")
    for suffix, typ in (("uid", INT), ("gid", INT), ("user", STRING), ("group", STRING)):
        r.add(f"chown.file.destination.{suffix}", typ, ("file", "destination"), f"o.{suffix}", "chown")
        r.alias(f"chown.{suffix}", f"chown.file.destination.{suffix}")
    for t, (old, new) in (("rename", ("old", "new")), ("link", ("source", "target"))):
        r.add_file(f"{t}.file.destination", ("file", "destination"), t)
        for legacy, target in _FILE_LEGACY.items():
            r.alias(f"{t}.{old}.{legacy}", f"{t}.file.{target}")
            r.alias(f"{t}.{new}.{legacy}", f"{t}.file.destination.{target}")
    r.add("unlink.flags", INT, ("file",), "unlink_bits(o.flags)", "unlink")
    # OpenCWS's additions: a path string rewritten by another thread during the call (the kernel acted on another file
    # than the string named when the probe read it): the flag, and the path the string named (the decoy)
    for t in FILE_EVENT_TYPES:
        r.add(f"{t}.file.path_rewritten", BOOL, ("file",), "o.path_rewritten", t)
        r.add(f"{t}.file.requested_path", STRING, ("file",), "o.requested_path", t, path=True)
    # OpenCWS's additions: mknod's device number (file.device), a symlink's target as given (file.destination.path),
    # the supplementary groups after setgroups (credentials.destination.groups)
    r.add("mknod.file.device", INT, ("file",), "o.device", "mknod")
    r.add("symlink.file.destination.path", STRING, ("file", "destination"), "o.path", "symlink")
    r.add("setgroups.groups", INT, ("process", "credentials", "destination"),
          "[int_or_zero(g) for g in o.get('groups') or ()]", "setgroups", multi=True)
    r.add("setgroups.retval", INT, (), "retval_of(e)", "setgroups")
    for t in ("setxattr", "removexattr"):
        for suffix, attr in (("name", "attribute_name"), ("namespace", "attribute_namespace")):
            expr = f"o.destination.{attr} if o.destination is not None and o.destination.{attr} else o.{attr}"
            r.add(f"{t}.file.destination.{suffix}", STRING, ("file",), expr, t)
            r.alias(f"{t}.{suffix}", f"{t}.file.destination.{suffix}")
    # Credentials changes: the new values are in process.credentials.destination.
    dest = ("process", "credentials", "destination")
    for t, ids in (("setuid", ("uid", "euid", "fsuid")), ("setgid", ("gid", "egid", "fsgid"))):
        for i in ids:
            r.add(f"{t}.{i}", INT, dest, f"int_or_zero(o.get({i!r}))", t)
        for n in ("user", "euser", "fsuser") if t == "setuid" else ("group", "egroup", "fsgroup"):
            r.add(f"{t}.{n}", STRING, dest, f"str_or_empty(o.get({n!r}))", t)
    # `credentials.destination` is free-form in the schema: odd values read as the zero value.
    for n in ("cap_effective", "cap_permitted"):
        r.add(f"capset.{n}", INT, dest, f"capability_mask(caps_or_none(o.get({n!r})))", "capset")
    # SELinux.
    r.add("selinux.bool.name", STRING, ("selinux", "bool"), "o.name", "selinux")
    r.add("selinux.bool.state", STRING, ("selinux", "bool"), "o.state", "selinux")
    r.add("selinux.bool_commit.state", BOOL, ("selinux", "bool_commit"), "o.state", "selinux")
    r.add("selinux.enforce.status", STRING, ("selinux", "enforce"), "o.status", "selinux")
    # BPF: names in events, numbers in rules.
    r.add("bpf.cmd", INT, ("bpf",), "name_value(BPF_COMMANDS, o.cmd)", "bpf")
    r.add("bpf.retval", INT, (), "retval_of(e)", "bpf")
    r.add("bpf.map.name", STRING, ("bpf", "map"), "o.name", "bpf")
    r.add("bpf.map.type", INT, ("bpf", "map"), "name_value(BPF_MAP_TYPES, o.map_type)", "bpf")
    r.add("bpf.prog.name", STRING, ("bpf", "program"), "o.name", "bpf")
    r.add("bpf.prog.type", INT, ("bpf", "program"), "name_value(BPF_PROGRAM_TYPES, o.program_type)", "bpf")
    r.add(
        "bpf.prog.attach_type", INT, ("bpf", "program"), "name_value(BPF_ATTACH_TYPES, o.attach_type)", "bpf"
    )
    helpers = "[name_value(BPF_HELPERS, h) for h in o.helpers] if o.helpers else ()"
    r.add("bpf.prog.helpers", INT, ("bpf", "program"), helpers, "bpf", multi=True, cost=3)
    # Mounts.
    r.add("mount.mountpoint.path", STRING, ("file",), "o.path", "mount", path=True)
    r.add("mount.fs_type", STRING, ("file",), "o.fstype", "mount")
    # of a bind mount, the directory it shows (the agent's, from mountinfo; a stored event has none)
    r.add("mount.source.path", STRING, ("file",), "o.source_path", "mount", path=True)
    r.add("mount.retval", INT, (), "retval_of(e)", "mount")
    r.add("umount.retval", INT, (), "retval_of(e)", "umount")
    return r


REGISTRY = build_registry()
