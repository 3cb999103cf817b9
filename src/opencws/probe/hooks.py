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


ENTER_TYPES = frozenset({T.UNLINK, T.RMDIR, T.RENAME, T.UMOUNT, T.SETUID, T.SETGID, T.CAPSET})
"""Types whose state before the syscall matters (the target of a destructive call, the old credentials)."""

SYSCALL_TYPES = frozenset(t for _, t in SYSCALLS.values()) | {T.RMDIR}

HOOKS: tuple[Hook, ...] = (
    Hook("sched_exec", "tp_btf", "sched_process_exec", None),
    Hook("sched_fork", "tp_btf", "sched_process_fork", None),
    Hook("sched_exit", "tp_btf", "sched_process_exit", None),
    Hook("sys_enter", "tp_btf", "sys_enter", ENTER_TYPES),
    Hook("sys_exit", "tp_btf", "sys_exit", SYSCALL_TYPES),
)


def hooks_needed(enabled: set[T]) -> list[Hook]:
    return [h for h in HOOKS if h.needed_by is None or h.needed_by & enabled]
