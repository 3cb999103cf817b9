"""The agent's memory with N processes in its cache, measured in a fresh interpreter (`opencws bench agent`).

`python -m opencws.bench.agent_memory N` starts an agent (probe, `/proc` snapshot, default policy, a file
reporter), then feeds its pipeline fork+exec kernel events of N processes under 200 parents (a fifth of them
in containers), in batches as the ring buffer would give them, then builds each process's CWS `process`
block once (its model entry and ancestors list, as an event of that process would). Argument lists and
environments look like a server's (20-40 variables, 1.5-3 KB; command lines of services, shells, tools), and
every string is a new object, as the decoder makes them. Prints one JSON line of VmRSS figures (kB).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BASE_PID = 3_000_000
"""Synthetic pids start here (above what this machine's processes use)."""
ROOTS = 200
CONTAINERS = 40
"""Of the roots, these are container init processes (their children inherit the container)."""

EXECUTABLES = [
    ("/usr/bin/python3.11", 1101), ("/usr/bin/bash", 1102), ("/usr/bin/git", 1103), ("/usr/bin/node", 1104),
    ("/usr/lib/jvm/java-17-openjdk-amd64/bin/java", 1105), ("/usr/sbin/nginx", 1106), ("/usr/bin/make", 1107),
    ("/usr/bin/grep", 1108), ("/usr/local/bin/gunicorn", 1109), ("/usr/bin/ssh", 1110), ("/usr/bin/rsync", 1111),
    ("/usr/lib/postgresql/15/bin/postgres", 1112), ("/usr/bin/sleep", 1113), ("/usr/bin/tail", 1114),
    ("/usr/bin/find", 1115), ("/usr/bin/tar", 1116), ("/usr/sbin/cron", 1117), ("/usr/bin/gcc", 1118),
    ("/usr/bin/ld", 1119), ("/usr/bin/redis-server", 1120),
]

_EXTENSIONS = ("tar", "tgz", "arc", "arj", "taz", "lha", "lz4", "lzh", "lzma", "tlz", "txz", "tzo", "t7z", "zip",
               "z", "dz", "gz", "lrz", "lz", "lzo", "xz", "zst", "tzst", "bz2", "bz", "tbz", "tbz2", "tz", "deb",
               "rpm", "jar", "war", "ear", "sar", "rar", "alz", "ace", "zoo", "cpio", "7z", "rz", "cab", "wim",
               "swm", "dwm", "esd", "jpg", "jpeg", "mjpg", "mjpeg", "gif", "bmp")
_LS_COLORS = ":".join(f"*.{ext}=01;{31 + i % 7}" for i, ext in enumerate(_EXTENSIONS))
"""An interactive shell's LS_COLORS (about 700 bytes), in half of the environments."""


def _fresh(s: str) -> str:
    """A new string object (the decoder never shares one between events)."""
    return s.encode().decode()


def argv_of(i: int, exe: str) -> list[str]:
    name = exe.rsplit("/", 1)[-1]
    templates = [
        [name, "-m", "gunicorn", "app.wsgi:application", "--workers", "4", "--bind", f"0.0.0.0:{8000 + i % 97}",
         "--access-logfile", "-", "--timeout", "120", f"--name=web-{i}"],
        [name, "-c", f"cd /srv/app-{i % 300} && ./scripts/run-job.sh --config /etc/app/job-{i}.yaml --verbose"],
        [name, "-C", f"/home/dev{i % 50}/src/project-{i % 700}", "status", "--porcelain=v2", "--branch"],
        [name, "-Xmx2g", "-Dlog.level=INFO", f"-Dinstance.id={i}", "-cp", "/opt/app/lib/*:/opt/app/classes",
         "com.example.billing.Main", "--spring.profiles.active=prod"],
        [name, "-rn", "--include=*.py", "--exclude-dir=.git", "--exclude-dir=node_modules", f"TODO-{i}",
         f"/srv/repo-{i % 40}/src"],
        [name, "-f", "-n", "200", f"/var/log/app/worker-{i % 64}.log", f"/var/log/app/worker-{i % 64}.err"],
    ]
    return [_fresh(a) for a in templates[i % len(templates)]]


def envp_of(i: int, container: bool) -> list[str]:
    env = [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", f"HOME=/home/dev{i % 50}",
        f"USER=dev{i % 50}", f"LOGNAME=dev{i % 50}", "SHELL=/bin/bash", "LANG=en_US.UTF-8", "TERM=xterm-256color",
        f"HOSTNAME=web-{i % 20}", f"PWD=/srv/app-{i % 300}", "SHLVL=2", f"_=/usr/bin/env-{i % 9}",
        f"XDG_SESSION_ID={i % 1000}", "XDG_RUNTIME_DIR=/run/user/1000",
        "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus", f"SSH_CONNECTION=10.0.{i % 250}.7 52114 10.0.0.5 22",
        f"SSH_CLIENT=10.0.{i % 250}.7 52114 22", "SSH_TTY=/dev/pts/3", "MAIL=/var/mail/dev", "LESSOPEN=| /usr/bin/lesspipe %s",
        "EDITOR=vim", f"APP_ENV={'prod' if i % 3 else 'staging'}", f"REQUEST_ID={i:032x}",
        f"DATABASE_URL=postgres://app:{i:016x}@db-{i % 4}.internal:5432/app", "PYTHONUNBUFFERED=1",
        "JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64", f"OTEL_RESOURCE_ATTRIBUTES=service.name=svc-{i % 30}",
    ]
    if i % 2:
        env.append(f"LS_COLORS={_LS_COLORS}")
    if container:
        env += ["KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443",
                "KUBERNETES_PORT=tcp://10.96.0.1:443", f"POD_NAME=app-{i % 500}-7d9f8c6b5-x2k4q",
                "POD_NAMESPACE=production", f"POD_IP=10.244.{i % 200}.{i % 250}"]
    return [_fresh(e) for e in env]


def _creds(uid: int) -> Any:
    from opencws.probe import events as kev

    full = (1 << 41) - 1 if uid == 0 else 0
    return kev.Credentials(uid=uid, gid=uid, euid=uid, egid=uid, suid=uid, sgid=uid, fsuid=uid, fsgid=uid,
                           cap_effective=full, cap_permitted=full, cap_inheritable=0)


def _exe_file(path: str, inode: int) -> Any:
    from opencws.probe import events as kev

    when = 1_700_000_000_000_000_000 + inode  # a binary's times do not change from one exec to the next
    return kev.FileInfo(path=_fresh(path), resolved_len=len(path), path_resolution_error=None, inode=inode,
                        mode=0o100755, uid=0, gid=0, nlink=1, access_time_ns=when, modification_time_ns=when,
                        change_time_ns=when, mount_id=30, group_id=0, device=0xfd00, fs_type="ext4",
                        in_upper_layer=False, negative=False, flags=0)


def process_events(n: int, start: int = 0, boot: int | None = None) -> list[Any]:
    """fork + exec of processes start .. start+N-1: ROOTS children of pid 1 (CONTAINERS of them container
    inits), the rest children of those roots."""
    from opencws.probe import events as kev

    boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME) if boot is None else boot
    out: list[Any] = []
    for i in range(start, start + n):
        pid = BASE_PID + i
        parent = 1 if i < ROOTS else BASE_PID + i % ROOTS
        root_index = i if i < ROOTS else i % ROOTS
        container = root_index < CONTAINERS
        cgroup = f"docker-{root_index:064x}.scope" if container else f"session-{root_index}.scope"
        cgroup_id = 50_000 + root_index
        uid = 0 if i % 5 == 0 else 1000 + i % 50
        exe, inode = EXECUTABLES[i % len(EXECUTABLES)]
        common = {"tid": parent, "ppid": 0 if parent == 1 else 1, "ktime_ns": time.monotonic_ns(),
                  "cgroup_id": cgroup_id, "uid": uid, "gid": uid}
        start = boot + i
        out.append(kev.ForkEvent(pid=parent, comm=_fresh("bash"), child_pid=pid, child_tid=pid,
                                 child_cgroup_id=cgroup_id, start_time_ns=start, credentials=_creds(uid),
                                 cgroup=_fresh(cgroup), tty="", **common))
        common.update(tid=pid, ppid=parent, ktime_ns=time.monotonic_ns())
        out.append(kev.ExecEvent(pid=pid, comm=_fresh(exe.rsplit("/", 1)[-1][:15]), file=_exe_file(exe, inode),
                                 credentials=_creds(uid), argv=argv_of(i, exe), argv_truncated=False,
                                 envp=envp_of(i, container), envp_truncated=False, start_time_ns=start,
                                 cgroup=_fresh(cgroup), tty=_fresh(f"pts{i % 8}") if i % 4 == 0 else "", **common))
    return out


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pss_kb() -> int:
    """The proportional set size: the memory the process really holds (the ring buffer, mapped twice in a row,
    counts twice in VmRSS and once here)."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(n: int) -> dict[str, Any]:
    from opencws.bench.agent_harness import new_agent
    from opencws.bench.probe_bench import DEFAULT_POLICY

    rss_imports = rss_kb()
    with tempfile.TemporaryDirectory(prefix="opencws-agent-memory-") as tmp:
        agent = new_agent([DEFAULT_POLICY], Path(tmp) / "events.json")
        try:
            for _ in range(5):
                agent.step(50)
            procs = agent.resolvers.processes
            snapshot = len(procs)
            host = [(len(e.envp), sum(map(len, e.args or []))) for e in list(procs._live.values())
                    if e.envp]
            rss_started, pss_started = rss_kb(), pss_kb()
            argv_bytes = env_bytes = argc = envc = 0.0
            boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
            for lo in range(0, n, 1000):  # a read of the ring at a time: the agent holds one batch, not all
                events = process_events(min(1000, n - lo), lo, boot)
                execs = [e for e in events if e.type == "exec"]
                argv_bytes += sum(sum(map(len, e.argv)) for e in execs) / n
                env_bytes += sum(sum(map(len, e.envp)) for e in execs) / n
                argc += sum(len(e.argv) for e in execs) / n
                envc += sum(len(e.envp) for e in execs) / n
                agent.pipeline.handle(events)
                agent.pipeline.flush()
                del events, execs
            rss_fed = rss_kb()
            for pid in range(BASE_PID, BASE_PID + n):
                e = procs.get(pid, read_proc=False)
                if e is not None:
                    procs.context(e, pid)
            rss_resolved, pss_resolved = rss_kb(), pss_kb()
            return {
                "rss_imports": rss_imports, "rss_started": rss_started, "rss_fed": rss_fed,
                "rss_resolved": rss_resolved, "pss_started": pss_started, "pss_resolved": pss_resolved,
                "ring_mb": agent.config.ring_buffer_mb, "snapshot": snapshot, "cache_size": len(procs),
                "stats": procs.stats(), "argv_bytes": round(argv_bytes), "env_bytes": round(env_bytes),
                "argc": argc, "envc": envc,
                "host_env_bytes": round(sum(h[0] for h in host) / max(len(host), 1)),
                "host_argv_bytes": round(sum(h[1] for h in host) / max(len(host), 1)),
            }
        finally:
            agent.close()


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 20_000
    print(json.dumps(measure(n)))
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("needs root (the agent's probe)")
    sys.exit(main(sys.argv[1:]))
