"""The syscalls the probe hooks (x86_64 numbers) and the event type each one produces.

The BPF programs dispatch on the same numbers (probe.bpf.c); this table decides which of them are
`interested` (any other syscall returns after one array lookup).
"""

from __future__ import annotations

from opencws.probe.eventtypes import EventType as T

SYSCALLS: dict[str, tuple[int, T]] = {
    "write": (1, T.SELINUX),
    "open": (2, T.OPEN),
    "creat": (85, T.OPEN),
    "openat": (257, T.OPEN),
    "openat2": (437, T.OPEN),
    "chmod": (90, T.CHMOD),
    "fchmod": (91, T.CHMOD),
    "fchmodat": (268, T.CHMOD),
    "fchmodat2": (452, T.CHMOD),
    "chown": (92, T.CHOWN),
    "fchown": (93, T.CHOWN),
    "lchown": (94, T.CHOWN),
    "fchownat": (260, T.CHOWN),
    "link": (86, T.LINK),
    "linkat": (265, T.LINK),
    "rename": (82, T.RENAME),
    "renameat": (264, T.RENAME),
    "renameat2": (316, T.RENAME),
    "unlink": (87, T.UNLINK),
    "unlinkat": (263, T.UNLINK),  # AT_REMOVEDIR makes it an rmdir, decided in the kernel
    "rmdir": (84, T.RMDIR),
    "mkdir": (83, T.MKDIR),
    "mkdirat": (258, T.MKDIR),
    "utime": (132, T.UTIMES),
    "utimes": (235, T.UTIMES),
    "utimensat": (280, T.UTIMES),
    "futimesat": (261, T.UTIMES),
    "setxattr": (188, T.SETXATTR),
    "lsetxattr": (189, T.SETXATTR),
    "fsetxattr": (190, T.SETXATTR),
    "setxattrat": (463, T.SETXATTR),
    "removexattr": (197, T.REMOVEXATTR),
    "lremovexattr": (198, T.REMOVEXATTR),
    "fremovexattr": (199, T.REMOVEXATTR),
    "removexattrat": (466, T.REMOVEXATTR),
    "mount": (165, T.MOUNT),
    "move_mount": (429, T.MOUNT),  # the new mount API (fsmount, open_tree) attaches with it
    "umount2": (166, T.UMOUNT),
    "bpf": (321, T.BPF),
    "setuid": (105, T.SETUID),
    "setreuid": (113, T.SETUID),
    "setresuid": (117, T.SETUID),
    "setfsuid": (122, T.SETUID),
    "setgid": (106, T.SETGID),
    "setregid": (114, T.SETGID),
    "setresgid": (119, T.SETGID),
    "setfsgid": (123, T.SETGID),
    "capset": (126, T.CAPSET),
}

NAME_BY_NR: dict[int, str] = {nr: name for name, (nr, _) in SYSCALLS.items()}

# unlinkat serves both unlink and rmdir
EXTRA_TYPES: dict[str, frozenset[T]] = {"unlinkat": frozenset({T.UNLINK, T.RMDIR})}


CRED_TYPES = frozenset({T.SETUID, T.SETGID, T.CAPSET})

INTERNAL_MOUNTS = 28
"""`interested` value: a mount change whose event type is off (mount, umount2, move_mount) or that has none
(pivot_root): a success bumps the discarder generation (a freed mount id comes back; paths change)."""
INTERNAL_CHROOT = 29
"""`interested` value: chroot, after which a task may see files under other paths (inode discarders then check
the task's root)."""
INTERNAL_CRED = 30
"""`interested` value (probe.bpf.c): a syscall that may change credentials, watched only to keep the kernel's
per-thread credential cache (the "before" of setuid/setgid/capset events) current."""
INTERNAL_BIRTH = 31
"""`interested` value: a syscall that creates an inode without opening it (a stale inode discarder must go)."""

CRED_ONLY: dict[str, int] = {"unshare": 272, "setns": 308}
"""Syscalls that change credentials (a new user namespace) without an event type of their own."""
BIRTH_ONLY: dict[str, int] = {"mknod": 133, "mknodat": 259}
CHROOT = 161
MOUNT_CHANGES: dict[str, int] = {"mount": 165, "umount2": 166, "move_mount": 429, "pivot_root": 155,
                                 "open_tree": 428, "fsmount": 432, "unshare": 272}
"""Syscalls that make, free or move mounts (open_tree clones, fsmount makes; unshare only with CLONE_NEWNS)."""

FILE_TYPES = frozenset({T.OPEN, T.CHMOD, T.CHOWN, T.UTIMES, T.SETXATTR, T.REMOVEXATTR})
"""Types whose events may teach inode discarders (the births of inodes then matter)."""


def interested_map(enabled: set[T]) -> dict[int, int]:
    """Syscall number -> event type, for the syscalls some enabled type needs.

    While any credential type is on, every credential-changing syscall is watched (those of the types that are
    off, and unshare/setns, as INTERNAL_CRED): the kernel's "before" cache must see every change."""
    out: dict[int, int] = {}
    creds = bool(CRED_TYPES & enabled)
    for name, (nr, etype) in SYSCALLS.items():
        wanted = EXTRA_TYPES.get(name, frozenset({etype}))
        if wanted & enabled:
            out[nr] = int(etype)
        elif creds and etype in CRED_TYPES:
            out[nr] = INTERNAL_CRED
    if creds:
        out.update((nr, INTERNAL_CRED) for nr in CRED_ONLY.values())
    if FILE_TYPES & enabled:
        out.update((nr, INTERNAL_BIRTH) for nr in BIRTH_ONLY.values())
    out[CHROOT] = INTERNAL_CHROOT  # (whenever sys_exit runs; the loader looks at /proc when it attaches it)
    for nr in MOUNT_CHANGES.values():
        out.setdefault(nr, INTERNAL_MOUNTS)
    return out
