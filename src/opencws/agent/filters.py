"""In-kernel filters computed from a loaded policy, and discarders learned from the events that arrive.

Three layers, cheapest first, keep activity that no rule cares about inside the kernel:

- **event types**: a type that no rule uses is disabled in the probe (exec, fork and exit always flow);
- **approvers** (`plan_filters`): for each file event type, the basenames and open flags that some rule of
  that type could match. The kernel checks the file of slot 0 (the source of a rename or link) and the
  `flags` argument; a rule that constrains neither in a way the kernel can check leaves its type unfiltered.
  Exact paths are pushed as their basenames: the kernel decides on a basename from the target dentry alone,
  while a path approver would make it walk up to the root for every event the basenames do not approve;
- **discarders** (`Discarders`): when an event arrives that no rule of its type could match given its file
  path (or its process executable), the inode (or the process) is discarded for that type. An inode discarder
  is keyed by the inode's number, mount and identity (`FileInfo.inode_generation`): learned late, from an event
  that waited in the ring buffer while its inode died and another was born on its number, it still never hides
  the new inode; on a filesystem that gives no identity (generation 0: procfs, ramfs...) none is learned. The
  kernel drops an inode's discarder on rename of that name and when a new inode is born (an open that created
  the file, O_TMPFILE, mknod), and bumps the generation on mount changes and on FS_IOC_SETVERSION; the agent
  invalidates everything on rule reload and on a directory rename (paths under it changed), and drops the
  discarder of an inode that gains a hard link.

Hook sites: every syscall hook site slows every syscall of the machine, so the plan asks for unlink, rmdir
and rename to be resolved at sys_exit (`FilterPlan.resolve_at_exit`) whenever no rule needs what only
sys_enter can see (the inode fields of a file an unlink or rmdir removes); with the default policy the probe
then runs on one syscall hook site.
"""

from __future__ import annotations

import dataclasses
import stat
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from opencws.secl import REGISTRY, PolicySet
from opencws.secl.compiler import Approver, CompiledRule, Macro
from opencws.secl.partial import could_match, matches_whatever

ALWAYS_ON = frozenset({"exec", "fork", "exit"})
"""The process tree needs these whatever the rules (the probe enables them itself as well)."""

KERNEL_APPROVER_TYPES = frozenset({
    "open", "chmod", "chown", "link", "rename", "unlink", "rmdir", "mkdir", "utimes", "setxattr",
    "removexattr",
})
"""Types whose kernel path checks approvers on the file of slot 0 (probe.bpf.c `filtered_out`)."""

FLAGS_FIELDS = {"open": "open.flags"}
"""The SECL field whose value the kernel compares with the flags approver (the syscall's flags argument)."""

DISCARDABLE_BY_INODE = frozenset({"open", "chmod", "chown", "utimes", "setxattr", "removexattr"})
"""Types whose file outlives the event (an unlinked or renamed inode gains nothing from a discarder)."""

DISCARDABLE_BY_PID = frozenset(
    (KERNEL_APPROVER_TYPES | {"bpf", "selinux"}) - {"unlink", "rename", "link"})
"""Types the kernel can drop by process (exec, fork and exit always flow). Never unlink, rename or link: the kernel
checks a pid discarder before it drops the discarder of an unlinked or renamed inode. Open is safe: an open that
creates a file drops the stale discarder of its inode number even when its process is discarded. Never the
credential changes: the process cache needs every one of them (`CACHE_FEED`)."""

CACHE_FEED = frozenset({"setuid", "setgid", "capset"})
"""Types always enabled so that the process cache keeps credentials true, whatever the rules (events of a type
no rule uses update the cache and are counted as filtered)."""

INVALIDATION_SEEN_BY_KERNEL = frozenset({"mount"})
"""Types hooked whenever inode discarders may exist so that the kernel sees them (all their events filtered when
no rule uses them). mount: a new mount may reuse the id of an unmounted one, whose files' inode numbers then
collide with old discarders; the kernel bumps the discarder generation on every mount. Not unlink: an unlinked
inode's stale discarder can only matter once its number is reused, and the kernel drops it when it sees that
inode born (probe.bpf.c `drop_discarder_of_target`)."""

AT_EXIT_TYPES = frozenset({"unlink", "rmdir", "rename"})
"""Types the probe can resolve at sys_exit (opencws.probe.hooks.AT_EXIT_CAPABLE)."""

RENAME_EXCHANGE = 1 << 1
"""renameat2: the two names swap their files (the other one may be a directory)."""
GONE_AT_EXIT_SUFFIXES = frozenset({"path", "name", "path.length", "name.length", "filesystem", "mount_id"})
"""The `<type>.file.*` fields an unlink or rmdir resolved at sys_exit still has (the rest describe the removed
inode: inode, mode, uid, user, times...). A rename resolved at sys_exit loses nothing."""

INVALIDATION_SEEN_BY_AGENT = frozenset({"rename", "link"})
"""Rare types the agent must see while inode discarders may exist: a renamed directory moves every path under
it, and a new hard link gives a discarded inode a name a rule may watch."""


class ProbeFilters(Protocol):
    """The part of `opencws.probe.Probe` the filters drive (a fake in unit tests)."""

    def set_event_types(self, types: Iterable[str], *, resolve_at_exit: Iterable[str] = ()) -> None: ...
    def set_approvers(self, event_type: str, *, basenames: Iterable[str] = (), paths: Iterable[str] = (),
                      flags_mask: int = 0) -> None: ...
    def clear_approvers(self, event_type: str) -> None: ...
    def add_discarder_inode(self, inode: int, mount_id: int, event_types: Iterable[str] | None = None,
                            generation: int | None = None, *, inode_generation: int) -> None: ...
    def remove_discarder_inode(self, inode: int, mount_id: int, *, inode_generation: int) -> None: ...
    def add_discarder_pid(self, pid: int, event_types: Iterable[str] | None = None) -> None: ...
    def ignore_pid(self, pid: int) -> None: ...
    def invalidate_discarders(self) -> None: ...


@dataclass(frozen=True)
class TypeApprovers:
    """What the kernel lets through for one event type: any of these basenames, or any of these flag bits."""

    basenames: frozenset[str] = frozenset()
    flags_mask: int = 0


@dataclass(frozen=True)
class FilterPlan:
    event_types: frozenset[str]
    """Types some rule uses, plus exec, fork and exit."""
    approvers: dict[str, TypeApprovers] = field(default_factory=dict)
    """Types filtered by approvers; an enabled type absent here passes unfiltered."""
    unfiltered_by: dict[str, str] = field(default_factory=dict)
    """For an enabled approver-capable type left unfiltered: the id of a rule without a kernel approver."""
    rule_types: frozenset[str] = frozenset()
    """Types some rule uses (the others in event_types are enabled to keep discarders correct)."""
    filter_all: frozenset[str] = frozenset()
    """Types enabled only so that the kernel sees them (invalidation): every event of them is filtered."""
    resolve_at_exit: frozenset[str] = frozenset()
    """Enabled types the probe resolves at sys_exit (no sys_enter hook for them)."""
    needs_enter_by: dict[str, str] = field(default_factory=dict)
    """For an unlink/rmdir left at sys_enter: the id of a rule using a field of the removed inode."""


def active_rules(policies: PolicySet) -> list[tuple[str, CompiledRule, dict[str, Macro] | None]]:
    """(rule id, compiled rule, macros) of the rules that evaluate (compiled and not disabled)."""
    return [(r.id, r.compiled, r.macros) for r in policies.rules if r.compiled is not None and not r.disabled]


def _canonical(name: str) -> str:
    f = REGISTRY.get(name)
    return (f.alias_of or f.name) if f is not None else name


def basename_of(approver: Approver) -> str | None:
    """The basename every value matching this path or name approver has, or None when it is not fixed.

    Patterns are anchored globs where `*` also matches `/`, so `/home/*/.aws/credentials` still fixes the
    basename (`credentials`): a `/` after the last `*` pins it. Regexes never fix it."""
    value = approver.value
    if not isinstance(value, str) or approver.kind not in ("exact", "pattern"):
        return None
    if approver.kind == "pattern" and "*" in value:
        tail = value[value.rindex("*") + 1:]
        if "/" not in tail:
            return None
        value = tail
    base = value.rsplit("/", 1)[-1]
    return base or None


def _rule_basenames(rule: CompiledRule, event_type: str) -> frozenset[str] | None:
    """Basenames one of which the rule's file (slot 0) must have, or None when the rule does not fix it."""
    best: frozenset[str] | None = None
    for suffix in ("name", "path"):
        found = rule.approvers.get(_canonical(f"{event_type}.file.{suffix}"))
        if not found:
            continue
        names = [basename_of(a) for a in found]
        if all(n is not None for n in names):
            candidate = frozenset(n for n in names if n is not None)
            if best is None or len(candidate) < len(best):
                best = candidate
    return best


def _rule_flags(rule: CompiledRule, event_type: str) -> int | None:
    """The flag bits one of which the rule requires in the syscall's flags argument, or None."""
    name = FLAGS_FIELDS.get(event_type)
    found = rule.approvers.get(_canonical(name)) if name else None
    if not found or any(a.kind != "flags" or not isinstance(a.value, int) or a.value <= 0 for a in found):
        return None
    mask = 0
    for a in found:
        mask |= a.value
    return mask


def _type_approvers(rules: list[tuple[str, CompiledRule]], event_type: str) -> tuple[TypeApprovers | None, str]:
    """The approvers covering every rule of the type, or (None, id of a rule the kernel cannot approve)."""
    options = [(rid, _rule_basenames(r, event_type), _rule_flags(r, event_type)) for rid, r in rules]
    for rid, names, flags in options:
        if names is None and flags is None:
            return None, rid
    # rules only flags can approve fix the mask; a rule whose flags are already in it costs nothing more,
    # otherwise basenames are the narrower choice
    forced = 0
    for _, names, flags in options:
        if names is None and flags is not None:
            forced |= flags
    basenames: set[str] = set()
    mask = forced
    for _, names, flags in options:
        if flags is not None and (flags & ~forced) == 0:
            continue
        if names is not None:
            basenames |= names
        elif flags is not None:
            mask |= flags
    return TypeApprovers(frozenset(basenames), mask), ""


def _needs_removed_inode(rule: CompiledRule, event_type: str) -> bool:
    """Whether an unlink/rmdir rule reads a field of the removed file that only sys_enter can capture."""
    if event_type == "rename":
        return False
    prefix = f"{event_type}.file."
    for name in rule.fields:
        canonical = _canonical(name)
        if canonical.startswith(prefix) and canonical[len(prefix):] not in GONE_AT_EXIT_SUFFIXES:
            return True
    return False


def plan_filters(policies: PolicySet, *, discarders: bool = True) -> FilterPlan:
    """Event types to enable and the approvers of each, computed from the policy's active rules.

    With `discarders` (inode discarders will be learned), the types that invalidate them are enabled too."""
    by_type: dict[str, list[tuple[str, CompiledRule]]] = {}
    for rid, rule, _ in active_rules(policies):
        if rule.event_type:
            by_type.setdefault(rule.event_type, []).append((rid, rule))
    rule_types = frozenset(by_type)
    types = rule_types | ALWAYS_ON | CACHE_FEED
    filter_all: frozenset[str] = frozenset()
    if discarders and rule_types & DISCARDABLE_BY_INODE:
        filter_all = INVALIDATION_SEEN_BY_KERNEL - rule_types
        types |= INVALIDATION_SEEN_BY_KERNEL | INVALIDATION_SEEN_BY_AGENT
    approvers: dict[str, TypeApprovers] = {}
    unfiltered: dict[str, str] = {}
    for t, rules in sorted(by_type.items()):
        if t not in KERNEL_APPROVER_TYPES:
            continue
        found, rid = _type_approvers(rules, t)
        if found is None:
            unfiltered[t] = rid
        else:
            approvers[t] = found
    needs_enter: dict[str, str] = {}
    for t in sorted(AT_EXIT_TYPES & types):
        for rid, rule in by_type.get(t, []):
            if _needs_removed_inode(rule, t):
                needs_enter[t] = rid
                break
    at_exit = frozenset((AT_EXIT_TYPES & types) - set(needs_enter))
    return FilterPlan(types, approvers, unfiltered, rule_types, filter_all, at_exit, needs_enter)


def apply_plan(probe: ProbeFilters, plan: FilterPlan, known_types: Iterable[str] | None = None) -> None:
    """Push the plan into the probe: enabled types, then approvers (replacing earlier ones).

    `known_types`: the probe's event types (default: opencws.probe.EventType); rule types the probe does
    not capture are left out."""
    if known_types is None:
        from opencws.probe.eventtypes import EventType

        known_types = [t.event_name for t in EventType]
    known = set(known_types)
    probe.set_event_types(sorted(plan.event_types & known), resolve_at_exit=sorted(plan.resolve_at_exit & known))
    for t in sorted((INVALIDATION_SEEN_BY_KERNEL - KERNEL_APPROVER_TYPES) & known):
        if t in plan.filter_all:
            probe.set_approvers(t)  # active with nothing approved
        else:
            probe.clear_approvers(t)
    for t in sorted(KERNEL_APPROVER_TYPES & known):
        a = plan.approvers.get(t)
        if t in plan.filter_all:
            probe.set_approvers(t)  # active with nothing approved
        elif a is None:
            probe.clear_approvers(t)
        else:
            probe.set_approvers(t, basenames=sorted(a.basenames), flags_mask=a.flags_mask)


class _Memo(OrderedDict[Any, bool]):
    """A bounded memo of partial-evaluation answers (a path is evaluated once, not per event)."""

    def __init__(self, size: int = 4096):
        super().__init__()
        self.size = size

    def remember(self, key: Any, value: bool) -> bool:
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)
        return value


@dataclass
class DiscarderStats:
    """What the agent did to the kernel's discarders since it started (counters only grow)."""

    inodes: int = 0
    """inode discarders added"""
    pids: int = 0
    """process discarders added"""
    inode_removals: int = 0
    """inode discarders dropped because the inode gained a name (a hard link)"""
    inodes_without_identity: int = 0
    """inode discarders not learned: the file's filesystem gives its inodes no identity beside their number
    (`FileInfo.inode_generation` 0), so a discarder could outlive its inode onto the next one of that number"""
    invalidations: int = 0
    """every discarder invalidated at once (rule reload, a directory renamed, a link to an unknown inode)"""


class Discarders:
    """Learns discarders from decoded events: what no rule of the event's type could match never leaves the
    kernel again (until an invalidation)."""

    def __init__(self, probe: ProbeFilters, policies: PolicySet, ignored_pids: Iterable[int] = (),
                 processes: Any = None):
        """`ignored_pids`: processes whose activity never leaves the kernel, whatever the rules (the agent
        itself: its own map updates are `bpf()` calls), kept across invalidations.
        `processes`: the agent's process cache (`opencws.resolvers.process.ProcessCache`), which tells each
        process's executable; without one, the filters keep their own, fed by `observe`."""
        self.probe = probe
        self.stats = DiscarderStats()
        self._own_cache = processes is None
        self._pid_discarded: dict[int, dict[str, int]] = {}
        """Pid discarders in place, with the discarder generation their event was seen in: the events queued
        before the kernel applied one (same generation) do not add it again (one bpf() call each). The kernel
        drops a pid's discarders at its exec and exit, and a new generation voids them: so does this."""
        self.processes = processes if processes is not None else _standalone_cache()
        for pid in ignored_pids:
            probe.ignore_pid(pid)
        self.reload(policies, invalidate=False)

    def counters(self) -> dict[str, int]:
        """The discarder statistics (`DiscarderStats`) by name, for metrics."""
        return dataclasses.asdict(self.stats)

    def reload(self, policies: PolicySet, *, invalidate: bool = True) -> None:
        """New rules: discarders learned from the old ones no longer hold."""
        self._rules = [(r, m) for _, r, m in active_rules(policies)]
        self._by_path = _Memo()
        self._by_exe = _Memo()
        self._by_pid = frozenset(t for t in DISCARDABLE_BY_PID
                                 if not matches_whatever(self._rules, t, ["process.file.path"]))
        """Types a process could be discarded for: for the others, some rule could match whatever the executable
        (a rule that does not look at it), and no attempt is made."""
        if invalidate:
            self.invalidate()

    def invalidate(self) -> None:
        self.probe.invalidate_discarders()
        self._pid_discarded.clear()
        self.stats.invalidations += 1

    def _could_match_path(self, event_type: str, path: str) -> bool:
        key = (event_type, path)
        if key in self._by_path:
            return self._by_path[key]
        return self._by_path.remember(key, could_match(self._rules, event_type, {f"{event_type}.file.path": path}))

    def _could_match_exe(self, event_type: str, exe: str) -> bool:
        key = (event_type, exe)
        if key in self._by_exe:
            return self._by_exe[key]
        return self._by_exe.remember(key, could_match(self._rules, event_type, {"process.file.path": exe}))

    def executable(self, pid: int) -> str | None:
        """The process's executable path, as the events told it (exec, inherited at fork), or as /proc told it
        when the cache started. Never read from /proc later: the pid may have been reused since the event."""
        return self.processes.executable(pid)

    def snapshot_processes(self, proc: str = "/proc") -> None:
        """Learn the processes already running (their exec events are in the past), when the cache is ours."""
        if self._own_cache:
            from pathlib import Path

            from opencws.probe.procfs import snapshot

            self.processes.snapshot(snapshot(Path(proc)))

    LEARNS_FROM_MATCHED = frozenset({"exec", "fork", "exit", "rename", "link"})
    """The types `observe` learns from when a rule matched the event (the invalidations below); a matched event
    of any other type teaches it nothing, and the pipeline does not hand it over."""

    def observe(self, event: Any, matched: bool = False) -> str | None:
        """Learn from one decoded event; returns "inode" or "pid" when a discarder was added. `matched`: a rule
        matched the event, so no discarder can hold for its file or process (only invalidations are learned:
        of the types in LEARNS_FROM_MATCHED)."""
        etype = getattr(event, "type", "")
        if etype in ("exec", "fork", "exit"):
            if etype != "fork" and self._pid_discarded:
                self._pid_discarded.pop(event.pid, None)
            if self._own_cache:
                getattr(self.processes, f"on_{etype}")(event)
            return None
        if etype == "rename" and event.retval == 0 and (self._may_be_dir(getattr(event, "file", None))
                                                         or event.flags & RENAME_EXCHANGE):
            self.invalidate()  # every path under the directory changed (or the file's kind is unknown)
            return None
        if etype == "link":
            f = getattr(event, "file", None)
            if f is not None and f.inode:  # a new name for a discarded inode
                self.probe.remove_discarder_inode(f.inode, f.mount_id, inode_generation=f.inode_generation or 0)
                self.stats.inode_removals += 1
            elif event.retval == 0:
                self.invalidate()  # which inode got a new name is not known
            return None
        if matched:
            return None
        if etype in DISCARDABLE_BY_INODE and self._try_inode(etype, event):
            return "inode"
        if etype in self._by_pid and self._try_pid(etype, event):
            return "pid"
        return None

    @staticmethod
    def _may_be_dir(f: Any) -> bool:
        """A directory, or a file whose mode the event does not carry (a rename resolved at sys_exit whose
        destination could not be resolved): a directory rename must never leave discarders under it."""
        return f is None or f.mode is None or stat.S_ISDIR(f.mode)

    @staticmethod
    def _is_dir(f: Any) -> bool:
        return f is not None and f.mode is not None and stat.S_ISDIR(f.mode)

    def _try_inode(self, etype: str, event: Any) -> bool:
        f = getattr(event, "file", None)
        # a path that is not complete cannot be evaluated; a file with other names could match through them;
        # a chrooted process sees the file under another path than everyone else (and the kernel applies no
        # inode discarder to it)
        if (f is None or not f.resolved or not f.inode or f.negative or f.nlink != 1 or self._is_dir(f)
                or event.in_chroot):
            return False
        if self._could_match_path(etype, f.path):
            return False
        if not f.inode_generation:  # (no identity: the discarder could hide the next inode born on the number)
            self.stats.inodes_without_identity += 1
            return False
        self.probe.add_discarder_inode(f.inode, f.mount_id, [etype], generation=f.generation,
                                       inode_generation=f.inode_generation)
        self.stats.inodes += 1
        return True

    def _try_pid(self, etype: str, event: Any) -> bool:
        generation = getattr(getattr(event, "file", None), "generation", None)
        done = self._pid_discarded.get(event.pid)
        if done is not None and generation is not None and done.get(etype) == generation:
            return False
        exe = self.executable(event.pid)
        if exe is None or self._could_match_exe(etype, exe):
            return False
        self.probe.add_discarder_pid(event.pid, [etype])
        if generation is not None:
            if len(self._pid_discarded) >= 65536:
                self._pid_discarded.clear()
            self._pid_discarded.setdefault(event.pid, {})[etype] = generation
        self.stats.pids += 1
        return True


class KernelFilters:
    """The policy's filters in a probe: plan applied, discarders learned from `observe(event)`, everything
    recomputed and invalidated on `reload(policies)`."""

    def __init__(self, probe: ProbeFilters, policies: PolicySet, known_types: Iterable[str] | None = None,
                 ignored_pids: Iterable[int] = (), processes: Any = None):
        self.probe = probe
        self._known = list(known_types) if known_types is not None else None
        self.discarders = Discarders(probe, policies, ignored_pids, processes)  # first: applying the plan is bpf() calls
        self.plan = plan_filters(policies)
        apply_plan(probe, self.plan, self._known)
        self.discarders.snapshot_processes()

    @property
    def processes(self) -> Any:
        return self.discarders.processes

    def observe(self, event: Any, matched: bool = False) -> str | None:
        return self.discarders.observe(event, matched)

    def counters(self) -> dict[str, int]:
        """The discarders' statistics (`DiscarderStats`) by name."""
        return self.discarders.counters()

    def reload(self, policies: PolicySet) -> None:
        self.plan = plan_filters(policies)
        apply_plan(self.probe, self.plan, self._known)
        self.discarders.reload(policies)


def _standalone_cache() -> Any:
    """A process cache for filters used without the agent (benchmarks, tests): executables only matter."""
    from opencws.resolvers.process import ProcessCache
    from opencws.resolvers.time import TimeResolver
    from opencws.resolvers.users import UserGroupResolver

    return ProcessCache(UserGroupResolver(), TimeResolver())
