"""Mount id → filesystem type, for files the kernel did not describe (the `/proc` snapshot's executables).

Kernel events carry the fs type of each file's mount themselves; this table serves what was read from
`/proc` before the probe started. It is read from `/proc/self/mountinfo` and read again when an unknown
mount id is asked for (at most once per `min_interval` seconds: a mount id nobody has stays unknown cheaply).
"""

from __future__ import annotations

import posixpath
import re
import time
from collections.abc import Iterable


class MountTable:
    def __init__(self, proc: str = "/proc", *, min_interval: float = 1.0, clock=time.monotonic):
        self.path = f"{proc}/self/mountinfo"
        self.min_interval = min_interval
        self.clock = clock
        self._fs: dict[int, str] = {}
        self._read_at: float | None = None

    def fs_type(self, mount_id: int) -> str:
        """The filesystem type of a mount ("" when unknown)."""
        fs = self._fs.get(mount_id)
        if fs is None and mount_id:
            now = self.clock()
            if self._read_at is None or now - self._read_at >= self.min_interval:
                self._read_at = now
                self._fs = read_mountinfo(self.path)
                fs = self._fs.get(mount_id)
        return fs or ""


def read_mountinfo(path: str) -> dict[int, str]:
    """mount id → fs type from a mountinfo file (fields: id parent major:minor root mountpoint opts
    [optional fields...] - fstype source super-opts)."""
    out: dict[int, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                try:
                    out[int(parts[0])] = parts[parts.index("-") + 1]
                except (ValueError, IndexError):
                    continue
    except OSError:
        pass
    return out


MS_BIND = 4096


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (`\\040`)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def bind_source(proc: str, pids: Iterable[int], mount_id: int) -> str:
    """The path (in the mounting process's mount namespace) of the directory a bind mount `mount_id` shows:
    its root within its file system (mountinfo's 4th field), below the mountpoint of another mount of the same
    file system whose root contains it (`/` for a bind of the root file system's `/`). Read from the
    mountinfo of the first of `pids` that sees the mount (the mounting process may be gone: its parent is in
    the same namespace); "" when none does (unmounted since, or every process gone)."""
    if not mount_id:
        return ""
    for pid in pids:
        try:
            with open(f"{proc}/{pid}/mountinfo", encoding="utf-8", errors="replace") as f:
                lines = [line.split() for line in f]
        except OSError:
            continue
        mounts = [(p[0], p[2], _unescape(p[3]), _unescape(p[4])) for p in lines if len(p) >= 5]
        new = next((m for m in mounts if m[0] == str(mount_id)), None)
        if new is None:
            continue
        _, dev, root, _ = new
        best: tuple[str, str] | None = None  # (root of the source mount, its mountpoint)
        for mid, d, r, point in mounts:
            if mid == new[0] or d != dev:
                continue
            inside = root == r or root.startswith(r.rstrip("/") + "/")
            if inside and (best is None or len(r) > len(best[0])):
                best = (r, point)
        if best is None:
            return root
        rest = root[len(best[0].rstrip("/")):]
        return posixpath.normpath(best[1] + "/" + rest) if rest else best[1]
    return ""
