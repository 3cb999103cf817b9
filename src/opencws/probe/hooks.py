"""Where each BPF program attaches: the one place that lists hooks.

A hook is attached only while some enabled event type needs it, so a policy without file rules does not
put every syscall on the kernel's slow path. Another kernel could add hook kinds here (fentry, LSM)."""

from __future__ import annotations

from dataclasses import dataclass

from opencws.probe.eventtypes import EventType as T
from opencws.probe.syscalls import SYSCALLS


@dataclass(frozen=True)
class Hook:
    program: str
    """Program name in probe.bpf.c."""
    kind: str
    """`raw_tracepoint`, `tp_btf` or `tracepoint` (libbpf attaches by the program's SEC())."""
    target: str
    needed_by: frozenset[T] | None
    """Event types that need this hook; None: always attached."""


ENTER_TYPES = frozenset({T.UNLINK, T.RMDIR, T.RENAME, T.UMOUNT})
"""Types whose target is resolved at sys_enter, before the syscall removes or moves it. The old credentials of
setuid/setgid/capset come from a per-thread cache kept by the sched hooks and sys_exit (no sys_enter)."""

AT_EXIT_CAPABLE = frozenset({T.UNLINK, T.RMDIR, T.RENAME})
"""Types that can be resolved at sys_exit instead (`Probe.set_event_types(..., resolve_at_exit=...)`), sparing
the sys_enter hook: a rename loses nothing (the source is described by the inode now at the destination); a
successful unlink or rmdir gives the path (directory resolved, then the name) and the mount but no inode fields
(FI_REMOVED): the inode is gone when the syscall returns."""

SYSCALL_TYPES = frozenset(t for _, t in SYSCALLS.values()) | {T.RMDIR}

URING_TYPES = frozenset({T.OPEN, T.UNLINK, T.RMDIR, T.RENAME, T.MKDIR, T.LINK, T.SETXATTR, T.SYMLINK})
"""Types io_uring operations can produce (syscalls.IO_URING_OPS): captured at submission, sent at completion.
These tracepoints are off the syscall path: they cost nothing to other syscalls."""

RACING_TYPES = frozenset({T.CHMOD, T.CHOWN, T.UTIMES, T.SETXATTR, T.REMOVEXATTR, T.MKDIR, T.UNLINK, T.RMDIR,
                          T.RENAME, T.LINK})
"""Types whose path string another thread can rewrite during the call and whose outcome changes a file's ctime: the
`timestamp` tracepoints (off the syscall path) tell sys_exit which inode the kernel acted on."""

OWNER_BEFORE_TYPES = frozenset({T.CHOWN})
"""Types that read the file's owner before the call (a chown's): on the per-syscall tracepoints of the chown family
alone, not on the raw sys_enter (a second hook site for every syscall; their cost to other syscalls: the kernel's
syscall tracepoint code tests one bitmap per syscall), and on ext4's journal start (under the inode lock, off the
syscall path). See `docs/benchmarks.md`, "Kernel probe"."""

HOOKS: tuple[Hook, ...] = (
    Hook("sched_exec", "tp_btf", "sched_process_exec", None),
    Hook("sched_fork", "tp_btf", "sched_process_fork", None),
    Hook("sched_exit", "tp_btf", "sched_process_exit", None),
    Hook("sys_enter", "tp_btf", "sys_enter", ENTER_TYPES),
    Hook("sys_exit", "tp_btf", "sys_exit", SYSCALL_TYPES),
    Hook("chown_enter", "tracepoint", "syscalls/sys_enter_chown", OWNER_BEFORE_TYPES),
    Hook("fchown_enter", "tracepoint", "syscalls/sys_enter_fchown", OWNER_BEFORE_TYPES),
    Hook("lchown_enter", "tracepoint", "syscalls/sys_enter_lchown", OWNER_BEFORE_TYPES),
    Hook("fchownat_enter", "tracepoint", "syscalls/sys_enter_fchownat", OWNER_BEFORE_TYPES),
    Hook("owner_ext4", "tp_btf", "ext4_journal_start_inode", OWNER_BEFORE_TYPES),
    Hook("uring_submit", "tp_btf", "io_uring_submit_req", URING_TYPES),
    Hook("uring_complete", "tp_btf", "io_uring_complete", URING_TYPES),
    Hook("acted_set", "tp_btf", "inode_set_ctime_to_ts", RACING_TYPES),
    Hook("acted_xchg", "tp_btf", "ctime_ns_xchg", RACING_TYPES),
    Hook("acted_skip", "tp_btf", "ctime_xchg_skip", RACING_TYPES),
)


ACTED_HOOKS = frozenset({"acted_set", "acted_xchg", "acted_skip"})
"""Programs on the `timestamp` tracepoints (Linux 6.13+): not loaded on a kernel without them (`Probe.acted`)."""

ACTED_TRACEPOINT = "/sys/kernel/tracing/events/timestamp/ctime_xchg_skip"

EXT4_HOOKS = frozenset({"owner_ext4"})
"""Programs on ext4's tracepoints: not loaded on a kernel without them (ext4 absent or a module not loaded:
`Probe.ext4`)."""

EXT4_TRACEPOINT = "/sys/kernel/tracing/events/ext4/ext4_journal_start_inode"

URING_HOOKS = frozenset({"uring_submit", "uring_complete"})
"""Programs that exist only on a kernel with io_uring's tracepoints (not loaded elsewhere: `Probe.io_uring`)."""

URING_TRACEPOINT = "/sys/kernel/tracing/events/io_uring/io_uring_submit_req"


def hooks_needed(enabled: set[T], resolve_at_exit: frozenset[T] | set[T] = frozenset()) -> list[Hook]:
    """The hooks the enabled types need; types in resolve_at_exit do not need sys_enter."""
    need_enter = {t for t in enabled if t not in resolve_at_exit or t not in AT_EXIT_CAPABLE}
    out = []
    for h in HOOKS:
        wants = enabled if h.program != "sys_enter" else need_enter
        if h.needed_by is None or h.needed_by & wants:
            out.append(h)
    return out
