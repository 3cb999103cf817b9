"""`opencws bench reporter`: what sending events to a backend costs the agent, and what reaches the backend.

Four figures, each with a baseline measured in the same run:
- the pipeline's thread: `HTTPReporter.write` against `FileReporter.write` (the file output), per line (CPU time of
  the thread: a shared machine's other jobs do not count);
- the sender's thread: compressing a batch with zstd at levels 1, 2, 3 (the reporter's) and 6, and with gzip at
  level 6, against gzip at level 3 (the reporter's before zstd, and still its `compression: gzip`) (CPU time);
- the backend's side: decoding those batches as the intake does (`bodies.decompress`, its bounds included), zstd
  at each level against gzip at level 3, per event (CPU time);
- end to end, against a real backend started on loopback (embedded store): events acknowledged per second through
  the reporter against posting the same events, compressed in advance, one batch after another (wall clock: the
  backend's intake is the bound, and the ratio says what the reporter adds to it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import orjson
import urllib3

from opencws.agent import batch_coding as bc
from opencws.agent import http_reporter as hr
from opencws.agent.file_reporter import FileReporter
from opencws.bench.secl_bench import realistic_mix
from opencws.bench.timing import best_rate, line
from opencws.cli.args import positive_int
from opencws.model.codec import serialize


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=positive_int, default=20_000,
                        help="events sent to the backend end to end (default 20,000)")
    parser.add_argument("--batch", type=positive_int, default=hr.DEFAULT_BATCH_MAX_EVENTS,
                        help=f"events per batch (default {hr.DEFAULT_BATCH_MAX_EVENTS})")
    parser.add_argument("--compression", choices=bc.CODINGS, default=bc.ZSTD,
                        help="the bodies' coding end to end (default zstd, the reporter's)")


def envelopes(n: int) -> list[bytes]:
    """`n` agent output lines: the realistic event mix, each in an envelope."""
    return [orjson.dumps({"rule_id": "bench_rule", "rule_version": "1.0.0", "tags": ["technique:T0000"],
                          "policy": "bench.policy", "host": "bench", "agent_version": "0.1.0",
                          "event": orjson.Fragment(serialize(e))}) for e in realistic_mix(n)]


def run(args: argparse.Namespace) -> int:
    pool = envelopes(2000)
    size = sum(map(len, pool)) / len(pool)
    print(f"reporter: {len(pool)} distinct lines of the realistic mix, {size:,.0f} bytes each on average; "
          f"load average {os.getloadavg()[0]:.1f}")
    tmp = Path(tempfile.mkdtemp(prefix="opencws-bench-reporter-"))
    try:
        _pipeline_thread(pool, tmp)
        _sender_thread(pool, args.batch)
        _backend_decoding(pool, args.batch)
        _end_to_end(pool, args.events, args.batch, tmp, args.compression)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _pipeline_thread(pool: list[bytes], tmp: Path) -> None:
    n = 100_000
    lines = [pool[i % len(pool)] for i in range(n)]
    print("the pipeline's thread, per line written (CPU time of the thread):")
    out = FileReporter(tmp / "events.json", max_bytes=1 << 40)

    def to_file() -> None:
        for i, x in enumerate(lines):
            out.write(x)
            if i % 100 == 99:  # the runner flushes after each read of the ring
                out.flush()
        out.flush()

    base = best_rate(to_file, n, rounds=3)
    out.close()
    reporter = hr.HTTPReporter("http://127.0.0.1:9", "ocws_bench_key", spool_dir=tmp / "spool", check_key=False,
                               batch_max_events=10 * n, batch_max_bytes=1 << 40, batch_max_wait=3600)

    def to_reporter() -> None:
        for x in lines:
            reporter.write(x)
        with reporter._lock:
            reporter._pending.clear()  # nothing is sent: the figure is the pipeline's side alone
            reporter._pending_bytes = 0

    rate = best_rate(to_reporter, n, rounds=3)
    reporter.close()
    print(line("FileReporter.write (baseline)", base, unit="lines/s"))
    print(line("HTTPReporter.write", rate, base, unit="lines/s"))


_LEVELS = [(bc.GZIP, bc.GZIP_LEVEL), (bc.GZIP, 6), (bc.ZSTD, 1), (bc.ZSTD, 2), (bc.ZSTD, 3), (bc.ZSTD, 6)]
"""(coding, level) compared by the sender's figures, the baseline first."""


def _batch_lines(pool: list[bytes], batch: int) -> list[bytes]:
    return [pool[i % len(pool)] for i in range(batch)]


def _sender_thread(pool: list[bytes], batch: int) -> None:
    lines = _batch_lines(pool, batch)
    size = sum(map(len, lines)) + len(lines)
    print(f"the sender's thread, compressing a batch of {batch} events (CPU time):")
    base = None
    for coding, level in _LEVELS:
        ratio = size / len(bc.compress(lines, coding, level))
        rate = best_rate(lambda coding=coding, level=level: bc.compress(lines, coding, level), batch, rounds=5)
        label = f"{coding} level {level}, {ratio:.0f}:1"
        if base is None:
            label += " (baseline: compression: gzip)"
        elif (coding, level) == (bc.ZSTD, bc.ZSTD_LEVEL):
            label += " (the reporter's)"
        print(line(label, rate, base))
        base = base or rate


def _backend_decoding(pool: list[bytes], batch: int) -> None:
    from opencws.backend.bodies import decompress
    from opencws.backend.settings import Settings

    lines = _batch_lines(pool, batch)
    limit = Settings().max_decompressed_bytes
    print("the backend's side, decoding those batches as the intake does (bodies.decompress; CPU time):")
    base = None
    for coding, level in _LEVELS:
        if (coding, level) == (bc.GZIP, 6):
            continue
        body = bc.compress(lines, coding, level)
        assert decompress(body, coding, limit).count(b"\n") == batch
        rate = best_rate(lambda body=body, coding=coding: decompress(body, coding, limit), batch, rounds=5)
        label = f"{coding} level {level}, {1e6 / rate:.2f} µs an event" + ("" if base else " (baseline)")
        print(line(label, rate, base))
        base = base or rate


def _end_to_end(pool: list[bytes], n: int, batch: int, tmp: Path, coding: str) -> None:
    from opencws.backend.keys import KeyStore
    from opencws.cli.backend_child import BackendChild

    data = tmp / "backend"
    data.mkdir()
    (data / "backend.yaml").write_text("rate_limit: 0\n")
    keys = KeyStore(str(data))
    key = keys.create("bench", ("ingest",))[1]
    keys.close()
    backend = BackendChild(data, "127.0.0.1:0", tmp / "backend.log", extra_args=["--config", str(data / "backend.yaml")])
    url = backend.start()
    lines = [pool[i % len(pool)] for i in range(n)]
    print(f"end to end: {n} events to a backend on loopback (embedded store), wall clock:")
    try:
        bodies = [bc.compress(lines[start:start + batch], coding) for start in range(0, n, batch)]
        http = urllib3.connection_from_url(url, retries=False, timeout=120)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson",
                   "Content-Encoding": coding}
        begin = time.perf_counter()
        for body in bodies:
            r = http.urlopen("POST", hr.EVENTS_PATH, body=body, headers=headers)
            assert r.status == 200, r.data[:300]
        base = n / (time.perf_counter() - begin)
        http.close()

        reporter = hr.HTTPReporter(url, key, spool_dir=tmp / "e2e-spool", batch_max_events=batch,
                                   batch_max_bytes=1 << 40, batch_max_wait=0.2, compression=coding)
        begin = time.perf_counter()
        for x in lines:
            reporter.write(x)
        while reporter.stats()["backlog_lines"]:
            time.sleep(0.005)
        rate = n / (time.perf_counter() - begin)
        reporter.close()
        s = reporter.stats()
        assert s["sent"] == n and s["dropped"] == s["rejected"] == 0, s
        print(line("posting compressed batches one after another (baseline)", base))
        print(line(f"through the HTTP reporter (writes, batches, {coding}, posts)", rate, base))
    finally:
        backend.stop()
