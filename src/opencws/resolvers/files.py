"""Files as the kernel saw them (`probe.events.FileInfo`) → the CWS event's `File`, with owner names.

The kernel gives the path, inode, mode, owner ids, times (wall clock, from the inode) and the filesystem
of the file's mount; this resolver adds the owner's user and group names, looked up in the root of the
process that touched the file (a container's own `/etc/passwd`), and keeps the rules of the contract:
- a path the kernel could not finish carries `path_resolution_error`; the path is what was resolved plus
  the rest of what the process passed, never a guess, never silently shortened;
- a file whose inode the kernel did not read (a failed walk, a name removed before it was read) reports
  `uid`/`gid` -1 (the kernel's "no id", `(uid_t)-1`) and no names: it must not claim to be root's.

Executables are shared by every process that runs them, so their `File` values are interned: one frozen
value (and one serialized form) per executable version.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from opencws.model.event import File
from opencws.probe.events import FileInfo

UNKNOWN_ID = -1
"""uid/gid of a file whose inode the kernel did not read (the schema requires the fields)."""


class NameResolver(Protocol):
    def user(self, uid: int, root: str = "/") -> str | None: ...
    def group(self, gid: int, root: str = "/") -> str | None: ...


def file_values(info: FileInfo, users: NameResolver, root: str) -> dict:
    """The `File` fields of a kernel file, owner names resolved in `root`."""
    known = info.inode is not None
    uid = info.uid if known and info.uid is not None else UNKNOWN_ID
    gid = info.gid if known and info.gid is not None else UNKNOWN_ID
    return {
        "path": info.path,
        "name": info.path.rsplit("/", 1)[-1] if info.path else None,
        "path_resolution_error": info.path_resolution_error,
        "inode": info.inode,
        "mode": info.mode,
        "in_upper_layer": True if info.in_upper_layer else None,
        "mount_id": info.mount_id or None,
        "filesystem": info.fs_type or None,
        "uid": uid,
        "gid": gid,
        "user": users.user(uid, root) if uid >= 0 else None,
        "group": users.group(gid, root) if gid >= 0 else None,
        "access_time": info.access_time_ns,
        "modification_time": info.modification_time_ns,
        "change_time": info.change_time_ns,
    }


def to_file(info: FileInfo, users: NameResolver, root: str) -> File:
    return File(**file_values(info, users, root))


class ExecutableFiles:
    """Interned `File` values of executables: one per (path, mount, inode, change time, root), LRU-bounded."""

    def __init__(self, users: NameResolver, size: int = 8192):
        self.users = users
        self.size = size
        self._files: OrderedDict[tuple, File] = OrderedDict()

    def get(self, info: FileInfo, root: str = "/") -> File:
        key = (info.path, info.mount_id, info.inode, info.change_time_ns, info.path_resolution_error, root)
        f = self._files.get(key)
        if f is None:
            f = self._files[key] = to_file(info, self.users, root)
            if len(self._files) > self.size:
                self._files.popitem(last=False)
        return f

    def __len__(self) -> int:
        return len(self._files)
