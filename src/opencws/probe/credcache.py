"""The kernel's per-thread credential cache (`cred_cache` in probe.bpf.c), seeded from /proc.

setuid/setgid/capset events report the credentials before the syscall without a sys_enter hook: the kernel
keeps each thread's credentials as last seen (fork, exec, and the exit of every credential-changing syscall)
and reports the cached ones as "before". Threads that were running before the probe started (or while no
credential type was on) are seeded here from /proc/<pid>/task/<tid>/status.

Order (`resync`): the credential syscalls are already watched; the cache is emptied, then every thread is
read and written only if the kernel has not written it meanwhile (BPF_NOEXIST), so a value read from /proc
never overwrites a newer one the kernel recorded.
"""

from __future__ import annotations

import ctypes
import os
import struct

from opencws.probe import libbpf

CREDS = struct.Struct("<8IQQQ")
"""struct ocws_creds: uid, gid, euid, egid, suid, sgid, fsuid, fsgid, cap_effective, cap_permitted,
cap_inheritable."""
_U32 = struct.Struct("<I")
BPF_NOEXIST = 1


def read_status(path: str) -> bytes | None:
    """The ocws_creds bytes of one /proc/<pid>/task/<tid>/status, or None (the thread is gone)."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError:
        return None
    fields: dict[bytes, list[bytes]] = {}
    for line in text.splitlines():
        key, _, value = line.partition(b":")
        if key in (b"Uid", b"Gid", b"CapInh", b"CapPrm", b"CapEff"):
            fields[key] = value.split()
    try:
        uid, gid = [int(v) for v in fields[b"Uid"]], [int(v) for v in fields[b"Gid"]]
        caps = [int(fields[k][0], 16) for k in (b"CapEff", b"CapPrm", b"CapInh")]
    except (KeyError, ValueError, IndexError):
        return None
    # status: real, effective, saved, fs
    return CREDS.pack(uid[0], gid[0], uid[1], gid[1], uid[2], gid[2], uid[3], gid[3], *caps)


def clear(fd: int) -> None:
    lb = libbpf.lib()
    key = ctypes.create_string_buffer(4)
    nxt = ctypes.create_string_buffer(4)
    keys = []
    prev = None
    while lb.bpf_map_get_next_key(fd, prev, nxt) == 0:
        keys.append(nxt.raw)
        key.raw = nxt.raw
        prev = key
    for k in keys:
        lb.bpf_map_delete_elem(fd, k)


def resync(fd: int, proc: str = "/proc") -> int:
    """Empty the cache and seed it with every thread's credentials; returns the threads seeded."""
    clear(fd)
    lb = libbpf.lib()
    seeded = 0
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            tids = [t for t in os.listdir(f"{entry.path}/task") if t.isdigit()]
        except OSError:
            continue
        for tid in tids:
            value = read_status(f"{entry.path}/task/{tid}/status")
            if value is not None and lb.bpf_map_update_elem(fd, _U32.pack(int(tid)), value, BPF_NOEXIST) == 0:
                seeded += 1
    return seeded
