"""Resolvers: the agent's only source of context for what the kernel reports.

One module per resolver: `process` (the process cache), `users` (user and group names in a process's own
root), `containers` (container ids from cgroup paths), `files` (kernel files → CWS files with owner names),
`mounts` (mount id → filesystem), `time` (kernel clocks → wall clock). `Resolvers` builds them in dependency
order and takes the `/proc` snapshot.
"""
