"""`opencws bench probe`, the dd context part: what reading a thread's span and trace ids costs per event.

An open/close loop on a file approved for it (every open is sent), in interleaved rounds: the probe built without
the dd lookup (`-DOPENCWS_NO_DD`, the baseline), the probe with a thread that registered nothing (one hash lookup
a record), and the probe with the loop's thread registered and in a span (the lookup, a 16-byte read of its
memory, a 16-byte trailer). The difference per iteration is the cost per event.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def build_without_dd(out_dir: Path) -> Path:
    """The probe's object without the dd lookup (for the baseline), compiled as bpf/Makefile does."""
    from opencws.probe.build import BPF_DIR, object_path

    object_path()  # (builds bpf/build/vmlinux.h when missing)
    clang = shutil.which("clang")
    if clang is None:
        raise RuntimeError("clang is not installed: run scripts/setup.sh")
    out = out_dir / "probe-no-dd.bpf.o"
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-DOPENCWS_NO_DD",
                    f"-I{BPF_DIR / 'build'}", f"-I/usr/include/{os.uname().machine}-linux-gnu", "-c",
                    str(BPF_DIR / "probe.bpf.c"), "-o", str(out)], check=True)
    return out


@contextmanager
def sending_opens(target: Path, object_file: Path | None) -> Iterator[Any]:
    """A probe sending every open of `target` (and nothing else but exec, fork, exit), its ring large enough for a
    round's records."""
    from opencws.probe.probe import Probe

    with Probe(object_file=object_file, ring_buffer_bytes=128 << 20) as probe:
        probe.set_event_types(["open"])
        probe.set_approvers("open", basenames=[target.name])
        probe.poll(0)
        yield probe


def run_dd(args: Any, work: Path, loop: Path) -> None:
    from opencws.bench.probe_bench import Config, fmt, interleaved, run_loop

    target = work / "dd-watched.dat"
    target.write_text("x")
    baseline = build_without_dd(work)
    n = min(args.iterations, 100_000)
    env: dict[str, dict[str, str] | None] = {"now": None}

    @contextmanager
    def config(object_file: Path | None, registered: bool) -> Iterator[None]:
        env["now"] = {**os.environ, "OPENCWS_BENCH_DD": "1"} if registered else None
        with sending_opens(target, object_file):
            yield

    configs = [
        Config("probe built without the dd lookup (baseline)", lambda: config(baseline, False)),
        Config("probe, the thread registered nothing (one map lookup)", lambda: config(None, False)),
        Config("probe, the thread registered and in a span (ids read, trailer)", lambda: config(None, True)),
    ]
    print(f"dd context: open/close loop on a file whose every open is sent ({n:,} iterations per round):")
    best = interleaved(configs, lambda: run_loop(loop, "openclose", str(target), n, args.clock, env=env["now"]),
                       args.rounds)
    base, miss, hit = (best[c.label] for c in configs)
    for c in configs:
        print(fmt(c.label, best[c.label], ("baseline", base)))
    print(f"  per event: {miss - base:+.0f} ns for a thread that registered nothing, {hit - base:+.0f} ns to read"
          f" a registered thread's ids")
