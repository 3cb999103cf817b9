"""Builders of model events for the SECL tests (real `opencws.model.event` objects)."""

from __future__ import annotations

from typing import Any

from opencws.model.event import (
    BPFEvent,
    BPFMap,
    BPFProgram,
    ContainerContext,
    Event,
    EventContext,
    File,
    FileEvent,
    ProcessCacheEntry,
    ProcessContext,
    ProcessCredentials,
    SELinuxBoolChange,
    SELinuxEnforceStatus,
    SELinuxEvent,
)

NOW = 1_790_000_000_000_000_000


def entry(path: str, pid: int, *, comm: str | None = None, uid: int = 0, **kw: Any) -> ProcessCacheEntry:
    name = path.rsplit("/", 1)[-1]
    return ProcessCacheEntry(
        pid=pid, ppid=max(pid - 1, 0), tid=pid, comm=comm or name, uid=uid,
        executable=File(path=path, name=name, mode=0o100755), **kw,
    )  # fmt: skip


def process(
    path: str = "/usr/bin/cat",
    *,
    pid: int = 4242,
    args: list[str] | None = None,
    ancestors: list[tuple[str, int]] | None = None,
    container: str | None = None,
    caps: list[str] | None = None,
    uid: int = 0,
    tty: str | None = None,
    created: int | None = None,
    credentials_dest: dict[str, Any] | None = None,
) -> ProcessContext:
    chain = [
        entry(p, i)
        for p, i in (ancestors if ancestors is not None else [("/usr/bin/bash", 100), ("/sbin/init", 1)])
    ]
    name = path.rsplit("/", 1)[-1]
    return ProcessContext(
        pid=pid,
        ppid=chain[0].pid if chain else 0,
        tid=pid,
        comm=name[:15],
        uid=uid,
        tty=tty,
        exec_time=created,
        executable=File(path=path, name=name, mode=0o100755),
        args=args,
        container=ContainerContext(id=container) if container else None,
        credentials=ProcessCredentials(
            uid=uid,
            euid=uid,
            fsuid=uid,
            user="root" if uid == 0 else "user",
            cap_effective=caps or [],
            cap_permitted=caps or [],
            destination=credentials_dest,
        ),
        parent=chain[0] if chain else None,
        ancestors=chain,
    )


def event(
    name: str,
    *,
    file: FileEvent | None = None,
    proc: ProcessContext | None = None,
    retval: int | None = None,
    outcome: str = "Success",
    container: str | None = None,
    **kw: Any,
) -> Event:
    return Event(
        evt=EventContext(name=name, category="File Activity", outcome=outcome),
        file=file,
        process=proc or process(container=container),
        container=ContainerContext(id=container) if container else None,
        date=NOW,
        retval=retval,
        **kw,
    )


def open_event(path: str, flags: list[str] | None = None, *, dest: File | None = None, **kw: Any) -> Event:
    name = path.rsplit("/", 1)[-1]
    f = FileEvent(path=path, name=name, mode=0o100644, flags=flags or ["O_RDONLY"], destination=dest)
    return event("open", file=f, **kw)


def file_event(
    name: str,
    path: str,
    *,
    dest: File | None = None,
    mode: int = 0o100644,
    flags: list[str] | None = None,
    **kw: Any,
) -> Event:
    base = path.rsplit("/", 1)[-1]
    f = FileEvent(path=path, name=base, mode=mode, uid=0, gid=0, destination=dest, flags=flags)
    return event(name, file=f, **kw)


def exec_event(path: str, args: list[str] | None = None, **kw: Any) -> Event:
    pkw = {k: kw.pop(k) for k in ("ancestors", "container", "tty", "caps", "uid", "created") if k in kw}
    return event("exec", proc=process(path, args=args, **pkw), container=pkw.get("container"), **kw)


def selinux_event(
    *, status: str | None = None, bool_name: str | None = None, state: str | None = None
) -> Event:
    return event(
        "selinux",
        selinux=SELinuxEvent(
            enforce=SELinuxEnforceStatus(status=status) if status else None,
            bool=SELinuxBoolChange(name=bool_name, state=state) if bool_name else None,
        ),
    )


def bpf_event(
    cmd: str, *, prog_type: str | None = None, helpers: list[str] | None = None, map_type: str | None = None
) -> Event:
    return event(
        "bpf",
        bpf=BPFEvent(
            cmd=cmd,
            program=BPFProgram(name="prog", program_type=prog_type, helpers=helpers) if prog_type else None,
            map=BPFMap(name="m", map_type=map_type) if map_type else None,
        ),
    )
