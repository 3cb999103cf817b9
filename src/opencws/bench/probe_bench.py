"""`opencws bench probe`: what the kernel probe costs the workload, and how fast its reader decodes.

In one run, interleaved rounds (best of each) of a small C program compiled now with the system cc:
- an open/close loop on a file no rule watches: bare, the floor (empty programs on raw sys_enter and
  sys_exit), the probe with the default policy's filters (approvers, then the discarder the agent learns
  from the first event), and alternative hook layouts;
- a fork+exec loop of /bin/true: bare vs the probe;
- a burst of watched events: the reader's decode rate on one core, and sent + lost = generated.
Needs root and a kernel that accepts BPF (see docs/benchmarks.md, "Kernel probe").
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from opencws.bench.probe_dd_bench import run_dd

BENCH_BPF = Path(__file__).resolve().parent / "bpf"
DEFAULT_POLICY = Path(__file__).resolve().parents[1] / "secl" / "policies" / "default.policy"
BURST_PREFIX = "opencws-burst-"
"""The burst opens a file of a name unique to the run, approved for the burst alone: the counters then hold
this run's events only, even while other probes and workloads run on the machine."""

FLOOR = ("floor_enter", "floor_exit")
CHOWN_ENTER = ("floor_enter_chown", "floor_enter_fchown", "floor_enter_lchown", "floor_enter_fchownat")
ONE_SITE = ("floor_exit", *CHOWN_ENTER)
"""The floor of the hook sites the probe attaches with the default policy: the raw sys_exit, and the per-syscall
sys_enter tracepoints of the chown family (a chown's owner before the call)."""
ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "empty raw sys_exit only (no chown owner before)": ("floor_exit",),
    "per-syscall tp: empty sys_exit_openat only": ("floor_exit_openat",),
    "per-syscall tps: empty sys_enter_unlinkat + sys_exit_openat": ("floor_enter_unlinkat", "floor_exit_openat"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--iterations", type=int, default=200_000,
                        help="open/close iterations per round (default 200000)")
    parser.add_argument("--forks", type=int, default=1_000, help="fork+exec iterations per round (default 1000)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds, best kept (default 7)")
    parser.add_argument("--burst", type=int, default=400_000, help="watched events in the burst (default 400000)")
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY, help="policy file or directory")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: CLOCK_MONOTONIC (default); cpu: the loop's CPU time, children included "
                             "(leaves out waits for a core on a busy machine, not the contention itself)")
    parser.add_argument("--no-alternatives", dest="alternatives", action="store_false",
                        help="skip the alternative hook layouts")
    parser.add_argument("--burst-only", action="store_true", help="measure only the bursts (the reader)")
    parser.add_argument("--burst-rounds", type=int, default=3, help="rounds of bursts, best rate kept (default 3)")


# ---------------------------------------------------------------------------------------------- building


def build_loop(out_dir: Path) -> Path:
    """The C workload, compiled with the system cc."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise RuntimeError("no C compiler (cc): install gcc or clang")
    exe = out_dir / "loop"
    subprocess.run([cc, "-O2", "-o", str(exe), str(BENCH_BPF / "loop.c")], check=True)
    return exe


def build_floor(out_dir: Path) -> Path:
    """The floor's BPF object (empty programs), compiled with clang."""
    clang = shutil.which("clang")
    if clang is None:
        raise RuntimeError("clang is not installed: run scripts/setup.sh")
    obj = out_dir / "floor.bpf.o"
    arch_inc = f"/usr/include/{os.uname().machine}-linux-gnu"
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", f"-I{arch_inc}", "-c", str(BENCH_BPF / "floor.bpf.c"),
                    "-o", str(obj)], check=True)
    return obj


class BpfObject:
    """A loaded BPF object whose programs are attached and detached by name."""

    def __init__(self, path: Path):
        from opencws.probe import libbpf

        self._lb = libbpf.lib()
        self._obj = self._lb.bpf_object__open_file(os.fsencode(path), None)
        if not self._obj or self._lb.bpf_object__load(self._obj) != 0:
            raise RuntimeError(f"cannot load {path}: {libbpf.errno_message()[1]}\n{libbpf.verifier_tail()}")
        self._links: list[int] = []

    @contextmanager
    def attached(self, programs: tuple[str, ...]) -> Iterator[None]:
        try:
            for name in programs:
                prog = self._lb.bpf_object__find_program_by_name(self._obj, name.encode())
                link = self._lb.bpf_program__attach(prog) if prog else None
                if not link:
                    raise RuntimeError(f"cannot attach {name}")
                self._links.append(link)
            yield
        finally:
            while self._links:
                self._lb.bpf_link__destroy(self._links.pop())

    def close(self) -> None:
        self._lb.bpf_object__close(self._obj)


# ---------------------------------------------------------------------------------------------- the probe


@contextmanager
def probe_with_policy(policy: Path, *, discard: Path | None = None,
                      warmup: Callable[[], object] | None = None, reader: str | None = None,
                      at_enter: bool = False, open_basenames: list[str] | None = None,
                      owner_before: bool = True) -> Iterator:
    """The probe with the policy's filters, as the agent sets them.

    `discard`: a file opened until the agent learns its discarder from the event (as it would from real
    traffic); `warmup`: a workload run once first, its events read by the agent so that it learns what it
    would learn from a long-running workload (the files a process opens at start, say); `at_enter`: unlink,
    rmdir and rename resolved at sys_enter as before 11f5342 (two hook sites: what the second one costs);
    `open_basenames`: open approved by these basenames alone, as if every open rule had a basename approver
    (what an approver check costs an open it rejects, in place of a learned discarder); `owner_before` False:
    without the chown family's sys_enter tracepoints (what reading a chown's owner before the call costs)."""
    from opencws.agent.filters import KernelFilters
    from opencws.probe.eventtypes import EventType
    from opencws.probe.hooks import OWNER_BEFORE_TYPES, hooks_needed
    from opencws.probe.probe import Probe
    from opencws.secl import load_policies

    with (Probe(reader=reader) if reader else Probe()) as probe:
        filters = KernelFilters(probe, load_policies([policy]))
        if at_enter:
            probe.set_event_types(filters.plan.event_types)
        if open_basenames is not None:
            probe.set_approvers("open", basenames=open_basenames)
        if not owner_before:
            for hook in hooks_needed({EventType.CHOWN}):
                if hook.needed_by == OWNER_BEFORE_TYPES:
                    probe.detach(hook.program)

        def learn(ms: int) -> bool:
            found = False
            for event in probe.poll(ms):
                learned = filters.observe(event)
                f = getattr(event, "file", None)
                found |= learned == "inode" and f is not None and discard is not None and f.path == str(discard)
            return found

        if warmup is not None:
            warmup()
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                learn(20)
        if discard is not None:
            learned = False
            deadline = time.monotonic() + 5
            while not learned and time.monotonic() < deadline:
                os.close(os.open(discard, os.O_RDONLY))
                learned = learn(50)
            if not learned:
                raise RuntimeError(f"the agent learned no discarder for {discard} in 5 s (open counters "
                                   f"{probe.counters()['open']}, decode errors {probe.decode_errors}: "
                                   f"{probe.last_decode_error})")
        probe.poll(0)
        yield probe


@contextmanager
def _counting_sent(setup, out: list[tuple[int, int]]) -> Iterator:
    """`setup` (a probe's context), noting in `out` the opens it sent and the discarder generation bumps while in it."""
    with setup as probe:
        sent, generation = probe.counters()["open"].sent, probe.discarder_generation
        yield probe
        out.append((probe.counters()["open"].sent - sent, probe.discarder_generation - generation))


def run_loop(loop: Path, mode: str, target: str, n: int, clock: str = "wall", env: dict | None = None) -> float:
    """ns per iteration of the loop, by the loop's own clock_gettime (wall or CPU time)."""
    out = subprocess.run([str(loop), mode, target, str(n)], check=True, capture_output=True, text=True, env=env)
    wall, cpu = (float(x) for x in out.stdout.split())
    return cpu if clock == "cpu" else wall


@dataclass
class Config:
    label: str
    setup: Callable[[], object]
    """A context manager factory that puts the kernel in this configuration."""


def interleaved(configs: list[Config], measure: Callable[[], float], rounds: int) -> dict[str, float]:
    """Best (lowest) ns/iteration of each configuration; the order rotates each round against drift."""
    best = {c.label: float("inf") for c in configs}
    for r in range(rounds):
        k = r % len(configs)
        for c in configs[k:] + configs[:k]:
            with c.setup():  # type: ignore[attr-defined]
                best[c.label] = min(best[c.label], measure())
    return best


@contextmanager
def nothing() -> Iterator[None]:
    yield


def fmt(label: str, ns: float, *ratios: tuple[str, float]) -> str:
    text = f"  {label:<66} {ns:>9,.0f} ns/iter"
    if ratios:
        text += "   " + "  ".join(f"{ns / base:.3f}x {name}" for name, base in ratios)
    return text


# ---------------------------------------------------------------------------------------------- the burst


@dataclass
class BurstResult:
    generated: int
    received: int
    sent: int
    lost: int
    rate: float
    """Records per second of the reader's CPU time (one core)."""
    seconds: float

    @property
    def exact(self) -> bool:
        return self.sent + self.lost == self.generated and self.received == self.sent


@contextmanager
def _burst_probe(policy: Path, reader: str | None, ring_bytes: int | None) -> Iterator:
    if ring_bytes is None:
        with probe_with_policy(policy, reader=reader) as probe:
            yield probe
        return
    from opencws.agent.filters import KernelFilters
    from opencws.probe.probe import Probe
    from opencws.secl import load_policies

    with Probe(ring_buffer_bytes=ring_bytes, **({"reader": reader} if reader else {})) as probe:
        KernelFilters(probe, load_policies([policy]))
        probe.poll(0)
        yield probe


def burst(loop: Path, policy: Path, work: Path, n: int, *, mode: str = "fields",
          reader: str | None = None, after: bool = False, python_loop: bool = False, dd: bool = False) -> BurstResult:
    """N opens of a watched file by another process while this one reads them (`after`: once it is done,
    from a ring buffer large enough for the whole burst: the reader alone, no generator on the other core).

    mode: `fields` (Probe.poll: typed events, the consumer reading type, pid, file.path and file.inode of
    each, as the agent's filters do), `header` (Probe.poll, the consumer reading type and pid only), `raw`
    (Probe.poll_raw and one header unpack per record: what reading costs), `unpack` (raw, plus every fixed
    field and the path unpacked, no objects built). python_loop: Probe.poll runs records.decode_ring_py, the
    Python twin of the compiled loop. dd: the generator's thread registered a dd context in a span (its records
    end with the ids)."""
    from opencws.probe.records import FILE_BODY, HEADER, decode_ring_py

    name = f"{BURST_PREFIX}{os.getpid()}-{time.monotonic_ns()}"
    target = work / name
    target.write_text("x")
    fixed = HEADER.size + FILE_BODY.size
    path, inode = str(target), target.stat().st_ino
    ring = None
    if after:
        record = (8 + fixed + len(os.fsencode(path)) + 7) & ~7
        ring = 1 << max(24, (n * record * 5 // 4).bit_length())
    with _burst_probe(policy, reader, ring) as probe:
        if python_loop:
            probe.decode_ring = decode_ring_py
        # only this burst's file passes, so the counters hold nothing but the burst; and no other type but those
        # that always flow (exec, fork, exit): the reader reads the burst, not the machine's other activity
        probe.set_event_types(["open"])
        probe.set_approvers("open", basenames=[name])
        probe.poll(0)
        before = probe.counters()["open"]
        received = records = 0
        cpu = 0.0
        start = time.perf_counter()
        gen = subprocess.Popen([str(loop), "burst", str(target), str(n)], stdout=subprocess.DEVNULL,
                               env={**os.environ, "OPENCWS_BENCH_DD": "1"} if dd else None)
        open_type, pid = 4, gen.pid
        if after:
            gen.wait()
        idle = got = 0
        while True:
            # when the reader has caught up, let records gather (a few MB at most): the rate is then the reader's
            # capacity, not the cost of waking up for a handful of records when it is faster than the generator
            if got < 1000:
                time.sleep(0.01)
            t0 = time.thread_time()
            if mode == "fields":
                events = probe.poll(20)
                got = len(events)
                for e in events:
                    if e.type == "open" and e.pid == pid:
                        f = e.file
                        received += f.path == path and f.inode == inode
            elif mode == "header":
                events = probe.poll(20)
                got = len(events)
                received += sum(1 for e in events if e.type == "open" and e.pid == pid)
            else:
                raw = probe.poll_raw(20)
                got = len(raw)
                for r in raw:
                    h = HEADER.unpack_from(r)
                    if mode == "unpack" and h[0] == 1:  # REC_FILE
                        b = FILE_BODY.unpack_from(r, HEADER.size)
                        _path = r[fixed:fixed + b[21]]
                    received += h[1] == open_type and h[4] == pid
            cpu += time.thread_time() - t0
            records += got
            if got:
                idle = 0
            elif gen.poll() is not None:
                idle += 1
                if idle >= 3:
                    break
        seconds = time.perf_counter() - start
        if gen.returncode != 0:
            raise RuntimeError(f"the burst generator failed ({gen.returncode})")
        after = probe.counters()["open"]
    return BurstResult(generated=n, received=received, sent=after.sent - before.sent,
                       lost=after.lost - before.lost, rate=records / cpu if cpu else 0.0, seconds=seconds)


# ---------------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("opencws bench probe: needs root (BPF programs are loaded)")
        return 1
    with tempfile.TemporaryDirectory(prefix="opencws-bench-") as tmp:
        work = Path(tmp)
        loop = build_loop(work)
        floor = BpfObject(build_floor(work))
        try:
            return _run(args, work, loop, floor)
        finally:
            floor.close()


def _run(args: argparse.Namespace, work: Path, loop: Path, floor: BpfObject) -> int:
    unwatched = work / "unwatched.dat"
    unwatched.write_text("x")
    policy = args.policy

    if not args.burst_only:
        _run_loops(args, loop, floor, unwatched, policy)
        run_dd(args, work, loop)
    return _run_bursts(args, work, loop, policy)


def _run_loops(args: argparse.Namespace, loop: Path, floor: BpfObject, unwatched: Path, policy: Path) -> None:
    clock = "CPU time of the loop (children included)" if args.clock == "cpu" else "wall clock"
    print(f"Kernel probe: {args.rounds} interleaved rounds, best of each, {clock}; policy {policy}")
    print(f"open/close loop on a file no rule watches ({args.iterations:,} iterations per round):")
    voided: list[tuple[int, int]] = []
    configs = [
        Config("bare (no BPF)", nothing),
        Config("floor: empty raw sys_enter + sys_exit", lambda: floor.attached(FLOOR)),
        Config("one-site floor: raw sys_exit + chown family's enter tps (probe's)", lambda: floor.attached(ONE_SITE)),
        Config("probe, default policy filters + learned discarder",
               lambda: _counting_sent(probe_with_policy(policy, discard=unwatched), voided)),
    ]
    if args.alternatives:
        configs += [Config(label, lambda p=progs: floor.attached(p)) for label, progs in ALTERNATIVES.items()]
        configs.append(Config("probe + discarder, without the chown family's sys_enter tps",
                              lambda: probe_with_policy(policy, discard=unwatched, owner_before=False)))
        configs.append(Config("probe, default policy filters, no discarder (every open sent)",
                              lambda: probe_with_policy(policy)))
        configs.append(Config("probe + discarder, unlink/rmdir/rename at sys_enter (two hook sites)",
                              lambda: probe_with_policy(policy, discard=unwatched, at_enter=True)))
        configs.append(Config("probe, open rejected by basename approvers instead of a discarder",
                              lambda: probe_with_policy(policy, open_basenames=["id_rsa", "credentials"])))
    best = interleaved(configs, lambda: run_loop(loop, "openclose", str(unwatched), args.iterations, args.clock),
                       args.rounds)
    bare, fl, one, pr = (best[c.label] for c in configs[:4])
    for c in configs:
        print(fmt(c.label, best[c.label], ("bare", bare), ("floor", fl)))
    print(f"  probe/floor = {pr / fl:.3f}  (target <= 1.05)   probe/one-site floor = {pr / one:.3f}"
          f"  (same hook sites)   probe/bare = {pr / bare:.3f}  (stretch <= 1.10)")
    print("  opens the kernel sent during each round of the learned discarder (the whole machine's; discarder"
          " generation bumps, by mounts or directory renames anywhere, in brackets: a bump voids the discarder for"
          " the rest of the round): " + ", ".join(f"{sent:,} ({bumps})" for sent, bumps in voided))

    print(f"fork+exec loop of /bin/true ({args.forks:,} iterations per round):")
    warm = lambda: run_loop(loop, "forkexec", "/bin/true", 20)  # noqa: E731
    fe_configs = [Config("bare (no BPF)", nothing),
                  Config("probe, default policy filters + discarders learned in a warm-up",
                         lambda: probe_with_policy(policy, warmup=warm))]
    fe = interleaved(fe_configs, lambda: run_loop(loop, "forkexec", "/bin/true", args.forks, args.clock),
                     args.rounds)
    fe_bare, fe_probe = fe[fe_configs[0].label], fe[fe_configs[1].label]
    for c in fe_configs:
        print(fmt(c.label, fe[c.label], ("bare", fe_bare)))
    print(f"  fork+exec probe/bare = {fe_probe / fe_bare:.3f}  (target <= 1.15)")

    n = max(1, args.iterations // 4)
    print(f"chown loop on a file no rule watches, to the owner it has ({n:,} iterations per round):")
    ch_configs = [Config("bare (no BPF)", nothing),
                  Config("probe, default policy filters (owner before read: a second walk)",
                         lambda: probe_with_policy(policy)),
                  Config("probe without the chown family's sys_enter tracepoints",
                         lambda: probe_with_policy(policy, owner_before=False))]
    ch = interleaved(ch_configs, lambda: run_loop(loop, "chown", str(unwatched), n, args.clock), args.rounds)
    ch_bare, ch_probe, ch_without = (ch[c.label] for c in ch_configs)
    for c in ch_configs:
        print(fmt(c.label, ch[c.label], ("bare", ch_bare)))
    print(f"  chown: the owner before costs {ch_probe - ch_without:,.0f} ns per call"
          f" ({ch_probe / ch_without:.3f}x the probe without it)")


def _run_bursts(args: argparse.Namespace, work: Path, loop: Path, policy: Path) -> int:
    rounds = max(1, args.burst_rounds)
    print(f"burst of {args.burst:,} watched events (opens of a file approved for the burst) by another process;"
          f" {rounds} interleaved rounds, best rate of each (range), one core, CPU time of the reading thread:")
    from opencws.probe.records import DECODER

    if DECODER != "C":
        print(f"  (the reader runs its Python loop: {DECODER})")
    kinds: list[tuple[str, dict]] = [
        ("reader: typed events, type, pid, file.path, file.inode read", {}),
        ("reader: typed events, type and pid read", {"mode": "header"}),
        ("read + header unpack only, mmap ring reader (Probe.poll_raw)", {"mode": "raw"}),
        ("after the burst: typed events, type, pid, file.path, file.inode read", {"after": True}),
        ("after the burst: typed events, type and pid read", {"mode": "header", "after": True}),
        ("reader: typed events with dd ids (a registered thread in a span), same fields", {"dd": True}),
        ("after the burst: typed events with dd ids, same fields", {"dd": True, "after": True}),
    ]
    if args.alternatives:
        kinds.append(("read + header unpack only, libbpf ring_buffer__poll + ctypes callback",
                      {"mode": "raw", "reader": "libbpf"}))
        kinds.append(("read + all fixed fields and path unpacked, no objects (mmap)", {"mode": "unpack"}))
        kinds.append(("reader with the Python loop (decode_ring_py), same fields read", {"python_loop": True}))
    results: dict[str, list[BurstResult]] = {label: [] for label, _ in kinds}
    for r in range(rounds):
        k = r % len(kinds)
        for label, kw in kinds[k:] + kinds[:k]:
            results[label].append(burst(loop, policy, work, args.burst, **kw))
    best: dict[str, float] = {}
    worst: dict[str, float] = {}
    for label, rs in results.items():
        rates = [b.rate for b in rs]
        best[label], worst[label] = max(rates), min(rates)
        print(f"  {label:<72} {max(rates):>10,.0f} events/s ({min(rates):,.0f}-{max(rates):,.0f})")
        for b in rs:
            print(f"    generated {b.generated:,} = sent {b.sent:,} + lost {b.lost:,}: {'yes' if b.exact else 'NO'};"
                  f" received {b.received:,} (= sent: {b.received == b.sent}); {b.rate:,.0f} events/s;"
                  f" {b.seconds:.2f} s")
    exact = all(b.exact for rs in results.values() for b in rs)
    rate = [best[label] for label, _ in kinds]
    low = worst[kinds[0][0]]
    print(f"  decode rate (target >= 500,000 events/s): during the burst {rate[0]:,.0f} with the file fields read"
          f" (worst round {low:,.0f}: {low / 500_000:.2f}x the target), {rate[1]:,.0f} header only;"
          f" after it {rate[3]:,.0f} and {rate[4]:,.0f}; sent + lost = generated in every burst:"
          f" {'yes' if exact else 'NO'}")
    python = best.get("reader with the Python loop (decode_ring_py), same fields read")
    if python:
        print(f"  compiled loop vs its Python twin, file fields read: {rate[0] / python:.2f}x")
    return 0 if exact else 1
