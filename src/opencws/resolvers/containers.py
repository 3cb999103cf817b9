"""Container ids from cgroup paths (docker, containerd, cri-o, podman, runc; cgroup v1, v2 and hybrid).

A container runtime puts each container in a cgroup whose directory name carries the container's 64-hex id,
bare or decorated by the runtime:

| runtime | cgroup path (examples) |
| --- | --- |
| docker, cgroupfs driver (v1) | `/docker/<id>` |
| docker, systemd driver | `/system.slice/docker-<id>.scope` |
| containerd / kubernetes, cgroupfs | `/kubepods/burstable/pod<uid>/<id>` |
| containerd / kubernetes, systemd | `/kubepods.slice/.../kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope` |
| cri-o | `.../crio-<id>.scope` (systemd) or `.../crio-<id>` (cgroupfs) |
| podman | `/machine.slice/libpod-<id>.scope`, `/libpod_parent/libpod-<id>` |
| runc with a bare cgroupsPath | `/<id>` |

Decisions:
- A path component is a container when it is exactly `[<prefix>-]<64 hex>[.scope]` with a known prefix. An id
  found elsewhere (`foo<64 hex>bar`, a path under `/var/lib/docker/...`) is not a container's cgroup.
- The innermost component with an id wins: in nested containers (docker in docker:
  `/docker/<outer>/docker/<inner>`) the process runs in the inner one, and a sub-cgroup of a container
  (`.../crio-<id>.scope/container`, `.../docker-<id>.scope/init.scope`) is still that container. Datadog's
  agent matches the first id in a cgroup name, but its kernel side only ever hands it the innermost
  directory's name, so the effect is the same for the usual layouts.
- `crio-conmon-<id>.scope` and `libpod-conmon-<id>.scope` hold conmon, the runtime's monitor: a host process
  outside the container's namespaces and root. Its activity is not the container's, so it gets no container id
  (Datadog's agent does the same: a cgroup without a runtime prefix it knows maps to no container).
- In `/proc/<pid>/cgroup` the cgroup v2 line (`0::path`) is looked at first: it is the hierarchy whose
  directory name kernel events carry. When it has no id (a hybrid host whose runtime manages only v1
  controllers leaves the unified path at the runtime's service) the v1 lines are looked at, in order.
- ECS task ids and Garden ids are not recognised (not 64 hex).
- Paths in `/proc/<pid>/cgroup` are relative to the reader's cgroup namespace: the agent reads them from the
  host's (a container's runtime path is then complete).
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict

_COMPONENT = re.compile(r"(?:(?:docker|cri-containerd|crio|libpod)-)?([0-9a-fA-F]{64})(?:\.scope)?")
_fullmatch = _COMPONENT.fullmatch

CGROUP_V2_ROOTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")
"""Where the cgroup v2 hierarchy is mounted: `unified` on a hybrid host (this one), the top on a v2 host."""


def container_id_from_cgroup(path: str) -> str | None:
    """The container id of one cgroup path (or one directory name), or None when it is not a container's."""
    for component in reversed(path.split("/")):
        m = _fullmatch(component)
        if m is not None:
            return m.group(1)
    return None


def container_id_from_proc_cgroup(text: str) -> str | None:
    """The container id from the whole content of `/proc/<pid>/cgroup` (v1 `N:controllers:path` lines, the v2
    `0::path` line, or both on a hybrid host); None when no line is a container's. Malformed lines are skipped."""
    v1_paths = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            found = container_id_from_cgroup(path)
            if found is not None:
                return found
        else:
            v1_paths.append(path)
    for path in v1_paths:
        found = container_id_from_cgroup(path)
        if found is not None:
            return found
    return None


def _v2_path(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


class ContainerResolver:
    """Container ids of processes, from the cgroup names kernel events carry or from `/proc/<pid>/cgroup`.

    Caches are bounded (LRU). A cgroup v2 id is an inode number of kernfs, never reused while the system
    runs, so a container id learned for a cgroup id stays true; it is cached only when it came from the v2 path
    itself (on a hybrid host one v2 cgroup can hold processes of several v1-only containers).
    """

    def __init__(self, *, proc: str = "/proc", max_entries: int = 4096) -> None:
        self._proc = proc
        self._max = max_entries
        self._by_text: OrderedDict[str, str | None] = OrderedDict()
        self._by_cgroup_id: OrderedDict[int, str] = OrderedDict()
        self._reads = 0
        self._read_failures = 0
        self._hits = 0

    def from_cgroup_name(self, name: str) -> str | None:
        """The container id of the cgroup v2 directory name an exec or fork event carries
        (`ExecEvent.cgroup`, `ForkEvent.cgroup`, e.g. `docker-<64 hex>.scope`); None when the name is not a
        container's (it may still be a sub-cgroup of one: see `for_event`)."""
        m = _fullmatch(name)
        return None if m is None else m.group(1)

    def resolve(self, pid: int) -> str | None:
        """The container id of a live process, from `/proc/<pid>/cgroup`; None when it is in no container
        or is gone."""
        try:
            with open(f"{self._proc}/{pid}/cgroup") as f:
                text = f.read()
        except OSError:
            self._read_failures += 1
            return None
        self._reads += 1
        cache = self._by_text
        if text in cache:
            self._hits += 1
            cache.move_to_end(text)
            return cache[text]
        found = container_id_from_proc_cgroup(text)
        cache[text] = found
        if len(cache) > self._max:
            cache.popitem(last=False)
        if found is not None and found == container_id_from_cgroup(_v2_path(text) or ""):
            self._remember_cgroup_id(_v2_path(text) or "", found)
        return found

    def for_event(self, pid: int, cgroup_id: int, cgroup_name: str) -> str | None:
        """The container id of the task an event describes: its cgroup name first (no system call), then a
        container learned for its cgroup v2 id, then `/proc/<pid>/cgroup` (a sub-cgroup of a container, or a
        hybrid host's v1-only container)."""
        m = _fullmatch(cgroup_name)
        if m is not None:
            return m.group(1)
        known = self._by_cgroup_id.get(cgroup_id)
        if known is not None:
            self._hits += 1
            return known
        return self.resolve(pid)

    def _remember_cgroup_id(self, v2_path: str, container_id: str) -> None:
        for root in CGROUP_V2_ROOTS:
            try:
                if not os.path.exists(f"{root}/cgroup.procs"):
                    continue
                ino = os.stat(f"{root}/{v2_path.lstrip('/')}").st_ino
            except OSError:
                return
            self._by_cgroup_id[ino] = container_id
            if len(self._by_cgroup_id) > self._max:
                self._by_cgroup_id.popitem(last=False)
            return

    def stats(self) -> dict[str, int]:
        return {
            "cgroups_cached": len(self._by_text),
            "cgroup_ids_cached": len(self._by_cgroup_id),
            "proc_reads": self._reads,
            "proc_read_failures": self._read_failures,
            "cache_hits": self._hits,
        }
