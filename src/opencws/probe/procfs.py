"""A snapshot of the processes already running when the probe starts, read from /proc.

The probe only sees processes that fork or exec after it attaches; the process tree starts from this.
Races are normal (a process exits while being read): such a process is skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from opencws.probe.events import Credentials
from opencws.probe.statx import mount_id

CLK_TCK = os.sysconf("SC_CLK_TCK")
CGROUP_V2_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))


@dataclass(slots=True, kw_only=True)
class ProcessSnapshot:
    pid: int
    ppid: int
    comm: str
    exe: str | None
    """None for kernel threads (and when the executable cannot be read)."""
    exe_inode: int | None
    exe_device: int | None
    exe_mount_id: int | None
    argv: list[str]
    envp: list[str]
    """The environment the process started with (empty when unreadable, e.g. a kernel thread)."""
    credentials: Credentials
    start_time_ns: int
    """Nanoseconds since boot (CLOCK_BOOTTIME), in clock ticks' precision; ExecEvent.start_time_ns is the
    same clock."""
    tty: str
    """The controlling terminal as the kernel names it (`pts0`, `tty1`), empty when none; exec and fork
    events carry the same name."""
    cgroups: list[str]
    """Lines of /proc/<pid>/cgroup (`hierarchy:controllers:path`)."""
    cgroup_path: str | None
    """The cgroup v2 path (the `0::` line)."""
    cgroup_id: int | None
    """The cgroup v2 id, as events carry it (inode of the cgroup directory)."""
    loginuid: int | None = None
    """The login uid (/proc/<pid>/loginuid, AUDIT_AUID_UNSET when never set); None when unreadable."""


def _status(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def tty_name(tty_nr: int) -> str:
    """The kernel's tty name (tty_struct.name) for a /proc/<pid>/stat tty_nr; "" when none."""
    if not tty_nr:
        return ""
    major = (tty_nr >> 8) & 0xFFF
    minor = (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if 136 <= major <= 143:
        return f"pts{(major - 136) * 256 + minor}"
    if major == 4:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    if major == 5 and minor == 0:
        return "tty"
    return f"{major}:{minor}"


def _cgroup_id(path: str | None) -> int | None:
    if path is None:
        return None
    for root in CGROUP_V2_ROOTS:
        candidate = root / path.lstrip("/")
        try:
            if root.is_dir() and (root / "cgroup.procs").exists():
                return candidate.stat().st_ino
        except OSError:
            continue
    return None


AUDIT_AUID_UNSET = 4294967295
"""The login uid of a process no login set (pam_loginuid sets it once per session, children inherit it)."""


def read_loginuid(pid: int, proc: Path = Path("/proc")) -> int | None:
    """The login uid of process `pid` (kernels with audit support), or None when gone or unreadable."""
    try:
        return int((proc / str(pid) / "loginuid").read_bytes())
    except (OSError, ValueError):
        return None


def read_process(pid: int, proc: Path = Path("/proc")) -> ProcessSnapshot | None:
    """One process, or None when it is gone (or unreadable)."""
    base = proc / str(pid)
    try:
        # a comm is any 15 bytes (prctl PR_SET_NAME): decoded as the kernel records' comm is (errors replaced)
        stat = (base / "stat").read_text(errors="replace")
        status = _status((base / "status").read_text(errors="replace"))
        cmdline = (base / "cmdline").read_bytes()
        cgroups = (base / "cgroup").read_text(errors="replace").splitlines()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    comm = stat[stat.index("(") + 1: stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2:].split()
    ppid = int(fields[1])
    tty_nr = int(fields[4])
    start_ticks = int(fields[19])
    uids = [int(x) for x in status["Uid"].split()]
    gids = [int(x) for x in status["Gid"].split()]
    creds = Credentials(
        uid=uids[0], euid=uids[1], suid=uids[2], fsuid=uids[3],
        gid=gids[0], egid=gids[1], sgid=gids[2], fsgid=gids[3],
        cap_effective=int(status["CapEff"], 16), cap_permitted=int(status["CapPrm"], 16),
        cap_inheritable=int(status["CapInh"], 16),
    )
    exe = exe_inode = exe_device = exe_mid = None
    try:
        exe = os.readlink(base / "exe")
        st = os.stat(base / "exe")
        exe_inode, exe_device = st.st_ino, st.st_dev
        exe_mid = mount_id(base / "exe")
    except OSError:
        pass
    try:
        environ = (base / "environ").read_bytes()
    except OSError:
        environ = b""
    v2 = next((line.split(":", 2)[2] for line in cgroups if line.startswith("0::")), None)
    return ProcessSnapshot(
        pid=pid, ppid=ppid, comm=comm, exe=exe, exe_inode=exe_inode, exe_device=exe_device,
        exe_mount_id=exe_mid,
        argv=[os.fsdecode(a) for a in cmdline.split(b"\0")[:-1]] if cmdline else [],
        envp=[os.fsdecode(a) for a in environ.split(b"\0")[:-1]] if environ else [],
        credentials=creds, start_time_ns=start_ticks * 1_000_000_000 // CLK_TCK, tty=tty_name(tty_nr),
        cgroups=cgroups, cgroup_path=v2, cgroup_id=_cgroup_id(v2), loginuid=read_loginuid(pid, proc),
    )


def snapshot(proc: Path = Path("/proc")) -> list[ProcessSnapshot]:
    """Every process (thread-group leaders) running now, by pid."""
    out = []
    for entry in sorted(int(n) for n in os.listdir(proc) if n.isdigit()):
        p = read_process(entry, proc)
        if p is not None:
            out.append(p)
    return out
