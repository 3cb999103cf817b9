"""The CWS event of one kernel event, resolved lazily: what rules read.

`LazyEvent` is a `model.Event` whose blocks (process, file, user, container, date, ...) are computed the
first time something reads them: the rules read a few fields of most events and match none, so an event
that matches no rule costs its few reads; the serializer reads everything of the events that match.
`LazyFile` does the same inside the `file` block: its fields are read straight from the kernel's file
(itself decoded on access), and owner names are looked up only when read.

Hot path: the properties below replace the model's slots (the parent's slot descriptors keep the values),
which keeps every reader (SECL getters, the codec) unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from opencws.model import names
from opencws.model.event import (
    BPFEvent,
    BPFMap,
    BPFProgram,
    DDContext,
    Event,
    EventContext,
    File,
    FileEvent,
    ProcessContext,
    SELinuxBoolChange,
    SELinuxBoolCommit,
    SELinuxEnforceStatus,
    SELinuxEvent,
    UserContext,
)
from opencws.probe import events as kev
from opencws.resolvers import Resolvers
from opencws.resolvers.files import UNKNOWN_ID, NameResolver, to_file
from opencws.resolvers.mounts import MS_BIND, bind_source
from opencws.resolvers.process import ProcessEntry, _container

CATEGORIES = {
    **{t: "Process Activity" for t in ("exec", "fork", "exit", "setuid", "setgid", "capset", "setgroups")},
    "selinux": "Kernel Activity",
    "bpf": "Kernel Activity",
}
_CONTEXTS: dict[tuple[str, str], EventContext] = {}


def event_context(event_type: str, outcome: str) -> EventContext:
    """Shared `evt` blocks (never modified)."""
    key = (event_type, outcome)
    c = _CONTEXTS.get(key)
    if c is None:
        c = _CONTEXTS[key] = EventContext(name=event_type, category=CATEGORIES.get(event_type, "File Activity"),
                                          outcome=outcome)
    return c


class LazyEvent(Event):
    """A block's slot stays unset until something reads it: the read misses, `__getattr__` resolves the block
    and fills the slot, and every later read is a plain slot read. Nothing is done at construction (most
    events are read a field or two by the rules and dropped). A block is what its resolver gives, never
    assigned otherwise: the serializer's cache calls the resolvers directly (`file_event_key`, `event_date`)."""

    __slots__ = ("_entry", "_k", "_r")

    def __init__(self, k: kev.KernelEvent, r: Resolvers, entry: ProcessEntry | None):
        self._k, self._r, self._entry = k, r, entry

    @property
    def kernel(self) -> kev.KernelEvent:
        return self._k

    def __getattr__(self, name: str) -> Any:
        fn = _RESOLVERS.get(name)
        if fn is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        v = fn(self)
        setattr(self, name, v)
        return v


def _retval(e: LazyEvent) -> int | None:
    return getattr(e._k, "retval", None)


def _exit_status(e: LazyEvent) -> int | None:
    return getattr(e._k, "status", None) if e._k.type == "exit" else None


def _evt(e: LazyEvent) -> EventContext:
    k = e._k
    key = (k.type, k.outcome if isinstance(k, kev.SyscallEvent) else "Success")
    c = _CONTEXTS.get(key)
    return c if c is not None else event_context(*key)


def _date(e: LazyEvent) -> int:
    return e._r.clock.wall_from_monotonic(e._k.ktime_ns)


def _process(e: LazyEvent) -> ProcessContext | None:
    entry = e._entry
    if entry is None:
        return None
    ctx = e._r.processes.context(entry, e._k.tid)
    k = e._k
    if isinstance(k, kev.CredentialsEvent):
        return _credentials_change(e, ctx, k, entry)
    if isinstance(k, kev.SetgroupsEvent) and ctx.credentials is not None:
        return replace(ctx, credentials=replace(ctx.credentials, destination={"groups": list(k.groups)}))
    return ctx


_DESTINATION = {
    "setuid": (("uid", "user", "uid"), ("euid", "euser", "euid"), ("fsuid", "fsuser", "fsuid")),
    "setgid": (("gid", "group", "gid"), ("egid", "egroup", "egid"), ("fsgid", "fsgroup", "fsgid")),
}


def _credentials_change(e: LazyEvent, ctx: ProcessContext, k: kev.CredentialsEvent,
                        entry: ProcessEntry) -> ProcessContext:
    """The process as it was before the call, with the new values in `credentials.destination`."""
    procs = e._r.processes
    before = procs.credentials(k.before, entry.root)
    after = procs.credentials(k.after, entry.root)
    if k.type == "capset":
        dest: dict[str, Any] = {"cap_effective": after.cap_effective, "cap_permitted": after.cap_permitted}
    else:
        dest = {}
        for id_name, name_name, attr in _DESTINATION[k.type]:
            dest[id_name] = getattr(after, attr)
            n = getattr(after, name_name)
            if n is not None:
                dest[name_name] = n
    return replace(ctx, uid=before.uid, gid=before.gid, user=before.user, group=before.group,
                   credentials=replace(before, destination=dest))


def _usr(e: LazyEvent) -> UserContext | None:
    p = e.process
    if p is None:
        return None
    if not (p.user or p.group):
        return None
    key = (p.user, p.group)
    u = _USERS.get(key)
    if u is None:
        if len(_USERS) > 4096:
            _USERS.clear()
        u = _USERS[key] = UserContext(id=p.user, group=p.group)
    return u


_USERS: dict[tuple[str | None, str | None], UserContext] = {}
"""Shared `usr` blocks (never modified)."""


def _container_of(e: LazyEvent) -> Any:
    entry = e._entry
    return _container(entry.container_id) if entry is not None else None


def _dd(e: LazyEvent) -> DDContext | None:
    """The span and trace the thread published (`opencws.tracing`), read by the probe at the event."""
    k = e._k
    span_id = getattr(k, "span_id", None)
    if span_id is None:
        return None
    return DDContext(span_id=span_id, trace_id=k.trace_id)


def _root(e: LazyEvent) -> str:
    entry = e._entry
    if entry is None:
        return "/"
    if entry.root != "/":
        e._r.processes.model(entry)  # a container process already gone is given a live root of its container
    return entry.root


def _selinux(e: LazyEvent) -> SELinuxEvent | None:
    k = e._k
    if not isinstance(k, kev.SelinuxEvent):
        return None
    if k.kind == "bool":
        return SELinuxEvent(bool=SELinuxBoolChange(name=k.bool_name, state=_on_off(k.value)))
    if k.kind == "commit":
        return SELinuxEvent(bool_commit=SELinuxBoolCommit(state=k.value.strip() not in ("", "0")))
    if k.kind == "enforce":
        status = {"1": "enforcing", "0": "permissive"}.get(k.value.strip(), k.value.strip() or None)
        return SELinuxEvent(enforce=SELinuxEnforceStatus(status=status))
    return None


def _on_off(value: str) -> str:
    v = value.strip()
    return {"1": "on", "0": "off"}.get(v, v)


def _bpf(e: LazyEvent) -> BPFEvent | None:
    k = e._k
    if not isinstance(k, kev.BpfEvent):
        return None
    bmap = prog = None
    if k.map_type is not None:
        bmap = BPFMap(name=k.name or None, map_type=names.value_name(names.BPF_MAP_TYPES, k.map_type))
    if k.prog_type is not None:
        prog = BPFProgram(
            name=k.name or None,
            program_type=names.value_name(names.BPF_PROGRAM_TYPES, k.prog_type),
            attach_type=(names.value_name(names.BPF_ATTACH_TYPES, k.attach_type)
                         if k.attach_type is not None else None),
            helpers=[names.value_name(names.BPF_HELPERS, h) for h in k.helpers] or None,
        )
    return BPFEvent(cmd=k.cmd_name or names.value_name(names.BPF_COMMANDS, k.cmd), map=bmap, program=prog)


def _file(e: LazyEvent) -> FileEvent | None:
    k = e._k
    info = getattr(k, "file", None)
    if info is None or k.type == "exec":
        return None
    entry = e._entry
    return LazyFile(k, info, e._r.users, "/" if entry is None or entry.root == "/" else _root(e))


def file_event_key(e: LazyEvent) -> tuple[ProcessContext | None, EventContext, str | None]:
    """What a file event's `process` and `evt` blocks are, and its container's id (its `container` block is the
    one shared block of that id), by the resolvers themselves: the same objects the blocks hold or will hold,
    without filling them (a hit of the serializer's cache of event heads reads no other block)."""
    entry = e._entry
    return _process(e), _evt(e), entry.container_id if entry is not None else None


event_date = _date
"""The event's `date` as `e.date` resolves it (without filling the block)."""


def _requested_path(k: kev.KernelEvent) -> str | None:
    """The path a rewritten string named (the decoy), beside the file the kernel acted on."""
    requested = getattr(k, "requested_file", None)
    return requested.path if requested is not None else None


_RESOLVERS: dict[str, Any] = {
    "evt": _evt, "file": _file, "selinux": _selinux, "bpf": _bpf, "usr": _usr, "process": _process, "dd": _dd,
    "container": _container_of, "date": _date, "retval": _retval, "exit_status": _exit_status,
}
"""How each block of `Event` is resolved (every public field, and `retval`)."""


class LazyFile(FileEvent):
    """The `file` block of a kernel file event; owner names and the destination are resolved when read."""

    __slots__ = ("_i", "_k", "_names", "_root", "_u")

    __setattr__ = object.__setattr__
    """Its own slots are set as plain attributes (the public fields are read-only properties: still frozen)."""

    def __init__(self, k: kev.KernelEvent, info: kev.FileInfo, users: NameResolver, root: str):
        self._k = k
        self._i = info
        self._u = users
        self._root = root
        self._names = None
        self._json = None

    path = property(lambda self: self._i.path)
    name = property(lambda self: self._i.basename or None)
    path_resolution_error = property(lambda self: self._i.path_resolution_error)
    inode = property(lambda self: self._i.inode)
    mode = property(lambda self: self._i.mode)
    in_upper_layer = property(lambda self: True if self._i.in_upper_layer else None)
    path_rewritten = property(lambda self: True if self._i.path_rewritten else None)
    requested_path = property(lambda self: _requested_path(self._k))
    mount_id = property(lambda self: self._i.mount_id or None)
    filesystem = property(lambda self: self._i.fs_type or None)
    uid = property(lambda self: _known_id(self._i, self._i.uid))
    gid = property(lambda self: _known_id(self._i, self._i.gid))
    user = property(lambda self: self._owner()[0])
    group = property(lambda self: self._owner()[1])
    attribute_name = property(lambda self: getattr(self._k, "name", None) or None
                              if isinstance(self._k, kev.SetXattrEvent | kev.RemoveXattrEvent) else None)
    attribute_namespace = property(lambda self: getattr(self._k, "namespace", None) or None
                                   if isinstance(self._k, kev.SetXattrEvent | kev.RemoveXattrEvent) else None)
    flags = property(lambda self: _flags(self._k))
    access_time = property(lambda self: self._i.access_time_ns)
    modification_time = property(lambda self: self._i.modification_time_ns)
    change_time = property(lambda self: self._i.change_time_ns)
    destination = property(lambda self: _destination(self))
    new_mount_id = property(lambda self: self._k.new_mount_id if isinstance(self._k, kev.MountEvent) else None)
    group_id = property(lambda self: self._k.group_id if isinstance(self._k, kev.MountEvent) else None)
    device = property(lambda self: self._k.device if isinstance(self._k, kev.MountEvent | kev.MknodEvent) else None)
    fstype = property(lambda self: (self._k.fs_type or (self._k.root.fs_type if self._k.root else None)) or None
                      if isinstance(self._k, kev.MountEvent) else None)
    source_path = property(lambda self: _bind_source(self._k) if isinstance(self._k, kev.MountEvent) else None)

    def _owner(self) -> tuple[str | None, str | None]:
        n = self._names
        if n is None:
            uid, gid = self.uid, self.gid
            n = (self._u.user(uid, self._root) if uid >= 0 else None,
                 self._u.group(gid, self._root) if gid >= 0 else None)
            self._names = n
        return n


def _bind_source(k: kev.MountEvent) -> str | None:
    """A bind mount's source directory, from the mountinfo of the mounting process or its parent."""
    if k.syscall != "mount" or not k.flags & MS_BIND:
        return None
    return bind_source("/proc", (k.pid, k.ppid), k.new_mount_id or 0) or None


def _known_id(info: kev.FileInfo, value: int | None) -> int:
    return value if info.inode is not None and value is not None else UNKNOWN_ID


def _flags(k: kev.KernelEvent) -> list[str] | None:
    if isinstance(k, kev.OpenEvent):
        return list(names.open_flag_names(k.flags))
    if isinstance(k, kev.UnlinkEvent | kev.RmdirEvent) and k.flags & names.AT_REMOVEDIR:
        return ["AT_REMOVEDIR"]
    return None


def _destination(f: LazyFile) -> File | None:
    k = f._k
    if isinstance(k, kev.OpenEvent):
        return File(mode=k.mode) if k.flags & names.OPEN_FLAGS["O_CREAT"] else None
    if isinstance(k, kev.ChmodEvent | kev.MkdirEvent | kev.MknodEvent):
        return File(mode=k.mode)
    if isinstance(k, kev.SymlinkEvent):
        return File(path=k.target or None)
    if isinstance(k, kev.ChownEvent):
        u = f._u
        uid, gid = k.new_uid, k.new_gid  # -1: unchanged (the decoder gives chown's ids signed)
        return File(uid=uid, gid=gid, user=u.user(uid, f._root) if uid >= 0 else None,
                    group=u.group(gid, f._root) if gid >= 0 else None)
    if isinstance(k, kev.RenameEvent | kev.LinkEvent) and k.destination is not None:
        return to_file(k.destination, f._u, f._root)
    return None
