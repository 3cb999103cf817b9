"""Names of kernel constants as they appear in CWS events and SECL rules.

Shared by the resolvers (numbers from the kernel → names in events) and the rule engine (names and
constants in rules → numbers). Values are Linux x86_64 ABI values.
"""

from __future__ import annotations

from functools import lru_cache

CAPABILITIES: dict[str, int] = {
    name: bit
    for bit, name in enumerate(
        [
            "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
            "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
            "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
            "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
            "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
            "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
            "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
            "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
            "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
        ]
    )
}  # fmt: skip

# Open flags other than the access mode (O_RDONLY=0, O_WRONLY=1, O_RDWR=2).
OPEN_FLAGS: dict[str, int] = {
    "O_WRONLY": 0o1,
    "O_RDWR": 0o2,
    "O_CREAT": 0o100,
    "O_EXCL": 0o200,
    "O_NOCTTY": 0o400,
    "O_TRUNC": 0o1000,
    "O_APPEND": 0o2000,
    "O_NONBLOCK": 0o4000,
    "O_DSYNC": 0o10000,
    "O_ASYNC": 0o20000,
    "O_DIRECT": 0o40000,
    "O_LARGEFILE": 0o100000,
    "O_DIRECTORY": 0o200000,
    "O_NOFOLLOW": 0o400000,
    "O_NOATIME": 0o1000000,
    "O_CLOEXEC": 0o2000000,
    "O_SYNC": 0o4010000,
    "O_PATH": 0o10000000,
    "O_TMPFILE": 0o20200000,
}
O_ACCMODE = 0o3
AT_REMOVEDIR = 0x200


def _names_of(mask: int, table: dict[str, int]) -> list[str]:
    names = []
    rest = mask
    for name, value in table.items():
        if value and mask & value == value:
            names.append(name)
            rest &= ~value
    names.sort()
    if rest:
        names.append(str(rest))
    return names


@lru_cache(maxsize=1024)
def capability_names(mask: int) -> tuple[str, ...]:
    """Capability bitmask → sorted names; unknown bits as their decimal value."""
    return tuple(_names_of(mask, {n: 1 << b for n, b in CAPABILITIES.items()}))


def capability_mask(names: list[str] | tuple[str, ...]) -> int:
    """Capability names → bitmask (the inverse of `capability_names`)."""
    mask = 0
    for n in names:
        mask |= 1 << CAPABILITIES[n] if n in CAPABILITIES else int(n)
    return mask


_OPEN_FLAG_BITS = {n: v for n, v in OPEN_FLAGS.items() if n not in ("O_WRONLY", "O_RDWR")}


@lru_cache(maxsize=1024)
def open_flag_names(flags: int) -> tuple[str, ...]:
    """open(2) flags → sorted names; access mode 0 gives O_RDONLY; unknown bits as a decimal string."""
    acc = flags & O_ACCMODE
    names = _names_of(flags & ~O_ACCMODE, _OPEN_FLAG_BITS)
    tail = [names.pop()] if names and names[-1].isdigit() else []
    if acc == 3:
        tail = [str(int(tail[0]) | 3 if tail else 3)]
    else:
        names.append(("O_RDONLY", "O_WRONLY", "O_RDWR")[acc])
    return tuple(sorted(names) + tail)


def open_flag_bits(names: list[str] | tuple[str, ...]) -> int:
    """Open flag names → bits (the inverse of `open_flag_names`; O_RDONLY is 0)."""
    bits = 0
    for n in names:
        bits |= 0 if n == "O_RDONLY" else OPEN_FLAGS[n] if n in OPEN_FLAGS else int(n)
    return bits
