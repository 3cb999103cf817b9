"""The process cache: every process of the machine, from a `/proc` snapshot at start, then kept by the
probe's fork, exec, exit and credential events.

Each process is a `ProcessEntry` (mutable, the cache's own) that hands out frozen model values, built once
and shared: its `ProcessCacheEntry`, and its ancestors list (parent first, up to pid 1, never the process
itself) which is one list object reused by every event of the process (SECL memoizes iterator fields per
list object). A change (exec, credentials, exit, reparenting) makes new values; the children's ancestor
lists notice it because each is keyed on the identity of its parent's values.

Identity: a pid names a process only together with its start time (CLOCK_BOOTTIME ns). A fork or an exec
whose start time differs from the cached entry's is a new process on a reused pid (its exit was lost).
Reparenting: every event carries its process's current parent (`ppid` in the record header); when it
differs from the cache, the entry moves under that parent (pid 1 or a subreaper).
Exits: an exited entry leaves the live table at once but stays reachable for `EXITED_GRACE` more batches
(events of its other threads read in the same batch still find it), then lives on only while an event,
or a child's ancestor list, holds it.
Bounded: beyond `max_size` live entries, the least recently used are evicted (counted); a later event of
an evicted process reads `/proc` again.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from opencws.model import names
from opencws.model.event import (
    ContainerContext,
    File,
    ProcessCacheEntry,
    ProcessContext,
    ProcessCredentials,
)
from opencws.probe import events as kev
from opencws.probe.procfs import AUDIT_AUID_UNSET, CLK_TCK, ProcessSnapshot, read_loginuid, read_process
from opencws.resolvers.container_tags import ContainerTags
from opencws.resolvers.files import ExecutableFiles, NameResolver
from opencws.resolvers.mounts import MountTable

_NO_ANCESTORS: list[ProcessCacheEntry] = []
"""The ancestors of a process with no known parent (one object, never modified)."""

EXITED_GRACE = 2
"""Batches an exited entry stays findable by pid (late events of its other threads)."""


class Clock(Protocol):
    def wall_from_monotonic(self, ns: int) -> int: ...
    def wall_from_boottime(self, ns: int) -> int: ...


@dataclass(frozen=True, slots=True)
class ArgsPolicy:
    """Bounds and scrubbing of `args` and `envs` in events."""

    max_args: int = 128
    max_arg_bytes: int = 4096
    max_envs: int = 256
    scrub: Callable[[list[str]], list[str]] | None = None


def bound_args(argv: list[str], truncated: bool, policy: ArgsPolicy) -> tuple[list[str], bool]:
    """`args` of an event: argv after argv[0], at most `max_args` and `max_arg_bytes` in all (a longer last
    argument is cut), scrubbed; truncated when the kernel or these bounds cut something."""
    args = argv[1:]
    if len(args) > policy.max_args:
        args, truncated = args[: policy.max_args], True
    total = 0
    for i, a in enumerate(args):
        total += len(a)
        if total > policy.max_arg_bytes:
            keep = len(a) - (total - policy.max_arg_bytes)
            args, truncated = [*args[:i], a[:keep]] if keep > 0 else args[:i], True
            break
    if policy.scrub is not None and args:
        args = policy.scrub(args)
    return args, truncated


def env_names(envp: list[str], truncated: bool, policy: ArgsPolicy) -> tuple[list[str], bool]:
    """Names interned: the same few dozen names recur in every process of the cache (2 KB a process saved)."""
    out = [sys.intern(e.split("=", 1)[0]) for e in envp[: policy.max_envs]]
    return out, truncated or len(envp) > policy.max_envs


@dataclass(slots=True, eq=False)
class ProcessEntry:
    pid: int
    ppid: int
    start_time_ns: int
    """CLOCK_BOOTTIME ns: with the pid, what identifies the process."""
    comm: str
    tty: str
    creds: kev.Credentials
    executable: File | None
    args: list[str] | None
    args_truncated: bool
    envp: str
    """Full `NAME=value` pairs joined by NUL, for SECL's `process.envp`; events carry the names only."""
    envs: list[str] | None
    envs_truncated: bool
    container_id: str | None
    cgroup_id: int
    """The cgroup v2 id the container id was found for (a process that stays in it stays in the container)."""
    root: str
    """Where the process's user and group names are looked up (its own root when in a container)."""
    fork_time: int | None = None
    exec_time: int | None = None
    exit_time: int | None = None
    parent: ProcessEntry | None = None
    from_procfs: bool = False
    argv0: str = ""
    """argv[0] as the program was started (events carry `args`, after it), for SECL's `process.argv0`."""
    auid: int = AUDIT_AUID_UNSET
    """The login uid (SECL's `process.auid`): read from /proc at the snapshot and at exec while the process
    lives, else inherited from the parent (a process that set it and exited before the agent read it shows
    its parent's)."""
    _model: ProcessCacheEntry | None = field(default=None, repr=False)
    _ancestors: list[ProcessCacheEntry] | None = field(default=None, repr=False)
    _anc_key: tuple[Any, Any] | None = field(default=None, repr=False)
    _anc_generation: int = field(default=-1, repr=False)
    _context: ProcessContext | None = field(default=None, repr=False)
    _context_key: tuple[Any, Any] | None = field(default=None, repr=False)
    _threads: dict[int, tuple[Any, Any, Any]] | None = field(default=None, repr=False)
    """The `process` blocks of its other threads (bounded)."""

    @property
    def exe_path(self) -> str | None:
        f = self.executable
        return f.path if f is not None and f.path_resolution_error is None else None

    def changed(self) -> None:
        self._model = None


class ProcessCache:
    def __init__(self, users: NameResolver, clock: Clock, *,
                 container_of_event: Callable[[int, int, str], str | None] = lambda pid, cgid, name: None,
                 container_of_proc: Callable[[ProcessSnapshot], str | None] = lambda snap: None,
                 args_policy: ArgsPolicy | None = None, max_size: int = 65536, proc: str = "/proc",
                 mounts: MountTable | None = None, container_tags: Callable[[str], list[str]] | None = None):
        """`container_tags(id)`: a container's tags, asked once per container (`ContainerTags.tags`)."""
        self.users = users
        self.mounts = mounts or MountTable(proc)
        self.container_tags = container_tags or ContainerTags().tags
        self.clock = clock
        self.container_of_event = container_of_event
        self.container_of_proc = container_of_proc
        self.args_policy = args_policy or ArgsPolicy()
        self.max_size = max_size
        self.proc = proc
        self.executables = ExecutableFiles(users)
        self._live: OrderedDict[int, ProcessEntry] = OrderedDict()
        self._exited: list[dict[int, ProcessEntry]] = [{} for _ in range(EXITED_GRACE)]
        self._cred_names: dict[tuple, ProcessCredentials] = {}
        self._missing: set[int] = set()
        self._envps: dict[str, str] = {}
        self.generation = 0
        """Bumped by every change an ancestors list can show (exec, exit, credentials, reparenting, names):
        until then, a process's list is known valid without walking up its tree."""
        self.evictions = 0
        self.procfs_reads = 0
        self.reused_pids = 0
        self.reparented = 0
        self.swept = 0

    # -- reading ------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._live)

    def get(self, pid: int, *, read_proc: bool = True) -> ProcessEntry | None:
        """The process `pid` as the cache knows it (recently exited included); else, once, from /proc."""
        e = self._live.get(pid)
        if e is not None:
            return e
        for gen in self._exited:
            e = gen.get(pid)
            if e is not None:
                return e
        if not read_proc or pid in self._missing:
            return None
        snap = read_process(pid, Path(self.proc))
        if snap is None:
            self._missing.add(pid)  # gone: not looked for again in this batch
            return None
        self.procfs_reads += 1
        return self._add_snapshot(snap, link=True)

    def executable(self, pid: int) -> str | None:
        """The executable path of a live process as the events told it (for the kernel filters)."""
        e = self.get(pid, read_proc=False)
        return e.exe_path if e is not None else None

    def for_event(self, event: kev.KernelEvent) -> ProcessEntry | None:
        """The entry of an event's process, following a reparenting the event's header shows."""
        e = self._live.get(event.pid)
        if e is None:
            e = self.get(event.pid)
        if e is not None and e.ppid != event.ppid and e.exit_time is None and event.ppid:
            self._reparent(e, event.ppid)
        return e

    # -- model values -------------------------------------------------------------------------------------

    def model(self, e: ProcessEntry) -> ProcessCacheEntry:
        m = e._model
        if m is None:
            if e.root != "/" and not os.path.isdir(e.root):
                e.root = self._container_root(e)
            creds = self.credentials(e.creds, e.root)
            m = e._model = ProcessCacheEntry(
                pid=e.pid, ppid=e.ppid, tid=e.pid, uid=e.creds.uid, gid=e.creds.gid, user=creds.user,
                group=creds.group, comm=e.comm, tty=e.tty or None, fork_time=e.fork_time,
                exec_time=e.exec_time, exit_time=e.exit_time, credentials=creds, executable=e.executable,
                container=_container(e.container_id), args=e.args, args_truncated=e.args_truncated or None,
                envs=e.envs, envs_truncated=e.envs_truncated or None, envp=e.envp, argv0=e.argv0,
                cgroup_id=e.cgroup_id or None, auid=e.auid,
            )  # fmt: skip
        return m

    def ancestors(self, e: ProcessEntry) -> list[ProcessCacheEntry]:
        """Parent first, up to pid 1 (or the oldest known); one shared list until something changes."""
        if e._anc_generation == self.generation:
            return e._ancestors  # type: ignore[return-value]
        p = e.parent
        if p is None:
            return _NO_ANCESTORS
        parent_model = self.model(p)
        parent_anc = self.ancestors(p)
        key = (parent_model, parent_anc)
        if e._anc_key is None or e._anc_key[0] is not parent_model or e._anc_key[1] is not parent_anc:
            e._ancestors = [parent_model, *parent_anc]
            e._anc_key = key
        e._anc_generation = self.generation
        return e._ancestors  # type: ignore[return-value]

    def context(self, e: ProcessEntry, tid: int) -> ProcessContext:
        """The `process` block of an event of thread `tid` (the leader's is kept and reused)."""
        m = self.model(e)
        anc = self.ancestors(e)
        if tid == e.pid:
            if e._context is not None and e._context_key is not None \
                    and e._context_key[0] is m and e._context_key[1] is anc:
                return e._context
        elif e._threads is not None:
            hit = e._threads.get(tid)
            if hit is not None and hit[1] is m and hit[2] is anc:
                return hit[0]
        values = {f: getattr(m, f) for f in _ENTRY_FIELDS}
        values["tid"] = tid
        ctx = ProcessContext(**values, parent=anc[0] if anc else None, ancestors=anc or None)
        if tid == e.pid:
            e._context, e._context_key = ctx, (m, anc)
        else:
            if e._threads is None or len(e._threads) >= 64:
                e._threads = {}
            e._threads[tid] = (ctx, m, anc)
        return ctx

    def credentials(self, c: kev.Credentials, root: str) -> ProcessCredentials:
        key = (c.uid, c.gid, c.euid, c.egid, c.fsuid, c.fsgid, c.cap_effective, c.cap_permitted, root)
        pc = self._cred_names.get(key)
        if pc is None:
            u, g = self.users.user, self.users.group
            pc = ProcessCredentials(
                uid=c.uid, user=u(c.uid, root), gid=c.gid, group=g(c.gid, root),
                euid=c.euid, euser=u(c.euid, root), egid=c.egid, egroup=g(c.egid, root),
                fsuid=c.fsuid, fsuser=u(c.fsuid, root), fsgid=c.fsgid, fsgroup=g(c.fsgid, root),
                cap_effective=list(names.capability_names(c.cap_effective)),
                cap_permitted=list(names.capability_names(c.cap_permitted)),
            )  # fmt: skip
            if len(self._cred_names) > 4096:
                self._cred_names.clear()
            self._cred_names[key] = pc
        return pc

    def refresh_names(self) -> None:
        """User or group files changed: names are looked up again."""
        self._cred_names.clear()
        self.generation += 1
        for e in self._live.values():
            e.changed()

    # -- snapshot -----------------------------------------------------------------------------------------

    def snapshot(self, processes: Iterable[ProcessSnapshot]) -> int:
        """Add the processes already running (oldest first is not required: parents are linked after)."""
        added = [self._add_snapshot(s, link=False) for s in processes]
        for e in added:
            self._link(e)
        return len(added)

    def _add_snapshot(self, s: ProcessSnapshot, *, link: bool) -> ProcessEntry:
        container = self.container_of_proc(s)
        root = f"{self.proc}/{s.pid}/root" if container else "/"
        exe = None
        if s.exe is not None:
            exe = self.executables.get(_exe_info(s, self.mounts.fs_type(s.exe_mount_id or 0)), root)
        args, atrunc = bound_args(s.argv, False, self.args_policy)
        envs, etrunc = env_names(s.envp, False, self.args_policy)
        start_wall = self.clock.wall_from_boottime(s.start_time_ns)
        e = ProcessEntry(
            pid=s.pid, ppid=s.ppid, start_time_ns=s.start_time_ns, comm=s.comm, tty=s.tty,
            creds=s.credentials, executable=exe, args=args if s.argv else None, args_truncated=atrunc,
            envp=self._shared_envp(s.envp), envs=envs or None, envs_truncated=etrunc, container_id=container,
            cgroup_id=s.cgroup_id or 0, root=root, fork_time=start_wall, exec_time=start_wall if s.exe else None, from_procfs=True,
            argv0=s.argv[0] if s.argv else "",
            auid=s.loginuid if s.loginuid is not None else AUDIT_AUID_UNSET,
        )  # fmt: skip
        self._insert(e)
        if link:
            self._link(e)
        return e

    def _link(self, e: ProcessEntry) -> None:
        if e.ppid and e.ppid != e.pid:
            e.parent = self.get(e.ppid, read_proc=False)

    # -- events -------------------------------------------------------------------------------------------

    def on_fork(self, ev: kev.ForkEvent) -> ProcessEntry:
        parent = self.get(ev.pid)
        old = self._live.get(ev.child_pid)
        if old is not None:
            if old.start_time_ns == ev.start_time_ns:
                return old  # already known (from the snapshot)
            self.reused_pids += 1
            self._retire(old)
        if parent is not None and parent.cgroup_id == ev.child_cgroup_id:
            container = parent.container_id
        else:
            container = self.container_of_event(ev.child_pid, ev.child_cgroup_id, ev.cgroup)
        root = f"{self.proc}/{ev.child_pid}/root" if container else "/"
        e = ProcessEntry(
            pid=ev.child_pid, ppid=ev.pid, start_time_ns=ev.start_time_ns, comm=ev.comm, tty=ev.tty,
            creds=ev.credentials,
            executable=parent.executable if parent else None,
            args=parent.args if parent else None, args_truncated=parent.args_truncated if parent else False,
            envp=parent.envp if parent else "", envs=parent.envs if parent else None,
            envs_truncated=parent.envs_truncated if parent else False,
            container_id=container, cgroup_id=ev.child_cgroup_id, root=root,
            fork_time=self.clock.wall_from_boottime(ev.start_time_ns),
            exec_time=parent.exec_time if parent else None, parent=parent, argv0=parent.argv0 if parent else "",
            auid=parent.auid if parent else AUDIT_AUID_UNSET,
        )  # fmt: skip
        self._insert(e)
        self._pin_names(e)
        return e

    def on_exec(self, ev: kev.ExecEvent) -> ProcessEntry:
        e = self._live.get(ev.pid)
        if e is not None and e.start_time_ns != ev.start_time_ns:
            self.reused_pids += 1
            self._retire(e)
            e = None
        if e is not None and e.cgroup_id == ev.cgroup_id:
            container = e.container_id
        else:
            container = self.container_of_event(ev.pid, ev.cgroup_id, ev.cgroup)
        root = f"{self.proc}/{ev.pid}/root" if container else "/"
        exe = self.executables.get(ev.file, root)
        args, atrunc = bound_args(ev.argv, ev.argv_truncated, self.args_policy)
        envs, etrunc = env_names(ev.envp, ev.envp_truncated, self.args_policy)
        exec_time = self.clock.wall_from_monotonic(ev.ktime_ns)
        if e is None:
            e = ProcessEntry(
                pid=ev.pid, ppid=ev.ppid, start_time_ns=ev.start_time_ns, comm=ev.comm, tty=ev.tty,
                creds=ev.credentials, executable=exe, args=args, args_truncated=atrunc,
                envp=self._shared_envp(ev.envp),
                envs=envs or None, envs_truncated=etrunc, container_id=container, cgroup_id=ev.cgroup_id,
                root=root, fork_time=self.clock.wall_from_boottime(ev.start_time_ns), exec_time=exec_time,
                argv0=ev.argv[0] if ev.argv else "",
            )  # fmt: skip
            self._insert(e)
            self._link(e)
            e.auid = self._loginuid(e)
            self._pin_names(e)
            return e
        e.comm, e.tty, e.creds, e.executable = ev.comm, ev.tty, ev.credentials, exe
        e.args, e.args_truncated, e.envs, e.envs_truncated = args, atrunc, envs or None, etrunc
        e.envp = self._shared_envp(ev.envp)
        e.argv0 = ev.argv[0] if ev.argv else ""
        e.auid = self._loginuid(e)
        e.container_id, e.cgroup_id, e.root, e.exec_time = container, ev.cgroup_id, root, exec_time
        _note_container(e, self.container_tags)
        if e.ppid != ev.ppid and ev.ppid:
            self._reparent(e, ev.ppid)
        self._changed(e)
        self._live.move_to_end(e.pid)
        self._pin_names(e)
        return e

    def _loginuid(self, e: ProcessEntry) -> int:
        """At exec: the login uid the process has now (set since its fork, e.g. by pam_loginuid before it
        ran the session's shell), else its entry's (inherited at fork), else its parent's."""
        uid = read_loginuid(e.pid, Path(self.proc))
        if uid is not None:
            return uid
        if e.auid == AUDIT_AUID_UNSET and e.parent is not None:
            return e.parent.auid
        return e.auid

    def _changed(self, e: ProcessEntry) -> None:
        """The entry's values are no longer those of its model; every ancestors list is checked again."""
        e.changed()
        self.generation += 1

    def _container_root(self, e: ProcessEntry) -> str:
        """The root of a live process of the same container, for a process already gone (a short-lived
        process is often gone by the time its events are read): the container's files are the same."""
        for other in reversed(self._live.values()):
            if other is not e and other.container_id == e.container_id and other.root != "/" \
                    and os.path.isdir(other.root):
                return other.root
        return e.root

    def _pin_names(self, e: ProcessEntry) -> None:
        """A process in a container has its names looked up now, while its root (`/proc/<pid>/root`) can
        still be read: a short-lived process is often gone by the time its events are serialized."""
        if e.root != "/":
            self.model(e)

    def on_exit(self, ev: kev.ExitEvent) -> ProcessEntry | None:
        e = self._live.pop(ev.pid, None)
        if e is None:
            return None
        e.exit_time = self.clock.wall_from_monotonic(ev.ktime_ns)
        self._changed(e)
        self._exited[0][e.pid] = e
        return e

    def on_credentials(self, ev: kev.CredentialsEvent) -> ProcessEntry | None:
        """A set*id or capset: the process's credentials become the event's `after` (a successful call)."""
        e = self.for_event(ev)
        if e is None or ev.retval < 0:
            return e
        if ev.tid == ev.pid or e.creds == ev.before or not ev.before_known:
            e.creds = ev.after
            self._changed(e)
        return e

    def sweep(self) -> int:
        """Drop the entries of processes that are gone (their exit was lost: the kernel's ring buffer was full)
        or whose pid now names another process (a different start time). Returns how many were dropped."""
        gone = []
        for pid, e in self._live.items():
            start = _start_time_ns(self.proc, pid)
            if start is None or (not e.from_procfs and abs(start - e.start_time_ns) >= _TICK_NS):
                gone.append(pid)
        for pid in gone:
            self._live.pop(pid, None)
        self.swept += len(gone)
        if gone:
            self.generation += 1
        return len(gone)

    def end_batch(self) -> None:
        """Age the recently exited entries (called once per batch read from the ring)."""
        self._exited.insert(0, {})
        self._exited.pop()
        self._missing.clear()

    # -- bookkeeping --------------------------------------------------------------------------------------

    def _shared_envp(self, envp: list[str]) -> str:
        """The environment as one NUL-joined string, one object for every process started with the same
        environment (a session's commands share theirs): the full environments are most of the cache's memory."""
        joined = "\0".join(envp)
        got = self._envps.get(joined)
        if got is None:
            if len(self._envps) >= 4096:
                self._envps.clear()
            got = self._envps[joined] = joined
        return got

    def _insert(self, e: ProcessEntry) -> None:
        _note_container(e, self.container_tags)
        self._live[e.pid] = e
        self._live.move_to_end(e.pid)
        while len(self._live) > self.max_size:
            self._live.popitem(last=False)
            self.evictions += 1

    def _retire(self, e: ProcessEntry) -> None:
        if self._live.get(e.pid) is e:
            del self._live[e.pid]

    def _reparent(self, e: ProcessEntry, ppid: int) -> None:
        e.ppid = ppid
        e.parent = self.get(ppid) if ppid != e.pid else None
        self._changed(e)
        self.reparented += 1

    def stats(self) -> dict[str, int]:
        return {"size": len(self._live), "evictions": self.evictions, "procfs_reads": self.procfs_reads,
                "reused_pids": self.reused_pids, "reparented": self.reparented, "swept": self.swept,
                "executables": len(self.executables)}


_ENTRY_FIELDS = tuple(
    n for n in ProcessCacheEntry.__dataclass_fields__ if not n.startswith("_") and n != "tid"
)


_TICK_NS = 1_000_000_000 // CLK_TCK
"""/proc gives start times in clock ticks; the kernel's are nanoseconds."""


def _start_time_ns(proc: str, pid: int) -> int | None:
    """A live process's start time (CLOCK_BOOTTIME ns) from /proc/<pid>/stat; None when it is gone."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    try:
        return int(stat[stat.rindex(b")") + 2:].split()[19]) * _TICK_NS
    except (ValueError, IndexError):
        return None


def _container(cid: str | None) -> ContainerContext | None:
    return _CONTAINERS.setdefault(cid, ContainerContext(id=cid)) if cid else None


def _note_container(e: ProcessEntry, container_tags: Callable[[str], list[str]]) -> None:
    """A container's creation time is the start of the first process seen in it: the runtime creates the
    container with its init process, which lives as long as the container (the `/proc` snapshot gives the
    start of the init of containers already running). Its tags are read then, once."""
    ctx = _container(e.container_id)
    if ctx is not None and ctx.tags is None:
        try:
            ctx.tags = container_tags(ctx.id or "")
        except Exception:  # a runtime's odd files never stop the cache
            ctx.tags = []
    start = e.fork_time or e.exec_time
    if ctx is not None and start and (ctx.created_at is None or start < ctx.created_at):
        ctx.created_at = start


_CONTAINERS: dict[str, ContainerContext] = {}


def _exe_info(s: ProcessSnapshot, fs_type: str) -> kev.FileInfo:
    """The executable of a snapshot process as a FileInfo (stat'ed through /proc/<pid>/exe)."""
    mode = uid = gid = nlink = at = mt = ct = None
    try:
        st = os.stat(f"/proc/{s.pid}/exe")
        mode, uid, gid, nlink = st.st_mode, st.st_uid, st.st_gid, st.st_nlink
        at, mt, ct = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns
    except OSError:
        pass
    path = s.exe or ""
    deleted = path.endswith(" (deleted)")
    return kev.FileInfo(
        path=path[: -len(" (deleted)")] if deleted else path, resolved_len=len(path),
        path_resolution_error="file deleted" if deleted else None,
        inode=s.exe_inode, mode=mode, uid=uid, gid=gid, nlink=nlink, access_time_ns=at,
        modification_time_ns=mt, change_time_ns=ct, mount_id=s.exe_mount_id or 0, group_id=0,
        device=s.exe_device or 0, fs_type=fs_type, in_upper_layer=False, negative=False, flags=0,
    )  # fmt: skip
