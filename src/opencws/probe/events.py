"""Typed kernel events decoded from the probe's ring buffer.

These are kernel facts, not CWS events: the resolver/agent turns them into the JSON contract (names,
container ids, ancestors). Times are nanoseconds; `ktime_ns` is CLOCK_MONOTONIC (see `ktime_to_wall`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


@dataclass(slots=True, kw_only=True)
class Credentials:
    uid: int
    gid: int
    euid: int
    egid: int
    suid: int
    sgid: int
    fsuid: int
    fsgid: int
    cap_effective: int
    cap_permitted: int
    cap_inheritable: int


@dataclass(slots=True, kw_only=True)
class FileInfo:
    """A file as the kernel saw it. `path` is absolute (as seen from the task's root).

    When the walk could not finish, `path_resolution_error` says why and `path` is the resolved prefix
    (`path[:resolved_len]`) followed by the unresolved rest of the string the process passed.
    """

    path: str
    resolved_len: int
    path_resolution_error: str | None
    inode: int | None
    mode: int | None
    uid: int | None
    """The owner (None with the inode unread). A chown's file: the owner before the call (a refused call's: the
    unchanged owner), None when that could not be told (FI_OWNER_UNKNOWN: see `ChownEvent`)."""
    gid: int | None
    nlink: int | None
    access_time_ns: int | None
    modification_time_ns: int | None
    change_time_ns: int | None
    mount_id: int
    group_id: int
    device: int
    fs_type: str
    in_upper_layer: bool
    negative: bool
    """The name resolved to no file (a failed open, a removed name)."""
    flags: int
    """Raw FI_* flags (probe.h)."""
    generation: int = 0
    """The discarder generation when the kernel saw the file: a discarder learned from this event takes it, so
    that a mount or rename since then (which bumped the generation) has already invalidated it."""
    inode_generation: int | None = None
    """The inode's identity beside its number (its i_generation; an overlay file's, its real inode's), drawn anew
    for every inode ext2/3/4, tmpfs, xfs and btrfs make: an inode discarder holds for that identity only, never for
    another inode born on the same number. 0: the filesystem gives none (procfs, ramfs...); None without inode."""

    @property
    def resolved(self) -> bool:
        return self.path_resolution_error is None

    @property
    def path_rewritten(self) -> bool:
        """Another thread rewrote the path string during the call (FI_REWRITTEN): the kernel acted on another file
        than the string names now. Told by the kernel's own stamp of the inode it changed (chmod, chown, utimes,
        xattrs, mkdir: `file` is then that file, `requested_file` the decoy; a rename resolved at sys_enter), or by
        the outcome (a file without the new mode, owner or times, a removed name still there, a link between two
        inodes): `file` is then the decoy, the real file cannot be named."""
        return bool(self.flags & 1 << 13)

    @property
    def basename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(slots=True, kw_only=True)
class KernelEvent:
    """A kernel event. The reader's events of the file kinds are views over the record's bytes (see
    `opencws.probe.records`): their fields are decoded on access, so a consumer that drops an event on its
    type or pid pays almost nothing. They compare equal to, and print like, the eagerly built events."""

    type: ClassVar[str] = ""
    pid: int
    tid: int
    ppid: int
    ktime_ns: int
    cgroup_id: int
    uid: int
    gid: int
    comm: str
    in_chroot: bool = False
    """The task's root is not the top of its mount namespace (a chroot): its paths are from that root."""
    span_id: int | None = None
    """The APM span the thread was in (`opencws.tracing`: published by the application, read at event time); None
    when the thread published none or was in no span."""
    trace_id: int | None = None
    """The low 64 bits of that span's 128-bit trace id (None with span_id)."""


@dataclass(slots=True, kw_only=True)
class SyscallEvent(KernelEvent):
    syscall: str
    """The syscall's name in the table of the ABI it came through (`chown32`, `setresuid32` are i386 names)."""
    retval: int
    abi: str = "x86_64"
    """`i386` for a syscall made through the 32-bit entry (`int $0x80`, from a 32-bit or a 64-bit process): the
    same event as its x86_64 twin, told apart here."""
    sqpoll: bool = False
    """An io_uring operation submitted by the ring's SQPOLL kernel thread: any process sharing the ring's memory may
    have written it, so the process fields are the ring's owner: its process (pid; tid and name of its main thread,
    the kernel keeping no link to the thread that made the ring) and the credentials the ring runs with, not the
    kernel thread that ran it (`iou-sqp-<pid>`)."""

    @property
    def outcome(self) -> str:
        if self.retval >= 0:
            return "Success"
        return "Refused" if self.retval in (-1, -13) else "Error"


@dataclass(slots=True, kw_only=True)
class FileEvent(SyscallEvent):
    file: FileInfo


@dataclass(slots=True, kw_only=True)
class OpenEvent(FileEvent):
    type: ClassVar[str] = "open"
    flags: int = 0
    mode: int = 0


@dataclass(slots=True, kw_only=True)
class ChmodEvent(FileEvent):
    type: ClassVar[str] = "chmod"
    mode: int = 0
    requested_file: FileInfo | None = None
    """When another thread rewrote the path string during the call (`file.path_rewritten`): the file the string
    named when the probe read it (a decoy), while `file` is the one the kernel acted on, named from the kernel's
    inode. None otherwise."""


@dataclass(slots=True, kw_only=True)
class ChownEvent(FileEvent):
    """`file.uid`/`gid` are the owner before the call, as Datadog reports it: read at sys_enter, kept only for the
    inode the kernel then stamped with no other chown of it in between; else None (the string was rewritten between
    the reads, the walk at sys_enter could not finish, a concurrent chown). `new_uid`/`new_gid`: the owner asked for
    (-1: unchanged)."""

    type: ClassVar[str] = "chown"
    new_uid: int = -1
    new_gid: int = -1
    flags: int = 0
    requested_file: FileInfo | None = None
    """When another thread rewrote the path string during the call (`file.path_rewritten`): the file the string
    named when the probe read it (a decoy), while `file` is the one the kernel acted on, named from the kernel's
    inode. None otherwise."""


@dataclass(slots=True, kw_only=True)
class LinkEvent(FileEvent):
    type: ClassVar[str] = "link"
    destination: FileInfo | None = None
    flags: int = 0


@dataclass(slots=True, kw_only=True)
class RenameEvent(FileEvent):
    """A RENAME_EXCHANGE is two events, one per move (`flags` has the bit). A rename over an existing name carries
    the inode that name had (`overwritten_*`: the call may have freed it) when renames are resolved at sys_enter;
    None otherwise (the name had no file, the call failed, or resolved at sys_exit: it is gone by then)."""

    type: ClassVar[str] = "rename"
    destination: FileInfo | None = None
    flags: int = 0
    overwritten_inode: int | None = None
    overwritten_mode: int | None = None
    overwritten_uid: int | None = None
    overwritten_gid: int | None = None
    overwritten_nlink: int | None = None
    """Its link count before the call (1: the rename freed it, unless it was open)."""


@dataclass(slots=True, kw_only=True)
class UnlinkEvent(FileEvent):
    type: ClassVar[str] = "unlink"
    flags: int = 0
    requested_file: FileInfo | None = None
    """When another thread rewrote the path string during the call (`file.path_rewritten`) and the kernel said which
    name it removed: the file the string named when the probe read it (a decoy), while `file` is the name the kernel
    removed (its directory, resolved now, and the name it had; its inode as it was). None otherwise."""


@dataclass(slots=True, kw_only=True)
class RmdirEvent(FileEvent):
    type: ClassVar[str] = "rmdir"
    flags: int = 0
    requested_file: FileInfo | None = None
    """When another thread rewrote the path string during the call (`file.path_rewritten`) and the kernel said which
    name it removed: the file the string named when the probe read it (a decoy), while `file` is the name the kernel
    removed (its directory, resolved now, and the name it had; its inode as it was). None otherwise."""


@dataclass(slots=True, kw_only=True)
class MkdirEvent(FileEvent):
    type: ClassVar[str] = "mkdir"
    mode: int = 0
    requested_file: FileInfo | None = None
    """When another thread rewrote the path string during the call (`file.path_rewritten`): the file the string
    named when the probe read it (a decoy), while `file` is the one the kernel acted on, named from the kernel's
    inode. None otherwise."""


@dataclass(slots=True, kw_only=True)
class MknodEvent(FileEvent):
    """A node made by mknod/mknodat (OpenCWS's addition to Datadog's events): `file` is the new node."""

    type: ClassVar[str] = "mknod"
    mode: int = 0
    """The requested type and permissions (S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK, S_IFREG | rights)."""
    device: int = 0
    """The requested device number, in st_rdev's encoding (os.major/os.minor read it); 0 for other nodes."""


@dataclass(slots=True, kw_only=True)
class SymlinkEvent(FileEvent):
    """A symbolic link made by symlink/symlinkat (OpenCWS's addition): `file` is the link, `target` the text
    it holds, as the process gave it (not resolved: it may name nothing)."""

    type: ClassVar[str] = "symlink"
    target: str = ""


@dataclass(slots=True, kw_only=True)
class UtimesEvent(FileEvent):
    type: ClassVar[str] = "utimes"
    access_time_ns: int | None = None
    """Requested access time; None: now."""
    modification_time_ns: int | None = None
    access_time_omitted: bool = False
    modification_time_omitted: bool = False
    flags: int = 0
    requested_file: FileInfo | None = None
    """When another thread rewrote the path string during the call (`file.path_rewritten`): the file the string
    named when the probe read it (a decoy), while `file` is the one the kernel acted on, named from the kernel's
    inode. None otherwise."""


@dataclass(slots=True, kw_only=True)
class SetXattrEvent(FileEvent):
    type: ClassVar[str] = "setxattr"
    name: str = ""
    namespace: str = ""
    flags: int = 0
    requested_file: FileInfo | None = None
    """When another thread rewrote the path string during the call (`file.path_rewritten`): the file the string
    named when the probe read it (a decoy), while `file` is the one the kernel acted on, named from the kernel's
    inode. None otherwise."""


@dataclass(slots=True, kw_only=True)
class RemoveXattrEvent(FileEvent):
    type: ClassVar[str] = "removexattr"
    name: str = ""
    namespace: str = ""
    requested_file: FileInfo | None = None
    """When another thread rewrote the path string during the call (`file.path_rewritten`): the file the string
    named when the probe read it (a decoy), while `file` is the one the kernel acted on, named from the kernel's
    inode. None otherwise."""


@dataclass(slots=True, kw_only=True)
class MountEvent(FileEvent):
    """`file` is the mountpoint; `root` the root of the new mount (its mount id, group, device, fs type)."""

    type: ClassVar[str] = "mount"
    root: FileInfo | None = None
    fs_type: str = ""
    """The fs type the caller asked for (the `type` argument)."""
    flags: int = 0

    @property
    def new_mount_id(self) -> int | None:
        return self.root.mount_id if self.root else None

    @property
    def group_id(self) -> int | None:
        return self.root.group_id if self.root else None

    @property
    def device(self) -> int | None:
        return self.root.device if self.root else None


@dataclass(slots=True, kw_only=True)
class UmountEvent(FileEvent):
    type: ClassVar[str] = "umount"
    flags: int = 0


@dataclass(slots=True, kw_only=True)
class SelinuxEvent(FileEvent):
    """A write to selinuxfs. kind: `bool` (bool_name, value), `commit` (commit_pending_bools), `enforce`."""

    type: ClassVar[str] = "selinux"
    kind: str = ""
    bool_name: str | None = None
    value: str = ""


@dataclass(slots=True, kw_only=True)
class BpfEvent(SyscallEvent):
    type: ClassVar[str] = "bpf"
    cmd: int = 0
    cmd_name: str = ""
    map_type: int | None = None
    prog_type: int | None = None
    attach_type: int | None = None
    name: str = ""
    insn_count: int | None = None
    helpers: list[int] = field(default_factory=list)
    helpers_complete: bool = True
    """False when some instructions could not be read: `helpers` may miss some."""


@dataclass(slots=True, kw_only=True)
class CredentialsEvent(SyscallEvent):
    before: Credentials
    after: Credentials
    before_known: bool = True
    """False when the kernel had no cached credentials for the thread: `before` is then a copy of `after`."""


@dataclass(slots=True, kw_only=True)
class SetuidEvent(CredentialsEvent):
    type: ClassVar[str] = "setuid"


@dataclass(slots=True, kw_only=True)
class SetgidEvent(CredentialsEvent):
    type: ClassVar[str] = "setgid"


@dataclass(slots=True, kw_only=True)
class CapsetEvent(CredentialsEvent):
    type: ClassVar[str] = "capset"


@dataclass(slots=True, kw_only=True)
class SetgroupsEvent(SyscallEvent):
    """setgroups (OpenCWS's addition): the thread's supplementary groups after the call, as the kernel holds
    them."""

    type: ClassVar[str] = "setgroups"
    groups: list[int] = field(default_factory=list)
    groups_truncated: bool = False
    """More groups than the record carries (64): `groups` is the first ones."""


@dataclass(slots=True, kw_only=True)
class ExecEvent(KernelEvent):
    type: ClassVar[str] = "exec"
    file: FileInfo
    credentials: Credentials
    argv: list[str]
    argv_truncated: bool
    envp: list[str]
    envp_truncated: bool
    start_time_ns: int
    cgroup: str
    """The name of the process's cgroup v2 directory (e.g. `docker-<64 hex>.scope`); with `cgroup_id`, what
    finds the container."""
    tty: str
    """The controlling terminal as the kernel names it (`pts0`, `tty1`), empty when none."""
    interpreter: FileInfo | None = None
    """For a script, its interpreter (`file` is then the script); None for a binary."""

    @property
    def args(self) -> list[str]:
        return self.argv[1:]


@dataclass(slots=True, kw_only=True)
class ForkEvent(KernelEvent):
    """pid/tid/comm are the parent's; the child is child_pid."""

    type: ClassVar[str] = "fork"
    child_pid: int
    child_tid: int
    child_cgroup_id: int
    start_time_ns: int
    credentials: Credentials
    cgroup: str
    """Name of the cgroup v2 directory the child starts in (the parent's)."""
    tty: str


@dataclass(slots=True, kw_only=True)
class ExitEvent(KernelEvent):
    type: ClassVar[str] = "exit"
    status: int
    """The wait status (code << 8 | signal)."""

    @property
    def exit_code(self) -> int:
        return (self.status >> 8) & 0xFF

    @property
    def signal(self) -> int:
        return self.status & 0x7F


EVENT_CLASSES: dict[str, type[KernelEvent]] = {
    cls.type: cls
    for cls in (
        OpenEvent, ChmodEvent, ChownEvent, LinkEvent, RenameEvent, UnlinkEvent, RmdirEvent, MkdirEvent,
        UtimesEvent, SetXattrEvent, RemoveXattrEvent, MountEvent, UmountEvent, SelinuxEvent, BpfEvent,
        SetuidEvent, SetgidEvent, CapsetEvent, ExecEvent, ForkEvent, ExitEvent, MknodEvent, SymlinkEvent,
        SetgroupsEvent,
    )
}


def positional_builder(cls: type) -> Callable[..., Any]:
    """A constructor taking an object to fill (or None: a new one) then the dataclass fields positionally,
    in declaration order (base classes first; private fields left out).

    The decoder's hot path: keyword construction of these kw_only dataclasses costs about four times more.
    """
    names = [f.name for f in fields(cls) if not f.name.startswith("_")]
    body = "".join(f"    o.{n} = {n}\n" for n in names)
    src = f"def build(o, {', '.join(names)}):\n    if o is None:\n        o = new(cls)\n{body}    return o\n"
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    exec(src, namespace)
    return namespace["build"]
