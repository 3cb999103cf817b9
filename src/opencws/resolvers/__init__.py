"""Resolvers: the agent's only source of context for what the kernel reports.

One module per resolver: `process` (the process cache), `users` (user and group names in a process's own
root), `containers` (container ids from cgroup paths), `files` (kernel files → CWS files with owner names),
`mounts` (mount id → filesystem), `time` (kernel clocks → wall clock). `Resolvers` builds them in dependency
order and takes the `/proc` snapshot.
"""

from __future__ import annotations

from typing import Any


class Resolvers:
    """The resolvers an event is resolved through."""

    def __init__(self, processes: Any, users: Any, clock: Any):
        self.processes = processes
        self.users = users
        self.clock = clock
        self._user_reloads = 0

    def refresh(self) -> bool:
        """Called once a second: re-anchors the clocks, and when a user or group file changed (the host's is
        looked at here, a container's whenever one of its processes is named), has every name looked up
        again. True when names were refreshed."""
        self.clock.maybe_reanchor()
        self.users.user(0, "/")
        reloads = self.users.stats()["reloads"]
        if reloads == self._user_reloads:
            return False
        self._user_reloads = reloads
        self.processes.refresh_names()
        return True


def build_resolvers(config: Any) -> Any:
    """The agent's resolvers, in dependency order (names and clocks first, then the process cache that uses
    them), from an `AgentConfig`. The `/proc` snapshot is taken by the agent once the probe runs, so that no
    process started in between is missed."""
    from opencws.resolvers.containers import ContainerResolver, container_id_from_proc_cgroup
    from opencws.resolvers.process import ArgsPolicy, ProcessCache
    from opencws.resolvers.scrub import ArgScrubber
    from opencws.resolvers.time import TimeResolver
    from opencws.resolvers.users import UserGroupResolver

    users = UserGroupResolver()
    clock = TimeResolver()
    containers = ContainerResolver()
    scrubber = ArgScrubber(config.scrub_args) if config.scrub_args else None
    processes = ProcessCache(
        users, clock,
        container_of_event=containers.for_event,
        container_of_proc=lambda snap: container_id_from_proc_cgroup("\n".join(snap.cgroups)),
        args_policy=ArgsPolicy(config.max_args, config.max_arg_bytes, config.max_envs,
                               scrubber.scrub if scrubber else None),
        max_size=config.process_cache_size,
    )  # fmt: skip
    return Resolvers(processes, users, clock)
