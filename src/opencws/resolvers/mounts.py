"""Mount id → filesystem type, for files the kernel did not describe (the `/proc` snapshot's executables).

Kernel events carry the fs type of each file's mount themselves; this table serves what was read from
`/proc` before the probe started. It is read from `/proc/self/mountinfo` and read again when an unknown
mount id is asked for (at most once per `min_interval` seconds: a mount id nobody has stays unknown cheaply).
"""

from __future__ import annotations

import time


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
