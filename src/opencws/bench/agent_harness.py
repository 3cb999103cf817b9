"""The agent inside a benchmark, and the workload processes it watches (`opencws bench agent`).

- `new_agent`: an `Agent` on given policies writing to a file output it opens from its config, started, stepped by
  the caller (bursts);
  `running_agent`: the same running its own loop in a thread (sustained rate, overheads, fork storm);
- `make_files` and `Generator`: the files a burst opens and the process that opens them (`loop files`), run
  as a daemon so that the events do not depend on what started the benchmark;
- `thread_cpu`, `run_queue_wait`: what another thread of this process used and waited for.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_PREFIX = "opencws-agent-bench-"
"""The burst's files have names unique to the run: the kernel approves them alone, so its counters hold this
run's events only, even with other probes and workloads on the machine."""
BENCH_RULE = "bench_watched_open"
AGENT_NICE: int | None = None
"""`--agent-nice`: the nice value of the agent's thread where it runs its own loop (None: unchanged)."""
RING_MB: int | None = None
"""`--ring-mb`: the ring buffer of the agent running its own loop (None: the agent's default)."""


def run_loop(loop: Path, *argv: str) -> tuple[float, float]:
    """ns per iteration of the C loop: wall clock, and its CPU time (children included)."""
    out = subprocess.run([str(loop), *argv], check=True, capture_output=True, text=True)
    wall, cpu = (float(x) for x in out.stdout.split())
    return wall, cpu


class MemoryChannel:
    """The agent's self-events, kept for the report."""

    name = "memory"

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write(self, line: bytes) -> None:
        self.lines.append(line)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


OUTPUT_MAX_BYTES = 64 * 2**20
"""The benchmarks' output files rotate at this size, one rotated file kept: disk space stays bounded however
many events are written."""


def output_dir(work: Path) -> Path:
    """Where the agent's output goes: a directory on tmpfs when there is one (/dev/shm), so that the figures
    are the agent's and not the disk's (a disk-backed file reaches the page cache the same way, then waits
    for writeback)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="opencws-agent-bench-", dir=shm))
    return work


def new_agent(policies: list[Path], output: Path, *, ring_bytes: int | None = None) -> Any:
    """An `Agent` on these policies writing to `output`, started: its output opened by the agent from its config
    (`file:PATH?max_bytes=...&keep=1`: a file rotating at OUTPUT_MAX_BYTES, one file kept, written by its own
    thread) as `opencws agent run` opens it; rate limits out of the way (the limiter still runs)."""
    from opencws.agent.config import AgentConfig, RateLimit, RateLimitConfig
    from opencws.agent.runner import Agent
    from opencws.probe.probe import Probe

    config = AgentConfig(policies=policies, outputs=[f"file:{output}?max_bytes={OUTPUT_MAX_BYTES}&keep=1"],
                         host="bench", rate_limit=RateLimitConfig(default=RateLimit(10_000_000.0, 10_000_000)))
    factory = (lambda: Probe(ring_buffer_bytes=ring_bytes)) if ring_bytes else None
    agent = Agent(config, probe_factory=factory, self_channel=MemoryChannel())
    agent.start()
    return agent


@contextmanager
def running_agent(policies: list[Path], output: Path, *, learn: tuple[Path, Path] | None = None) -> Iterator[Any]:
    """The agent running its own loop (`Agent.run`) in a thread of this process; `learn`: (the loop, a file)
    opened by another process until the agent has learned its inode discarder (as it would from real traffic;
    the agent ignores its own process)."""
    agent = new_agent(policies, output, ring_bytes=RING_MB << 20 if RING_MB else None)
    learned = threading.Event()
    if learn is not None:
        observe = agent.pipeline.observe

        def watch(event: Any, matched: bool = False) -> Any:
            found = observe(event, matched)
            f = getattr(event, "file", None)
            if found == "inode" and f is not None and f.path == str(learn[1]):
                learned.set()
            return found

        agent.pipeline.observe = watch
    thread = threading.Thread(target=agent.run, name="agent", daemon=True)
    thread.start()
    agent.thread = thread
    if AGENT_NICE is not None and thread.native_id is not None:
        os.setpriority(os.PRIO_PROCESS, thread.native_id, AGENT_NICE)
    try:
        if learn is not None:
            deadline = time.monotonic() + 5
            while not learned.is_set() and time.monotonic() < deadline:
                run_loop(learn[0], "openclose", str(learn[1]), "1")
                learned.wait(0.05)
            if not learned.is_set():
                raise RuntimeError(f"the agent learned no discarder for {learn} in 5 s")
            agent.pipeline.observe = observe
        yield agent
    finally:
        agent.request_stop()
        thread.join(30)


def run_queue_wait(thread: threading.Thread) -> float:
    """Seconds the thread has waited for a CPU while runnable (schedstat; 0 where the kernel does not say)."""
    try:
        with open(f"/proc/self/task/{thread.native_id}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def thread_cpu(thread: threading.Thread) -> float:
    """CPU seconds of another thread of this process."""
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


# ---------------------------------------------------------------------------------------------- the burst


@dataclass
class BurstFiles:
    paths: list[Path]
    matched_policy: Path
    unmatched_policy: Path
    output: Path
    """The directory the agent writes to."""

    def generator(self, loop: Path, n: int, rate: int, *, daemon: bool = True) -> Generator:
        """The loop opening the files (by relative paths from their directory: its command line, which every
        event carries, stays short), with a small environment; `daemon`: started by a shell that exits at
        once, so that it runs under init like a service (one ancestor), not under this benchmark's own
        process tree (whose depth and command lines depend on what started the benchmark)."""
        base = self.paths[0].parent.parent
        argv = [str(loop), "files", str(n), str(rate), *(str(p.relative_to(base)) for p in self.paths)]
        return Generator(argv, base, daemon)


class Generator:
    """A workload process, a child of this one or a daemon (waited for through a pidfd)."""

    def __init__(self, argv: list[str], cwd: Path, daemon: bool):
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        fd, out_path = tempfile.mkstemp(prefix="opencws-generator-")
        os.close(fd)
        self._out = Path(out_path)
        self.returncode: int | None = None
        if not daemon:
            with open(self._out, "w") as out:
                self._child: subprocess.Popen | None = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out)
            self.pid = self._child.pid
            self._pidfd = -1
            return
        self._child = None
        quoted = " ".join(shlex.quote(a) for a in argv)
        out = shlex.quote(str(self._out))
        starter = subprocess.run(["/bin/sh", "-c", f"{quoted} >{out} 2>&1 </dev/null & echo $!"], cwd=cwd, env=env,
                                 stdout=subprocess.PIPE, text=True, check=True, start_new_session=True)
        self.pid = int(starter.stdout.split()[0])
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            self._pidfd = -1  # already done

    def poll(self) -> int | None:
        """None while it runs; then 0 when it printed its figures, 1 when it did not."""
        if self.returncode is not None:
            return self.returncode
        if self._child is not None:
            rc = self._child.poll()
            if rc is None:
                return None
            self.returncode = rc
            return rc
        if self._pidfd >= 0:
            if not select.select([self._pidfd], [], [], 0)[0]:
                return None
            os.close(self._pidfd)
            self._pidfd = -1
        self.returncode = 0 if self.output() else 1
        return self.returncode

    def wait(self) -> int:
        while self.poll() is None:
            time.sleep(0.01)
        return self.returncode  # type: ignore[return-value]

    def output(self) -> str:
        return self._out.read_text()

    def close(self) -> None:
        self._out.unlink(missing_ok=True)


def make_files(work: Path, count: int) -> BurstFiles:
    """`count` files in 4 directories, each with a second hard link (so that no inode discarder applies to
    them: a file with two names may match a rule through the other one), and two policies: a rule matching
    every one of them, and a rule of the same type watching the same names in another directory (the kernel
    approves them by basename; the rule matches none)."""
    tag = f"{FILE_PREFIX}{os.getpid()}-{time.monotonic_ns()}"
    paths = []
    for i in range(count):
        d = work / "burst" / f"d{i % 4}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"{tag}-{i}.conf"
        p.write_text(f"setting = {i}\n")
        os.link(p, work / "burst" / f"{p.name}.link")
        paths.append(p)
    matched = work / "matched.policy"
    unmatched = work / "unmatched.policy"
    _write_policy(matched, [str(p) for p in paths])
    _write_policy(unmatched, [f"/srv/elsewhere/{p.name}" for p in paths])
    return BurstFiles(paths, matched, unmatched, output_dir(work))


def _write_policy(path: Path, watched: list[str]) -> None:
    import yaml

    expression = "open.file.path in [" + ", ".join(json.dumps(p) for p in watched) + "]"
    path.write_text(yaml.safe_dump({"rules": [{"id": BENCH_RULE, "version": "1.0.0", "expression": expression,
                                               "tags": {"bench": "agent"}}]}))
