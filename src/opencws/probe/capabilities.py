"""Can this machine run the probe? Cheap checks, plus one trial load of a two-instruction program."""

from __future__ import annotations

import ctypes
import functools
import os
import struct
from pathlib import Path

BTF_PATH = Path("/sys/kernel/btf/vmlinux")
SYS_BPF = 321  # x86_64
BPF_PROG_LOAD = 5
BPF_PROG_TYPE_RAW_TRACEPOINT = 17


CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


def missing_capabilities(status: str | None = None) -> str | None:
    """Why root cannot load and attach the probe for want of capabilities (a container or `setpriv` dropped
    them), or None. Loading and attaching tracing programs takes CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN."""
    if os.geteuid() != 0:
        return "not root: the probe needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN)"
    if status is None:
        status = Path("/proc/self/status").read_text()
    line = next((ln for ln in status.splitlines() if ln.startswith("CapEff:")), None)
    if line is None:
        return None
    eff = int(line.split()[1], 16)
    if eff >> CAP_SYS_ADMIN & 1 or (eff >> CAP_BPF & 1 and eff >> CAP_PERFMON & 1):
        return None
    missing = [name for name, bit in (("CAP_BPF", CAP_BPF), ("CAP_PERFMON", CAP_PERFMON)) if not eff >> bit & 1]
    return (f"root, but without {' and '.join(missing)} (or CAP_SYS_ADMIN) in its effective capabilities: "
            "run the agent with them (for a container: --cap-add BPF --cap-add PERFMON, or --privileged)")


def _trial_load() -> str | None:
    libc = ctypes.CDLL(None, use_errno=True)
    insns = struct.pack("<BBhi", 0xB7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)  # r0 = 0; exit
    insn_buf = ctypes.create_string_buffer(insns, len(insns))
    license = ctypes.create_string_buffer(b"GPL")
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<IIQQ", attr, 0, BPF_PROG_TYPE_RAW_TRACEPOINT, 2,
                     ctypes.addressof(insn_buf), ctypes.addressof(license))
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(SYS_BPF), ctypes.c_long(BPF_PROG_LOAD), attr, ctypes.c_uint(128))
    if fd < 0:
        err = ctypes.get_errno()
        if err == 1:
            return "the kernel refuses BPF programs (EPERM: missing CAP_BPF/CAP_SYS_ADMIN, lockdown or seccomp)"
        if err == 38:
            return "the kernel has no bpf() system call (ENOSYS: built without CONFIG_BPF_SYSCALL)"
        return f"a trial BPF program load failed: {os.strerror(err)}"
    os.close(fd)
    return None


@functools.cache
def bpf_refused_reason() -> str | None:
    """Why BPF programs cannot be loaded here, or None when they can."""
    if os.uname().machine != "x86_64":
        return f"the probe supports x86_64 only (this is {os.uname().machine})"
    problem = missing_capabilities()
    if problem:
        return problem
    if not BTF_PATH.exists():
        return f"no kernel BTF at {BTF_PATH} (needs CONFIG_DEBUG_INFO_BTF=y)"
    try:
        from opencws.probe.libbpf import lib

        lib()
    except Exception as exc:
        return str(exc)
    return _trial_load()
