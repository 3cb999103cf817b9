"""`opencws bench backend`: intake throughput into a store (parse, validate, rows, insert) and the latency
of typical searches over what was stored, with in-run baselines.

The events are the realistic mix of `opencws bench secl` (opens, execs and the rest, with their ancestors),
spread over 24 hours, sent as the agent sends them: JSON lines, each event in its rule's envelope. The embedded store (chdb) by default; `--store clickhouse://...` or
`--clickhouse-local` (two local 18.16 shards under a Distributed table) for ClickHouse servers.
"""

from __future__ import annotations

import argparse
import gc
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import orjson

from opencws import __version__
from opencws.agent.serializer import envelope_prefix
from opencws.backend.intake import accept_body
from opencws.backend.server import tune_gc, tune_malloc
from opencws.backend.store import JournalLimits, Store, open_store, tables
from opencws.bench import detection_bench
from opencws.bench.secl_bench import realistic_mix
from opencws.bench.timing import line
from opencws.cli.args import positive_int
from opencws.model.codec import format_timestamp, serialize
from opencws.schema.validation import event_validator
from opencws.secl.sql import compile_search

POOL = 5000
DAY_NS = 86_400 * 1_000_000_000
START_NS = 1_764_460_800 * 1_000_000_000  # 2025-11-30T00:00:00Z

SEARCHES = [
    ("executable path equality", 'process.file.path == "/usr/bin/git"', "search"),
    ("file path prefix", 'open.file.path =~ "/etc/*"', "search"),
    ("event-type set", 'evt.name in ["unlink", "rename", "chmod"]', "search"),
    ("one-hour counts by type", "", "facet"),
    ("an ancestor's executable is X", 'process.ancestors.file.path == "/usr/sbin/sshd"', "search"),
    # rare on purpose (3 of the mix's 5,000 events, about 600 of 1,000,000): a page must look far back. (Its
    # first form, on /usr/*, matched 2 of 5,000 until the mix, drawn from the policy's test cases, grew; then none.)
    ("combined filter, newest 100", 'open.file.path =~ "/etc/*" && process.uid == 0 && process.ancestors.file.name == "bash"', "search"),
]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events", type=positive_int, default=1_000_000, help="events stored (default 1,000,000)"
    )
    parser.add_argument("--batch", type=positive_int, default=5_000, help="events per request (default 5000)")
    parser.add_argument("--rounds", type=positive_int, default=15, help="runs of each search (default 15)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--store", help="clickhouse://HOST:PORT/DB[?cluster=NAME][&http_port=N] instead of the embedded store"
    )
    where.add_argument(
        "--over-http",
        action="store_true",
        help="only the intake, as an agent meets it: zstd batches over HTTP to a real `opencws backend serve` "
        "(embedded store), its CPU time and peak RSS",
    )
    where.add_argument(
        "--clickhouse-local",
        action="store_true",
        help="start two local ClickHouse servers (shards) and use them",
    )
    parser.add_argument(
        "--native-inserts",
        action="store_true",
        help="with --clickhouse-local: inserts over the native protocol (no http_port in the store URL: the "
        "journal's RowBinary read back into values for the driver), to compare with the HTTP inserts",
    )
    parser.add_argument(
        "--data-dir", help="directory of the embedded store (default: a temporary one, removed)"
    )
    parser.add_argument(
        "--journal-flush-interval", type=float, default=JournalLimits().flush_interval, metavar="SECONDS",
        help="the store journal's longest wait before an insert (default 1, the backend's default)",
    )  # fmt: skip


def _bodies(n: int, batch: int, pool: list[bytes]) -> Iterator[tuple[int, bytes]]:
    """JSON array bodies of `batch` events each, dates spread evenly over 24 hours."""
    step = DAY_NS // n
    heads = [p[: p.rindex(b'"date":"') + 8] for p in pool]
    for start in range(0, n, batch):
        end = min(start + batch, n)
        parts = [
            heads[i % len(heads)] + format_timestamp(START_NS + i * step).encode() + b'"}'
            for i in range(start, end)
        ]
        yield end - start, b"[" + b",".join(parts) + b"]"


# The rules the envelopes name (as the agent's serializer writes them, `envelope_prefix`).
_RULES = [
    SimpleNamespace(id=f"rule_{i}", version="1.0.0", tags=["ruleset:default", f"technique:T{1000 + i}"],
                    policy="default.policy")
    for i in range(8)
]  # fmt: skip


def _agent_bodies(n: int, batch: int, pool: list[bytes]) -> Iterator[tuple[int, bytes]]:
    """The agent's bodies (before gzip): JSON lines of envelopes around the events of `_bodies`."""
    step = DAY_NS // n
    heads = [
        envelope_prefix(_RULES[i % len(_RULES)], f"host-{i % 20}", __version__) + p[: p.rindex(b'"date":"') + 8]
        for i, p in enumerate(pool)
    ]
    for start in range(0, n, batch):
        end = min(start + batch, n)
        lines = [
            heads[i % len(heads)] + format_timestamp(START_NS + i * step).encode() + b'"}}'
            for i in range(start, end)
        ]
        yield end - start, b"\n".join(lines)


def _rss_mib() -> float:
    """The peak RSS of the process since its start or since `_reset_peak_rss`."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> bool:
    """Start the peak RSS again from the current RSS (Linux: `clear_refs` 5), so that the intake's peak is
    not the baseline's (its parsed sample)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _intake(store: Store, n: int, batch: int, pool: list[bytes]) -> dict[str, float]:
    """Times of the intake; the bodies' making (the client's work) is left out of the process's CPU time."""
    t = {"accept": 0.0, "insert": 0.0, "accept_cpu": 0.0, "making": 0.0}
    wall = time.perf_counter()
    cpu = time.process_time()
    stored = 0
    bodies = _agent_bodies(n, batch, pool)
    while True:
        m = time.thread_time()
        count, body = next(bodies, (0, b""))
        t["making"] += time.thread_time() - m
        if not count:
            break
        a, a_cpu = time.perf_counter(), time.thread_time()
        out = accept_body(body, "application/x-ndjson", batch, 32, store=store)
        b, b_cpu = time.perf_counter(), time.thread_time()
        stored += store.insert(out.rows, out.contexts, out.encoded)
        out.stored()
        t["insert"] += time.perf_counter() - b
        t["accept"] += b - a
        t["accept_cpu"] += b_cpu - a_cpu
        assert not out.rejected and count == len(out.rows), out.rejected[:1]
    # The journal's last records into the store, inside the timing: every event counted is in the engine.
    f = time.perf_counter()
    store.flush()
    t["flush"] = time.perf_counter() - f
    t["wall"] = time.perf_counter() - wall
    t["cpu"] = time.process_time() - cpu - t["making"]
    assert stored == n
    return t


def _journal_line(store: Store) -> str:
    stats = store.journal_stats()
    if not stats:
        return "none (inserts straight into the engine)"
    return (f"{stats['inserts']:,} inserts into the engine for {stats['inserted_rows']:,} rows (events and contexts, "
            f"{stats['inserted_rows'] / max(stats['inserts'], 1):,.0f} a part), {stats['insert_errors']} errors; "
            "the timing includes the final flush")  # fmt: skip


def _merges_settle(store: Store, timeout: float = 300.0) -> float:
    """Waits until no node merges parts of the store's tables (a store at rest, as a search meets it once an
    intake is over: right after one, its merges share the CPU with the searches); the seconds it took."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        busy = sum(
            int(node.execute("SELECT count() FROM system.merges WHERE database = {db:String}", {"db": store.database})[0][0])
            for node in store.nodes()
        )  # fmt: skip
        if not busy:
            break
        time.sleep(0.2)
    return time.perf_counter() - start


def _median_ms(fn: Any, rounds: int) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        a = time.perf_counter()
        fn()
        times.append((time.perf_counter() - a) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.9))]


def run(args: argparse.Namespace) -> int:
    if args.over_http:
        from opencws.bench import backend_http_bench

        pool = [serialize(e) for e in realistic_mix(POOL)]
        backend_http_bench.run(_agent_bodies(args.events, args.batch, pool), args.events, args.batch)
        return 0
    if args.native_inserts and not args.clickhouse_local:
        print("--native-inserts goes with --clickhouse-local (give --store a URL without http_port instead)")
        return 2
    cluster = None
    tmp = None
    if args.clickhouse_local:
        from opencws.bench.clickhouse_cluster import LocalCluster

        cluster = LocalCluster(shards=2).start()
        how = "the native protocol" if args.native_inserts else "HTTP"
        url = cluster.url("bench", http=not args.native_inserts)
        kind = f"ClickHouse 18.16, two local shards under a Distributed table (inserts over {how})"
    else:
        url = args.store
        kind = f"ClickHouse at {url}" if url else "embedded store (chdb)"
    data_dir = args.data_dir or (tmp := tempfile.mkdtemp(prefix="opencws-bench-"))
    try:
        store = open_store(url, data_dir, journal=JournalLimits(flush_interval=args.journal_flush_interval))
        if store.count():
            print(f"the store already holds {store.count():,} events: use an empty one")
            return 1
        return _run(args, store, kind, cluster.cpu_seconds if cluster is not None else None)
    finally:
        if cluster is not None:
            cluster.stop()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, store: Store, kind: str, servers_cpu: Callable[[], float] | None = None) -> int:
    n = args.events
    pool = [serialize(e) for e in realistic_mix(POOL)]
    avg = sum(map(len, pool)) / len(pool)
    print(
        f"Backend intake into the {kind}: {n:,} events (realistic mix, {avg / 1024:.1f} KiB average JSON), batches of {args.batch}"
    )
    tune_gc()  # as the server does
    tune_malloc()
    # In-run baseline: parsing and validating alone (no rows, no store), on a sample.
    sample_n = min(n, 20_000)
    validator = event_validator()
    spent = 0.0
    for _, body in _bodies(sample_n, min(args.batch, 500), pool):
        a = time.thread_time()
        for d in orjson.loads(body):
            validator.is_valid(d)
        spent += time.thread_time() - a
    base = sample_n / max(spent, 1e-9)
    gc.collect()
    reset = _reset_peak_rss()
    rss_before = _rss_mib()
    print(line("baseline: orjson parse + schema validation only (CPU time)", base))
    servers_before = servers_cpu() if servers_cpu is not None else 0.0
    t = _intake(store, n, args.batch, pool)
    servers = servers_cpu() - servers_before if servers_cpu is not None else None
    rate = n / t["wall"]
    print(line("intake: parse, validate, rows, insert (wall clock)", rate, base))
    engine = "chdb's threads included" if kind.startswith("embedded") else "the servers' CPU not counted"
    print(line(f"intake per CPU-second of this process ({engine})", n / t["cpu"], base))
    print(line("  parse, validate, rows alone (CPU time of this thread)", n / max(t["accept_cpu"], 1e-9), base))
    print(f"  time split: parse, validation and rows {t['accept']:.1f} s, insert (RowBinary and the journal's record) {t['insert']:.1f} s, "
          f"the final flush of the journal into the engine {t['flush']:.1f} s (the other inserts ran on the flusher thread); "
          f"process CPU {t['cpu']:.1f} s for {t['wall']:.1f} s wall ({t['cpu'] / t['wall']:.2f} cores)")  # fmt: skip
    print(f"  journal: {_journal_line(store)}")
    if servers is not None:
        print(f"  the servers' CPU during the intake: {servers:.2f} s; with this process's, "
              f"{n / (t['cpu'] + servers):,.0f} events per CPU-second")  # fmt: skip
    since = "during the intake" if reset else "of this process"
    print(f"  peak RSS {since}: {_rss_mib():,.0f} MiB ({rss_before:,.0f} MiB at its start: the engine, and the bench's "
          "own event pool)")  # fmt: skip
    sizes = store.sizes()
    _, ev_disk, ev_raw = sizes.get(tables.LOCAL_TABLE, (0, 0, 0))
    cx_rows, cx_disk, cx_raw = sizes.get(tables.CONTEXTS_LOCAL_TABLE, (0, 0, 0))
    print(f"  stored: {(ev_disk + cx_disk) / n:,.0f} bytes per event on disk, {(ev_raw + cx_raw) / n:,.0f} uncompressed "
          f"(the events' JSON as sent: {avg:,.0f}); {(ev_disk + cx_disk) / 2**20:,.1f} MiB in all, of which "
          f"{cx_rows:,} process ancestors (and parent) texts stored apart ({cx_disk / 2**20:,.1f} MiB)")  # fmt: skip
    settled = _merges_settle(store)
    print(
        f"Searches over {store.count():,} stored events: median (p90) of {args.rounds} runs, each answering the HTTP API's question"
        f" (the store at rest: its background merges of the intake's parts took {settled:.1f} s more)"
    )
    everything = (0, 2**62)
    last_hour = (START_NS + DAY_NS - 3_600 * 1_000_000_000, START_NS + DAY_NS)
    base_s = compile_search("")
    b_med, b_p90 = _median_ms(lambda: store.search(base_s, *everything, None, 100), args.rounds)
    print(f"  {'baseline: newest 100 events, no filter':<62} {b_med:8.1f} ms ({b_p90:.1f})")
    for label, q, what in SEARCHES:
        s = compile_search(q)
        if what == "facet":

            def fn(s=s) -> Any:
                return store.facet(s, "evt.name", *last_hour, 50)
        else:

            def fn(s=s) -> Any:
                return store.search(s, *everything, None, 100)

        med, p90 = _median_ms(fn, args.rounds)
        hits = len(fn()[0]) if what == "facet" else len(fn().hits)
        note = "exact SQL, checked by SECL" if s.where.exact else "SQL prefilter + SECL"
        print(
            f"  {label:<62} {med:8.1f} ms ({p90:.1f})  {med / b_med:5.2f}x baseline; {hits} results, {note}"
        )
    store.close()
    detection_bench.run(pool, min(n, 100_000))
    return 0
