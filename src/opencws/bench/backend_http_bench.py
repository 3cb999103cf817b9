"""`opencws bench backend --over-http`: the intake as an agent meets it, a real backend process on loopback
(`opencws backend serve`, embedded store) receiving the agent's zstd batches of JSON lines over HTTP, each with
its `Idempotency-Key` as the agent sends it.

Counted: the backend process's CPU time (user + system, all its threads: HTTP, authentication, zstd, the
compiled pass, the journal, chdb's inserts and merges) from the first request to the moment the journal has
put every acknowledged event into the store, and its peak RSS (VmHWM) over its whole life. The bodies are
compressed before the clock starts (the agent's work, not the backend's)."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import urllib3

from opencws.agent import batch_coding
from opencws.agent.http_reporter import EVENTS_PATH
from opencws.bench.timing import process_cpu_seconds

_PENDING = re.compile(rb"^opencws_journal_pending_rows (\S+)$", re.M)


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run(bodies: Iterator[tuple[int, bytes]], n: int, batch: int) -> None:
    from opencws.backend.keys import KeyStore
    from opencws.cli.backend_child import BackendChild

    tmp = Path(tempfile.mkdtemp(prefix="opencws-bench-http-"))
    try:
        data = tmp / "backend"
        data.mkdir()
        (data / "backend.yaml").write_text("rate_limit: 0\n")
        keys = KeyStore(str(data))
        ingest = keys.create("bench", ("ingest",))[1]
        read = keys.create("bench-read", ("read",))[1]
        keys.close()
        backend = BackendChild(data, "127.0.0.1:0", tmp / "backend.log", extra_args=["--config", str(data / "backend.yaml")])
        url = backend.start()
        pid = backend.pid
        assert pid is not None
        try:
            sent = [batch_coding.compress(body.split(b"\n"), "zstd") for _, body in bodies]
            http = urllib3.connection_from_url(url, retries=False, timeout=300)
            headers = {"Authorization": f"Bearer {ingest}", "Content-Type": "application/x-ndjson",
                       "Content-Encoding": "zstd"}  # fmt: skip
            cpu, wall = process_cpu_seconds(pid), time.perf_counter()
            for i, body in enumerate(sent):  # each with its Idempotency-Key, as the agent sends them
                r = http.urlopen("POST", EVENTS_PATH, body=body, headers={**headers, "Idempotency-Key": f"bench-{i}"})
                if r.status != 200:
                    raise RuntimeError(f"the backend answered {r.status}: {r.data[:300]!r}")
            while True:  # until the journal has put everything acknowledged into the store
                m = _PENDING.search(http.urlopen("GET", "/metrics", headers={"Authorization": f"Bearer {read}"}).data)
                if m is None or float(m.group(1)) == 0:
                    break
                time.sleep(0.05)
            wall = time.perf_counter() - wall
            cpu = process_cpu_seconds(pid) - cpu
            rss = _peak_rss_mib(pid)
            http.close()
        finally:
            backend.stop()
        size = sum(map(len, sent)) / n
        print(f"Over HTTP: {n:,} events to `opencws backend serve` on loopback (embedded store), batches of {batch}, "
              f"zstd ({size:,.0f} bytes an event on the wire), each with an Idempotency-Key as the agent sends it")  # fmt: skip
        print(f"  {'intake per CPU-second of the backend process (all its threads)':<62} {n / cpu:>12,.0f} events/s")
        print(f"  {'intake, wall clock':<62} {n / wall:>12,.0f} events/s ({cpu / wall:.2f} cores)")
        print(f"  {'peak RSS of the backend process':<62} {rss:>12,.0f} MiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
