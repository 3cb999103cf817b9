"""The syscalls the probe hooks (x86_64 and i386 numbers) and the event type each one produces.

The BPF programs dispatch on the x86_64 numbers (probe.bpf.c); this table decides which of them are
`interested` (any other syscall returns after one array lookup). An i386 syscall (`int $0x80`, from a 32-bit or
a 64-bit process: the kernel marks the thread TS_COMPAT) is looked up in the i386 table (`I386`), translated to
the x86_64 syscall that does the same (`canonical_map`), with its arguments read from the i386 registers.
"""

from __future__ import annotations

from opencws.probe.eventtypes import EventType as T

SYSCALLS: dict[str, tuple[int, T]] = {
    "write": (1, T.SELINUX),
    "open": (2, T.OPEN),
    "creat": (85, T.OPEN),
    "openat": (257, T.OPEN),
    "openat2": (437, T.OPEN),
    "open_by_handle_at": (304, T.OPEN),  # (any file of a mount, by handle: the file comes from the fd returned)
    "truncate": (76, T.OPEN),  # (an open for writing that truncates, as Datadog reports it: O_WRONLY | O_TRUNC)
    "ftruncate": (77, T.OPEN),
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
    "mknod": (133, T.MKNOD),
    "mknodat": (259, T.MKNOD),
    "symlink": (88, T.SYMLINK),
    "symlinkat": (266, T.SYMLINK),
    "setgroups": (116, T.SETGROUPS),
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

INTERNAL_IDENTITY = 26
"""`interested` value: ioctl, whose FS_IOC_SETVERSION sets an inode's i_generation, the identity inode discarders
are keyed by (a success bumps the discarder generation)."""

INTERNAL_DD = 27
"""`interested` value: prctl, the marker syscall by which a thread registers its dd context record
(bpf/ddcontext.h, `opencws.tracing`)."""
PRCTL = 157

CRED_ONLY: dict[str, int] = {"unshare": 272, "setns": 308}
"""Syscalls that change credentials (a new user namespace) without an event type of their own."""
BIRTH_ONLY: dict[str, int] = {"mknod": 133, "mknodat": 259}
"""Syscalls that create an inode, watched while a file type is on even when mknod events are off."""
IDENTITY_ONLY: dict[str, int] = {"ioctl": 16}
"""Syscalls that may give an inode another identity, watched while a file type is on."""
CHROOT = 161
MOUNT_CHANGES: dict[str, int] = {"mount": 165, "umount2": 166, "move_mount": 429, "pivot_root": 155,
                                 "open_tree": 428, "fsmount": 432, "unshare": 272}
"""Syscalls that make, free or move mounts (open_tree clones, fsmount makes; unshare only with CLONE_NEWNS)."""

FILE_TYPES = frozenset({T.OPEN, T.CHMOD, T.CHOWN, T.UTIMES, T.SETXATTR, T.REMOVEXATTR})
"""Types whose events may teach inode discarders (the births of inodes then matter)."""


I386: dict[str, tuple[int, str, int]] = {}
"""i386 syscall name -> (i386 number, the x86_64 syscall it acts as, I386_* variant bits)."""

I386_UID16 = 1
"""The old 16-bit uid/gid calls (chown, lchown, fchown, setuid...): ids are 16 bits, 0xffff means -1."""
I386_TIME32 = 2
"""Times with a 32-bit time_t (utime, utimes, futimesat, utimensat; not utimensat_time64)."""
I386_NO_FLAGS = 4
"""umount (oldumount): umount2 without its flags argument."""


def _i386(table: str) -> None:
    for line in table.split(";"):
        name, nr, *rest = line.split()
        canon = rest[0] if rest and not rest[0].isdigit() else name
        variant = int(rest[-1]) if rest and rest[-1].isdigit() else 0
        I386[name] = (int(nr), canon, variant)


_i386("write 4; open 5; creat 8; openat 295; openat2 437; open_by_handle_at 342; chmod 15; fchmod 94; fchmodat 306; fchmodat2 452;"
      f"chown 182 {I386_UID16}; lchown 16 {I386_UID16}; fchown 95 {I386_UID16}; chown32 212 chown;"
      "lchown32 198 lchown; fchown32 207 fchown; fchownat 298; link 9; linkat 303; rename 38; renameat 302;"
      "renameat2 353; unlink 10; unlinkat 301; rmdir 40; mkdir 39; mkdirat 296;"
      f"utime 30 {I386_TIME32}; utimes 271 {I386_TIME32}; futimesat 299 {I386_TIME32};"
      f"utimensat 320 {I386_TIME32}; utimensat_time64 412 utimensat;"
      "setxattr 226; lsetxattr 227; fsetxattr 228; setxattrat 463; removexattr 235; lremovexattr 236;"
      "fremovexattr 237; removexattrat 466; mount 21; move_mount 429; umount2 52;"
      f"umount 22 umount2 {I386_NO_FLAGS}; bpf 357;"
      f"setuid 23 {I386_UID16}; setgid 46 {I386_UID16}; setreuid 70 {I386_UID16}; setregid 71 {I386_UID16};"
      f"setresuid 164 {I386_UID16}; setresgid 170 {I386_UID16}; setfsuid 138 {I386_UID16};"
      f"setfsgid 139 {I386_UID16}; setuid32 213 setuid; setgid32 214 setgid; setreuid32 203 setreuid;"
      "setregid32 204 setregid; setresuid32 208 setresuid; setresgid32 210 setresgid; setfsuid32 215 setfsuid;"
      "setfsgid32 216 setfsgid; capset 185;"
      "symlink 83; symlinkat 304; setgroups 81; setgroups32 206 setgroups;"
      "unshare 310; setns 346; mknod 14; mknodat 297; chroot 61; pivot_root 217; open_tree 428; fsmount 432;"
      "truncate 92; ftruncate 93; truncate64 193 truncate; ftruncate64 194 ftruncate; ioctl 54")

IO_URING_OPS: dict[int, str] = {18: "openat", 28: "openat2", 35: "renameat", 36: "unlinkat", 37: "mkdirat",
                                 38: "symlinkat", 39: "linkat", 41: "fsetxattr", 42: "setxattr", 55: "ftruncate"}
"""io_uring opcodes the probe reports (as their syscall twins; `syscall` is then `io_uring:<op>`)."""

I386_NAME_BY_NR: dict[int, str] = {nr: name for name, (nr, _, _) in I386.items()}


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
        for nr in BIRTH_ONLY.values():  # (as mknod events, they drop the discarder too)
            out.setdefault(nr, INTERNAL_BIRTH)
        for nr in IDENTITY_ONLY.values():
            out.setdefault(nr, INTERNAL_IDENTITY)
    out[CHROOT] = INTERNAL_CHROOT  # (whenever sys_exit runs; the loader looks at /proc when it attaches it)
    out[PRCTL] = INTERNAL_DD  # (whenever sys_exit runs)
    for nr in MOUNT_CHANGES.values():
        out.setdefault(nr, INTERNAL_MOUNTS)
    return out


def _x86_64_numbers() -> dict[str, int]:
    out = {name: nr for name, (nr, _) in SYSCALLS.items()}
    out.update(CRED_ONLY)
    out.update(BIRTH_ONLY)
    out.update(IDENTITY_ONLY)
    out.update(MOUNT_CHANGES)
    out["chroot"] = CHROOT
    return out


X86_64_NR: dict[str, int] = _x86_64_numbers()
"""Every x86_64 syscall the probe may watch, by name."""


def canonical_map() -> dict[int, int]:
    """i386 number -> the x86_64 number of the syscall it acts as | variant bits << 16 (the kernel's
    `compat_canon`)."""
    return {nr: X86_64_NR[canon] | variant << 16 for nr, canon, variant in I386.values()}


def interested_map_i386(enabled: set[T]) -> dict[int, int]:
    """i386 syscall number -> event type: what its x86_64 twin gets from interested_map (same events)."""
    native = interested_map(enabled)
    return {nr: native[X86_64_NR[canon]] for nr, canon, _ in I386.values() if X86_64_NR[canon] in native}
