"""Realistic example events, for benchmarks, tests and documentation."""

from __future__ import annotations

from opencws.model.event import (
    ContainerContext,
    Event,
    EventContext,
    File,
    FileEvent,
    ProcessCacheEntry,
    ProcessContext,
    ProcessCredentials,
    UserContext,
)

BASE_NS = 1_763_747_702_123_456_789  # 2025-11-21T17:55:02.123456789Z
CONTAINER_ID = "3f4b8ad0c1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8"
_CHAIN = [
    ("/usr/bin/bash", "bash", ["-c", "make test"]),
    ("/usr/sbin/sshd", "sshd", ["-D", "-R"]),
    ("/usr/sbin/sshd", "sshd", ["-D"]),
    ("/usr/bin/containerd-shim", "containerd-shim", ["-namespace", "moby"]),
    ("/sbin/init", "systemd", ["--system", "--deserialize", "31"]),
]


def credentials(uid: int = 0, user: str = "root", caps: list[str] | None = None) -> ProcessCredentials:
    """Same ids for every kind (real, effective, fs); root gets a few capabilities unless `caps` says."""
    caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_SYS_ADMIN"] if caps is None and uid == 0 else caps or []
    return ProcessCredentials(
        uid=uid, user=user, gid=uid, group=user, euid=uid, euser=user, egid=uid, egroup=user,
        fsuid=uid, fsuser=user, fsgid=uid, fsgroup=user, cap_effective=list(caps), cap_permitted=list(caps),
    )  # fmt: skip


def executable(path: str, inode: int, mount_id: int = 27, fs: str = "ext4") -> File:
    return File(
        path=path, name=path.rsplit("/", 1)[-1], inode=inode, mode=0o100755, mount_id=mount_id,
        filesystem=fs, uid=0, gid=0, user="root", group="root",
        modification_time=BASE_NS - 86_400_000_000_000, change_time=BASE_NS - 86_400_000_000_000,
    )  # fmt: skip


def ancestors(depth: int, first_pid: int = 4000) -> list[ProcessCacheEntry]:
    """`depth` ancestors, nearest first, ending at pid 1 when the chain is long enough."""
    out = []
    for i in range(depth):
        path, comm, args = _CHAIN[min(i, len(_CHAIN) - 1)]
        pid = 1 if i == depth - 1 and depth >= len(_CHAIN) else first_pid - 10 * i
        out.append(
            ProcessCacheEntry(
                pid=pid,
                ppid=max(first_pid - 10 * (i + 1), 1) if pid != 1 else 0,
                tid=pid,
                uid=0,
                gid=0,
                user="root",
                group="root",
                comm=comm[:15],
                fork_time=BASE_NS - (i + 1) * 1_000_000_000,
                exec_time=BASE_NS - (i + 1) * 900_000_000,
                credentials=credentials(),
                executable=executable(path, 1000 + i),
                args=args,
            )
        )
    return out


def exec_event(depth: int = 5, container: bool = True) -> Event:
    """An exec of `/usr/bin/curl` by a shell, with `depth` ancestors."""
    chain = ancestors(depth)
    cont = ContainerContext(id=CONTAINER_ID) if container else None
    proc = ProcessContext(
        pid=4242, ppid=chain[0].pid if chain else 1, tid=4242, uid=1000, gid=1000, user="app", group="app",
        comm="curl", tty="pts0", fork_time=BASE_NS - 2_000_000, exec_time=BASE_NS,
        credentials=credentials(1000, "app"), executable=executable("/usr/bin/curl", 524301),
        container=cont, args=["-sSL", "https://example.com/install.sh"], envs=["PATH", "HOME", "TERM"],
        parent=chain[0] if chain else None, ancestors=chain or None,
    )  # fmt: skip
    return Event(
        evt=EventContext(name="exec", category="Process Activity", outcome="Success"),
        usr=UserContext(id="app", group="app"),
        process=proc,
        container=cont,
        date=BASE_NS,
    )


def open_event(path: str = "/etc/shadow", depth: int = 3) -> Event:
    """An open of `path` for reading by a process with `depth` ancestors."""
    event = exec_event(depth, container=False)
    event.evt = EventContext(name="open", category="File Activity", outcome="Success")
    event.file = FileEvent(
        path=path, name=path.rsplit("/", 1)[-1], inode=786_433, mode=0o100640, mount_id=27, filesystem="ext4",
        uid=0, gid=42, user="root", group="shadow", flags=["O_RDONLY"],
        modification_time=BASE_NS - 3_600_000_000_000, change_time=BASE_NS - 3_600_000_000_000,
    )  # fmt: skip
    event.retval = 3
    return event
