"""The CWS event: the JSON document the agent emits and the backend accepts.

The classes mirror `shared/spec/cws-event.schema.json` definition by definition; values are held in their
JSON form (names for capabilities and flags, integer modes) except dates, which are integer nanoseconds
since the epoch (`Timestamp`). Field order is the serialization order.
Files, credentials and process entries are frozen: they are long-lived values shared by many events (a
process's ancestors, its executable), so each is serialized once and its JSON reused.
"""

from __future__ import annotations

from typing import Any

from opencws.model.meta import Timestamp, model, prop


@model
class EventContext:
    name: str | None = prop("Event name")
    category: str | None = prop("Event category")
    outcome: str | None = prop("Event outcome")


@model(frozen=True)
class File:
    path: str | None = prop("File path")
    name: str | None = prop("File basename")
    path_resolution_error: str | None = prop("Error message from path resolution")
    inode: int | None = prop("File inode number")
    mode: int | None = prop("File mode")
    in_upper_layer: bool | None = prop("Indicator of file OverlayFS layer")
    mount_id: int | None = prop("File mount ID")
    filesystem: str | None = prop("File filesystem name")
    uid: int = prop("File User ID", required=True, default=0)
    gid: int = prop("File Group ID", required=True, default=0)
    user: str | None = prop("File user")
    group: str | None = prop("File group")
    attribute_name: str | None = prop("File extended attribute name")
    attribute_namespace: str | None = prop("File extended attribute namespace")
    flags: list[str] | None = prop("File flags")
    access_time: Timestamp | None = prop()
    modification_time: Timestamp | None = prop("File modified time")
    change_time: Timestamp | None = prop("File change time")


@model(frozen=True)
class FileEvent(File):
    destination: File | None = prop("Target file information")
    new_mount_id: int | None = prop("New Mount ID")
    group_id: int | None = prop("Group ID")
    device: int | None = prop("Device associated with the file")
    fstype: str | None = prop("Filesystem type")
    # Carried for rule evaluation, never serialized (the schema has no place for them): another thread rewrote the
    # path string during the call (the probe's FI_REWRITTEN), and the path that string named then (a decoy)
    path_rewritten: bool | None = prop(internal=True)
    requested_path: str | None = prop(internal=True)
    source_path: str | None = prop(internal=True)
    """Of a bind mount, the directory it shows (not in the schema), for SECL's `mount.source.path`."""


@model
class SELinuxBoolChange:
    name: str | None = prop("SELinux boolean name")
    state: str | None = prop("SELinux boolean state ('on' or 'off')")


@model
class SELinuxEnforceStatus:
    status: str | None = prop("SELinux enforcement status (one of 'enforcing', 'permissive' or 'disabled')")


@model
class SELinuxBoolCommit:
    state: bool | None = prop("SELinux boolean commit operation")


@model
class SELinuxEvent:
    bool: SELinuxBoolChange | None = prop("SELinux boolean operation")
    enforce: SELinuxEnforceStatus | None = prop("SELinux enforcement change")
    bool_commit: SELinuxBoolCommit | None = prop("SELinux boolean commit")


@model
class BPFMap:
    name: str | None = prop("Name of the BPF map")
    map_type: str | None = prop("Type of the BPF map")


@model
class BPFProgram:
    name: str | None = prop("Name of the BPF program")
    program_type: str | None = prop("Type of the BPF program")
    attach_type: str | None = prop("Attach type of the BPF program")
    helpers: list[str] | None = prop("List of helpers used by the BPF program")


@model
class BPFEvent:
    cmd: str = prop("BPF command", required=True, default="")
    map: BPFMap | None = prop("BPF map")
    program: BPFProgram | None = prop("BPF program")


@model
class UserContext:
    id: str | None = prop("User name")
    group: str | None = prop("Group name")


@model
class ContainerContext:
    id: str | None = prop("Container ID")
    created_at: Timestamp | None = prop(internal=True)
    """When the container started (its first process), for SECL's `container.created_at` (not in the schema)."""
    tags: list[str] | None = prop(internal=True)
    """The container's tags (`image_name:nginx`, ...) from the runtime's files, for SECL's `container.tags`."""


@model
class DDContext:
    span_id: int | None = prop("Span ID used for APM correlation")
    trace_id: int | None = prop("Trace ID used for APM correlation")


@model(frozen=True)
class ProcessCredentials:
    uid: int = prop("User ID", required=True, default=0)
    user: str | None = prop("User name")
    gid: int = prop("Group ID", required=True, default=0)
    group: str | None = prop("Group name")
    euid: int = prop("Effective User ID", required=True, default=0)
    euser: str | None = prop("Effective User name")
    egid: int = prop("Effective Group ID", required=True, default=0)
    egroup: str | None = prop("Effective Group name")
    fsuid: int = prop("Filesystem User ID", required=True, default=0)
    fsuser: str | None = prop("Filesystem User name")
    fsgid: int = prop("Filesystem Group ID", required=True, default=0)
    fsgroup: str | None = prop("Filesystem Group name")
    cap_effective: list[str] = prop("Effective Capacity set", required=True, default_factory=list)
    cap_permitted: list[str] = prop("Permitted Capacity set", required=True, default_factory=list)
    destination: dict[str, Any] | None = prop("Credentials after the operation")


@model(frozen=True)
class ProcessCacheEntry:
    pid: int | None = prop("Process ID")
    ppid: int | None = prop("Parent Process ID")
    tid: int | None = prop("Thread ID")
    uid: int = prop("User ID", required=True, default=0)
    gid: int = prop("Group ID", required=True, default=0)
    user: str | None = prop("User name")
    group: str | None = prop("Group name")
    path_resolution_error: str | None = prop("Description of an error in the path resolution")
    comm: str | None = prop("Command name")
    tty: str | None = prop("TTY associated with the process")
    fork_time: Timestamp | None = prop("Fork time of the process")
    exec_time: Timestamp | None = prop("Exec time of the process")
    exit_time: Timestamp | None = prop("Exit time of the process")
    credentials: ProcessCredentials | None = prop("Credentials associated with the process")
    executable: File | None = prop("File information of the executable")
    container: ContainerContext | None = prop("Container context")
    args: list[str] | None = prop("Command line arguments")
    args_truncated: bool | None = prop("Indicator of arguments truncation")
    envs: list[str] | None = prop("Environment variables of the process")
    envs_truncated: bool | None = prop("Indicator of environments variable truncation")
    envp: str | None = prop(internal=True)
    """The full `NAME=value` pairs joined by NUL (one string: a list of strings costs 50 bytes more per
    variable, in a cache of thousands of processes), for SECL's `process.envp`; events carry the names only."""
    argv0: str | None = prop(internal=True)
    """argv[0] (events carry `args`, the arguments after it), for SECL's `process.argv0`."""
    cgroup_id: int | None = prop(internal=True)
    """The cgroup (v2 id) the process runs in, the key of SECL's cgroup-scoped rule variables."""
    auid: int | None = prop(internal=True)
    """The login uid (not in the CWS event's schema), for SECL's `process.auid`; None when unknown."""


@model(frozen=True)
class ProcessContext(ProcessCacheEntry):
    parent: ProcessCacheEntry | None = prop("Parent process")
    ancestors: list[ProcessCacheEntry] | None = prop("Ancestor processes")


@model
class Event:
    """A CWS event. `retval` is carried for rule evaluation (`open.retval`) and never serialized."""

    evt: EventContext | None = prop()
    file: FileEvent | None = prop()
    selinux: SELinuxEvent | None = prop()
    bpf: BPFEvent | None = prop(legacy=False)
    usr: UserContext | None = prop()
    process: ProcessContext | None = prop()
    dd: DDContext | None = prop(legacy=False)
    container: ContainerContext | None = prop()
    date: Timestamp | None = prop()
    retval: int | None = prop(internal=True)
    exit_status: int | None = prop(internal=True)
    """An exit's wait status (`code << 8 | core dump 0x80 | signal`), for SECL's `exit.cause`/`exit.code`."""


MODEL_CLASSES: tuple[type, ...] = (
    EventContext,
    File,
    FileEvent,
    SELinuxBoolChange,
    SELinuxEnforceStatus,
    SELinuxBoolCommit,
    SELinuxEvent,
    BPFMap,
    BPFProgram,
    BPFEvent,
    UserContext,
    ContainerContext,
    DDContext,
    ProcessCredentials,
    ProcessCacheEntry,
    ProcessContext,
)
