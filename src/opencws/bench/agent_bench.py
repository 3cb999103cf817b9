"""`opencws bench agent`: what the whole agent does per second, what it costs the workload, and its memory.

In one run, each figure against a baseline measured in the same run (see docs/benchmarks.md, "Agent"):
- end to end: a burst of real kernel events (opens cycling over several files, by another process) through
  the real probe and the agent's pipeline (process cache, rules, serializer, a FileReporter), in the reading
  thread's CPU time; baseline: the probe's reader alone on the same burst;
- the same burst with a rule of the same type that matches none of it (events that reach user space for
  nothing);
- sustained: a generator paced at `--rate` matched events/s while the agent runs its own loop: generated,
  sent and lost by the kernel's counters;
- the workload's side: an open/close loop on a file no rule watches with the agent running (default policy,
  discarders learned) against the floor of empty sys_enter + sys_exit programs; a setresuid loop (credential
  changes always feed the process cache) bare, on the floor and with the agent;
- memory: the agent's RSS with 20,000 processes in its cache (`agent_memory`, in a fresh interpreter), and a
  real fork storm while the agent runs (cache size before and after, evictions).
Needs root and a kernel that accepts BPF.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opencws.bench import agent_harness
from opencws.bench.agent_harness import (
    BurstFiles,
    make_files,
    new_agent,
    run_loop,
    run_queue_wait,
    running_agent,
    thread_cpu,
)
from opencws.bench.agent_memory import rss_kb
from opencws.bench.probe_bench import (
    DEFAULT_POLICY,
    FLOOR,
    BpfObject,
    Config,
    build_floor,
    build_loop,
    nothing,
)

SECTIONS = ("bursts", "sustained", "overheads", "memory")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="a short run (small bursts, one round): checks that every figure is produced")
    parser.add_argument("--burst", type=int, help="events per burst (default 200000; quick 5000)")
    parser.add_argument("--files", type=int, default=16,
                        help="distinct files the bursts cycle over, in 4 directories (default 16)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds, best kept (default 3; quick 1)")
    parser.add_argument("--rate", type=int, default=50_000, help="sustained rate, events/s (default 50000)")
    parser.add_argument("--seconds", type=float, help="sustained run length (default 10; quick 1)")
    parser.add_argument("--iterations", type=int, help="open/close iterations per round (default 200000; quick 5000)")
    parser.add_argument("--setuid", type=int, help="setresuid pairs per round (default 50000; quick 2000)")
    parser.add_argument("--processes", type=int, help="processes fed to the cache (default 20000; quick 2000)")
    parser.add_argument("--storm", type=int, help="processes of the fork storm (default 20000; quick 500)")
    parser.add_argument("--wave", type=int, help="fork storm: processes alive at once (default 1000; quick 100)")
    parser.add_argument("--only", metavar="SECTION[,SECTION]",
                        help=f"run these sections only: {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--ring-mb", type=int, default=None, metavar="MIB",
                        help="the ring buffer of the agent where it runs its own loop (sustained, overheads, fork "
                             "storm), in MiB (default: the agent's, ring_buffer_mb)")
    parser.add_argument("--agent-nice", type=int, default=None, metavar="N",
                        help="run the agent's thread at this nice value where it runs its own loop (sustained, "
                             "overheads, fork storm): on a machine shared with other jobs, what the agent does "
                             "when it gets a core (default: unchanged)")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    pick = lambda value, full, short: value if value is not None else (short if quick else full)  # noqa: E731
    return {
        "burst": pick(args.burst, 200_000, 5_000),
        "rounds": pick(args.rounds, 3, 1),
        "seconds": pick(args.seconds, 10.0, 1.0),
        "iterations": pick(args.iterations, 200_000, 5_000),
        "setuid": pick(args.setuid, 50_000, 2_000),
        "processes": pick(args.processes, 20_000, 2_000),
        "storm": pick(args.storm, 20_000, 500),
        "wave": pick(args.wave, 1_000, 100),
    }


@dataclass
class BurstResult:
    generated: int
    read: int
    """Open events the reader took from the ring."""
    sent: int
    lost: int
    matched: int
    """Events written (some rule matched)."""
    others: int
    """Other events the reader handled during the burst (the machine's exec, fork, exit...)."""
    lines: int
    cpu: float
    seconds: float
    bytes: int = 0
    """Bytes the FileReporter wrote."""
    output_cpu: float = 0.0
    """CPU time of the output's writer thread during the burst (until what it was handed was written)."""

    @property
    def rate(self) -> float:
        """Burst events per second of the reading thread's CPU time (one core)."""
        return self.read / self.cpu if self.cpu else 0.0

    @property
    def total_rate(self) -> float:
        """Burst events per second of the CPU time of the reading and the output threads together."""
        return self.read / (self.cpu + self.output_cpu) if self.cpu else 0.0

    @property
    def exact(self) -> bool:
        return self.sent + self.lost == self.generated and self.read == self.sent


def ring_for(n: int, path_bytes: int) -> int:
    from opencws.probe.records import FILE_BODY, HEADER

    record = (8 + HEADER.size + FILE_BODY.size + path_bytes + 7) & ~7
    return 1 << max(24, (n * record * 3 // 2).bit_length())


def burst(loop: Path, files: BurstFiles, work: Path, n: int, *, mode: str) -> BurstResult:
    """N opens cycling over the files by another process while this thread reads: `reader` (Probe.poll alone,
    open events counted), `matched` (the agent: poll, pipeline, FileReporter; every burst event matches), or
    `unmatched` (the same with a rule matching none). The ring holds the whole burst, so the rate is what the
    reader does, whatever the generator's speed."""
    output = files.output / "events.json"
    policy = files.unmatched_policy if mode == "unmatched" else files.matched_policy
    agent = new_agent([policy], output, ring_bytes=ring_for(n, max(len(str(p)) for p in files.paths)))
    probe, pipeline = agent.probe, agent.pipeline
    try:
        for _ in range(100):  # what came in before the filters were set (the machine's opens)
            if not agent.step(0):
                break
        before = probe.counters()["open"]
        seen0, sent0 = pipeline.counts.seen.get("open", 0), pipeline.counts.sent.get("open", 0)
        all0, lines0 = sum(pipeline.counts.seen.values()), pipeline.counts.lines
        read = got = idle = 0
        cpu = 0.0
        reporter = agent.reporters[0]
        output0 = thread_cpu(reporter)
        start = time.perf_counter()
        gen = files.generator(loop, n, 0)
        while True:
            if got < 1000:  # caught up: let records gather rather than wake up for a handful
                time.sleep(0.01)
            t0 = time.thread_time()
            if mode == "reader":
                events = probe.poll(20)
                got = len(events)
                read += sum(1 for e in events if e.type == "open")
            else:
                got = agent.step(20)
            cpu += time.thread_time() - t0
            if mode != "reader":
                read = pipeline.counts.seen.get("open", 0) - seen0
            if gen.poll() is not None and not got:
                idle += 1
                if read >= probe.counters()["open"].sent - before.sent or idle >= 50:
                    break
        seconds = time.perf_counter() - start
        reporter.wait_written()
        output_cpu = thread_cpu(reporter) - output0
        gen.close()
        if gen.returncode != 0:
            raise RuntimeError(f"the burst generator failed ({gen.returncode})")
        after = probe.counters()["open"]
        c = pipeline.counts
        others = (sum(c.seen.values()) - all0 - read) if mode != "reader" else 0
        result = BurstResult(generated=n, read=read, sent=after.sent - before.sent, lost=after.lost - before.lost,
                             matched=c.sent.get("open", 0) - sent0, others=others, lines=c.lines - lines0,
                             cpu=cpu, seconds=seconds, output_cpu=output_cpu)
        agent.close()
        result.bytes = reporter.bytes_written
        if reporter.lines_written != result.lines or reporter.dropped:
            raise RuntimeError(f"{result.lines} lines to write, {reporter.lines_written} written, "
                               f"{reporter.dropped} dropped")
    finally:
        agent.close()
        for p in files.output.glob("events.json*"):
            p.unlink()
    return result


def _run_bursts(s: dict[str, Any], loop: Path, files: BurstFiles, work: Path, table: list) -> bool:
    n, rounds = s["burst"], s["rounds"]
    print(f"burst of {n:,} opens by another process, cycling over {len(files.paths)} files in 4 directories; "
          f"{rounds} interleaved round(s), best of each (range); CPU time of the reading thread "
          f"(poll + pipeline + flush); the ring holds the whole burst:")
    kinds = [
        ("reader", "baseline: the probe's reader alone (Probe.poll, opens counted)"),
        ("matched", "agent: every event matched, CWS event + envelope written to a file"),
        ("unmatched", "agent: a rule of the same type matching none (gate rejects by path)"),
    ]
    results: dict[str, list[BurstResult]] = {k: [] for k, _ in kinds}
    for r in range(rounds):
        k = r % len(kinds)
        for mode, _ in kinds[k:] + kinds[:k]:
            results[mode].append(burst(loop, files, work, n, mode=mode))
    best = {k: max(b.rate for b in rs) for k, rs in results.items()}
    for mode, label in kinds:
        rs = results[mode]
        ratio = f"   ({best[mode] / best['reader']:.2f}x the reader)" if mode != "reader" else ""
        print(f"  {label:<78} {best[mode]:>10,.0f} events/s ({min(b.rate for b in rs):,.0f}-{best[mode]:,.0f})"
              f"{ratio}")
        for b in rs:
            print(f"    generated {b.generated:,} = sent {b.sent:,} + lost {b.lost:,}: {'yes' if b.exact else 'NO'};"
                  f" read {b.read:,}; matched and written {b.matched:,} ({b.lines:,} lines,"
                  f" {b.bytes / max(b.lines, 1):,.0f} bytes each); other events handled"
                  f" {b.others:,}; CPU {b.cpu:.2f} s (output thread {b.output_cpu:.2f} s); {b.seconds:.2f} s")
    total = max(b.total_rate for b in results["matched"])
    print(f"  matched, CPU of the reading and the output threads together: {total:,.0f} events/s"
          f" ({1e6 / total if total else 0:.1f} µs an event)")
    exact = all(b.exact for rs in results.values() for b in rs)
    table.append(("end to end, matched events written to a file", f"{best['matched']:,.0f} events/s",
                  ">= 100,000 events/s", best["matched"] >= 100_000,
                  f"reading thread's CPU; {best['matched'] / best['reader']:.2f}x the reader alone"))
    table.append(("  the same, CPU of the reading and output threads", f"{total:,.0f} events/s",
                  ">= 100,000 events/s", total >= 100_000, "the line written by the output's own thread"))
    table.append(("events reaching user space, no rule matched", f"{best['unmatched']:,.0f} events/s",
                  ">= 300,000 events/s", best["unmatched"] >= 300_000,
                  f"{best['unmatched'] / best['reader']:.2f}x the reader alone"))
    print(f"  sent + lost = generated and read = sent in every burst: {'yes' if exact else 'NO'}")
    return exact


# ---------------------------------------------------------------------------------------------- sustained


def ring_mb() -> int:
    """The sustained run's ring buffer in MiB."""
    if agent_harness.RING_MB:
        return agent_harness.RING_MB
    from opencws.agent.config import AgentConfig

    return AgentConfig().ring_buffer_mb


def _run_sustained(s: dict[str, Any], rate: int, loop: Path, files: BurstFiles, work: Path, table: list) -> bool:
    n = int(rate * s["seconds"])
    print(f"sustained: {n:,} opens paced at {rate:,}/s (slices of 1 ms) over the same files, every one matched;"
          f" the agent runs its own loop (Agent.run, a ring of {ring_mb()} MiB) in a thread:")
    with running_agent([files.matched_policy], files.output / "sustained.json") as agent:
        probe, counts = agent.probe, agent.pipeline.counts
        time.sleep(0.2)
        before = probe.counters()["open"]
        seen0, sent0 = counts.seen.get("open", 0), counts.sent.get("open", 0)
        handled0 = sum(counts.seen.values())
        agent.longest_stall_s, agent.longest = 0.0, {"batch": 0.0, "batch_cpu": 0.0, "tick": 0.0}  # the run's, not the start's
        cpu0, wait0, t0 = thread_cpu(agent.thread), run_queue_wait(agent.thread), time.perf_counter()
        output_cpu0 = thread_cpu(agent.reporters[0])
        gen = files.generator(loop, n, rate)
        if gen.wait() != 0:
            raise RuntimeError(f"the paced generator failed ({gen.returncode}): {gen.output()}")
        wall_ns = float(gen.output().split()[0])
        gen.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            after = probe.counters()["open"]
            if counts.seen.get("open", 0) - seen0 >= after.sent - before.sent:
                break
            time.sleep(0.05)
        cpu, seconds = thread_cpu(agent.thread) - cpu0, time.perf_counter() - t0
        waited = run_queue_wait(agent.thread) - wait0
        output = agent.reporters[0]
        output.wait_written()
        output_cpu = thread_cpu(output) - output_cpu0
        after = probe.counters()["open"]
        sent, lost = after.sent - before.sent, after.lost - before.lost
    # the agent has stopped: what it read is all handled
    written = counts.sent.get("open", 0) - sent0
    handled = sum(counts.seen.values()) - handled0
    achieved = 1e9 / wall_ns if wall_ns else 0.0
    exact = sent + lost == n
    print(f"  generated {n:,} at {achieved:,.0f}/s = sent {sent:,} + lost {lost:,}: {'yes' if exact else 'NO'};"
          f" matched and written by the agent {written:,}")
    print(f"  agent thread CPU {cpu:.2f} s over {seconds:.2f} s ({100 * cpu / seconds:.0f}% of one core;"
          f" {1e6 * cpu / max(handled, 1):.1f} µs per event handled, the machine's other events included); it"
          f" waited {waited:.2f} s for a CPU while runnable (other jobs); load average {os.getloadavg()[0]:.2f}")
    print(f"  the reading thread's longest time away from the ring {1000 * agent.longest_stall_s:.1f} ms (longest"
          f" batch {1000 * agent.longest['batch']:.1f} ms of which {1000 * agent.longest['batch_cpu']:.1f} ms on a CPU,"
          f" longest tick {1000 * agent.longest['tick']:.1f} ms);"
          f" output thread CPU {output_cpu:.2f} s; the reader waited for the output {output.waits} time(s),"
          f" {output.waited_s:.2f} s")
    table.append((f"sustained {rate:,} matched events/s, {s['seconds']:g} s", f"{lost:,} lost of {n:,}",
                  "none lost", lost == 0 and exact, f"achieved {achieved:,.0f}/s; agent {100 * cpu / seconds:.0f}% of a core;"
                  f" longest stall {1000 * agent.longest_stall_s:.0f} ms"))
    return exact


# ---------------------------------------------------------------------------------------------- the workload's side


def _both_clocks(configs: list[Config], argv: list[str], loop: Path, rounds: int,
                 per: int = 1) -> dict[str, tuple[float, float]]:
    """Best wall-clock and best CPU-time ns per iteration (divided by `per`) of each configuration, interleaved
    rounds with the order rotating (as `probe_bench.interleaved`)."""
    best = {c.label: (float("inf"), float("inf")) for c in configs}
    for r in range(rounds):
        k = r % len(configs)
        for c in configs[k:] + configs[:k]:
            with c.setup():  # type: ignore[attr-defined]
                wall, cpu = run_loop(loop, *argv)
            w, u = best[c.label]
            best[c.label] = (min(w, wall / per), min(u, cpu / per))
    return best


def _print_clocks(configs: list[Config], best: dict[str, tuple[float, float]], unit: str) -> None:
    bare, fl = best[configs[0].label], best[configs[1].label]
    for c in configs:
        w, u = best[c.label]
        print(f"  {c.label:<66} wall {w:>7,.0f} ns/{unit} {w / bare[0]:.3f}x bare {w / fl[0]:.3f}x floor;"
              f"  CPU {u:>7,.0f} ns {u / bare[1]:.3f}x bare {u / fl[1]:.3f}x floor")


def _run_overheads(s: dict[str, Any], loop: Path, floor: BpfObject, work: Path, table: list) -> None:
    unwatched = work / "unwatched.dat"
    unwatched.write_text("x")
    output = work / "default-policy.json"
    rounds = max(s["rounds"], 3) if s["rounds"] > 1 else 1
    print(f"open/close loop on a file no rule watches ({s['iterations']:,} iterations per round), {rounds}"
          f" interleaved round(s), best of each; wall clock, and the loop's CPU time (leaves out its waits for a"
          f" core on a busy machine; the kernel's work for it, BPF programs included, stays in):")
    reached: list[tuple[int, int]] = []

    @contextmanager
    def agent_learned() -> Iterator[None]:
        with running_agent([DEFAULT_POLICY], output, learn=(loop, unwatched)) as agent:
            sent0, gen0 = agent.probe.counters()["open"].sent, agent.probe.discarder_generation
            yield
            reached.append((agent.probe.counters()["open"].sent - sent0, agent.probe.discarder_generation - gen0))

    configs = [
        Config("bare (no BPF)", nothing),
        Config("floor: empty raw sys_enter + sys_exit", lambda: floor.attached(FLOOR)),
        Config("agent running, default policy, discarder learned", agent_learned),
    ]
    best = _both_clocks(configs, ["openclose", str(unwatched), str(s["iterations"])], loop, rounds)
    _print_clocks(configs, best, "iter")
    fl, ag = best[configs[1].label], best[configs[2].label]
    wall, cpu = ag[0] / fl[0], ag[1] / fl[1]
    print(f"  agent/floor = {wall:.3f} wall clock, {cpu:.3f} CPU time  (target <= 1.05)")
    print("  opens the kernel sent to the agent during each loop with the agent (the whole machine's; discarder"
          " generation bumps, by mounts anywhere, in brackets): "
          + ", ".join(f"{n:,} ({g})" for n, g in reached))
    table.append(("open/close on an unwatched file, agent running", f"{cpu:.3f}x the floor (CPU)",
                  "<= 1.05x", cpu <= 1.05, f"wall clock {wall:.3f}x (the agent's thread competes for a core)"))

    print(f"setresuid loop ({s['setuid']:,} pairs of calls per round: euid 65534 then back to 0, each a credential"
          f" change fed to the process cache), {rounds} interleaved round(s), best of each:")
    per_event: list[float] = []

    @contextmanager
    def with_agent() -> Iterator[None]:
        with running_agent([DEFAULT_POLICY], output) as agent:
            counts = agent.pipeline.counts
            time.sleep(0.2)
            c0, seen0, all0 = thread_cpu(agent.thread), counts.seen.get("setuid", 0), sum(counts.seen.values())
            yield
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and counts.seen.get("setuid", 0) - seen0 < 2 * s["setuid"]:
                time.sleep(0.02)
            per_event.append((thread_cpu(agent.thread) - c0) / max(sum(counts.seen.values()) - all0, 1))

    sconfigs = [Config("bare (no BPF)", nothing),
                Config("floor: empty raw sys_enter + sys_exit", lambda: floor.attached(FLOOR)),
                Config("agent running (setuid events read and fed to the process cache)", with_agent)]
    sbest = _both_clocks(sconfigs, ["setuid", str(s["setuid"])], loop, rounds, per=2)
    _print_clocks(sconfigs, sbest, "call")
    sbare, sfl, sag = (sbest[c.label] for c in sconfigs)
    cost = 1e6 * min(per_event) if per_event else 0.0
    print(f"  in the kernel: +{sag[1] - sfl[1]:,.0f} ns of CPU per call over the floor; in the agent: {cost:.1f} µs of"
          f" its thread's CPU per event handled (best round; the machine's other events included)")
    table.append(("setresuid with the agent (credentials feed the cache)",
                  f"{sag[0] / sbare[0]:.3f}x / {sag[1] / sbare[1]:.3f}x bare", "measured (no target)", None,
                  f"{sag[1] / sfl[1]:.3f}x floor (CPU); agent {cost:.1f} µs per event"))


# ---------------------------------------------------------------------------------------------- memory


def _run_memory(s: dict[str, Any], loop: Path, work: Path, table: list) -> None:
    n = s["processes"]
    print(f"memory: {n:,} fork+exec kernel events (realistic argv and environments) fed to a started agent's"
          f" pipeline in a fresh interpreter, each process then resolved once (its CWS process block and ancestors"
          f" built), RSS from /proc/self/status:")
    out = subprocess.run([sys.executable, "-m", "opencws.bench.agent_memory", str(n)], check=True,
                         capture_output=True, text=True, timeout=600)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    mb = lambda kb: kb / 1024  # noqa: E731
    print(f"  interpreter with the agent's modules: {mb(m['rss_imports']):.1f} MB; agent started (probe, /proc"
          f" snapshot of {m['snapshot']:,} processes, default policy): {mb(m['rss_started']):.1f} MB")
    print(f"  + {n:,} processes in the cache (cache size {m['cache_size']:,}): {mb(m['rss_fed']):.1f} MB; each"
          f" resolved once: {mb(m['rss_resolved']):.1f} MB (+{mb(m['rss_resolved'] - m['rss_started']):.1f} MB,"
          f" {1024 * (m['rss_resolved'] - m['rss_started']) / n:,.0f} bytes per process)")
    print(f"  the ring buffer ({m['ring_mb']} MiB) is mapped twice in a row and counts twice in VmRSS: proportional"
          f" set size {mb(m['pss_started']):.1f} MB started, {mb(m['pss_resolved']):.1f} MB with the processes")
    print(f"  per process: {m['argv_bytes']:,} bytes of argv ({m['argc']:.1f} args) and {m['env_bytes']:,} bytes of"
          f" environment ({m['envc']:.1f} variables) on average; this machine's processes: {m['host_argv_bytes']:,}"
          f" and {m['host_env_bytes']:,} bytes")
    total = mb(m["rss_resolved"])
    scaled = mb(m["rss_started"]) + mb(m["rss_resolved"] - m["rss_started"]) * 20_000 / n
    figure = f"{total:.0f} MB" if n == 20_000 else f"{total:.0f} MB with {n:,} (scaled to 20,000: {scaled:.0f} MB)"
    table.append((f"agent RSS with {n:,} processes in the cache", figure, "<= 200 MB with 20,000",
                  scaled <= 200, f"agent alone {mb(m['rss_started']):.0f} MB"))

    storm, wave = s["storm"], s["wave"]
    print(f"fork storm: {storm:,} short-lived processes, {wave:,} alive at once, forked while the agent runs:")
    with running_agent([DEFAULT_POLICY], work / "storm.json") as agent:
        procs = agent.resolvers.processes
        time.sleep(0.3)
        before, ev0 = len(procs), procs.evictions
        k0 = {t: agent.probe.counters()[t] for t in ("fork", "exit")}
        rss0 = rss_kb()
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], len(procs))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        run_loop(loop, "forkstorm", str(storm), str(wave))
        time.sleep(0.5)
        done.set()
        sampler.join()
        after, evictions, rss1 = len(procs), procs.evictions - ev0, rss_kb()
        k1 = {t: agent.probe.counters()[t] for t in ("fork", "exit")}
    lost = {t: k1[t].lost - k0[t].lost for t in k1}
    sent = {t: k1[t].sent - k0[t].sent for t in k1}
    print(f"  cache size before {before:,}, highest seen {peak[0]:,}, after {after:,}; evictions {evictions:,};"
          f" kernel sent fork {sent['fork']:,} exit {sent['exit']:,}, lost fork {lost['fork']:,} exit {lost['exit']:,}"
          f" (whole machine); RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MB")
    table.append((f"fork storm of {storm:,} processes ({wave:,} at once)", f"cache {before:,} -> {after:,}",
                  "bounded", after <= before + wave, f"peak {peak[0]:,}; evictions {evictions}; lost {sum(lost.values())}"))


# ---------------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("opencws bench agent: needs root (BPF programs are loaded)")
        return 1
    s = _settings(args)
    agent_harness.AGENT_NICE = args.agent_nice
    agent_harness.RING_MB = args.ring_mb
    with tempfile.TemporaryDirectory(prefix="opencws-agent-bench-") as tmp:
        work = Path(tmp)
        loop = build_loop(work)
        floor = BpfObject(build_floor(work))
        try:
            return _run(args, s, work, loop, floor)
        finally:
            floor.close()


def _run(args: argparse.Namespace, s: dict[str, Any], work: Path, loop: Path, floor: BpfObject) -> int:
    load = os.getloadavg()
    print(f"Agent: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start"
          f"{' (quick run)' if args.quick else ''}"
          f"{f'; the agent thread at nice {args.agent_nice}' if args.agent_nice is not None else ''}")
    files = make_files(work, max(1, args.files))
    try:
        return _run_all(args, s, work, loop, floor, files)
    finally:
        shutil.rmtree(files.output, ignore_errors=True)


def _run_all(args: argparse.Namespace, s: dict[str, Any], work: Path, loop: Path, floor: BpfObject,
             files: BurstFiles) -> int:
    table: list[tuple[str, str, str, bool | None, str]] = []
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = only - set(SECTIONS)
    if unknown:
        raise SystemExit(f"--only: unknown section(s) {', '.join(sorted(unknown))} (known: {', '.join(SECTIONS)})")
    exact = True
    if "bursts" in only:
        exact &= _run_bursts(s, loop, files, work, table)
    if "sustained" in only:
        exact &= _run_sustained(s, args.rate, loop, files, work, table)
    if "overheads" in only:
        _run_overheads(s, loop, floor, work, table)
    if "memory" in only:
        _run_memory(s, loop, work, table)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end")
    print("Agent figures:")
    for name, value, target, met, note in table:
        verdict = "-" if met is None else ("met" if met else "MISSED")
        print(f"  {name:<58} {value:>28}  target {target:<22} {verdict:<6} {note}")
    return 0 if exact else 1
