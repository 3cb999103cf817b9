"""`opencws bench backend` runs and prints its figures with ratios (no timing asserted). In a process of its
own: chdb opens one store per process."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from opencws.bench.clickhouse_cluster import missing


def bench(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "opencws.cli.main", "bench", "backend", "--events", "3000", "--batch", "1000",
         "--rounds", "2", *args],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


def check(out: str) -> None:
    assert "3,000 events" in out
    assert "baseline: orjson parse + schema validation only" in out
    assert "intake: parse, validate, rows, insert" in out and "x baseline)" in out
    assert "peak RSS" in out
    stored = re.search(r"stored: ([\d,]+) bytes per event on disk, ([\d,]+) uncompressed .* ([\d,]+) process", out)
    assert stored and int(stored[3].replace(",", "")) > 0  # the ancestors texts went apart
    assert 0 < int(stored[2].replace(",", "")) < 9_141 / 2  # the stored event without them
    for label in ["executable path equality", "file path prefix", "event-type set", "one-hour counts by type",
                  "an ancestor's executable is X", "combined filter, newest 100"]:  # fmt: skip
        assert label in out
    assert "Searches over 3,000 stored events" in out
    assert "default detection rules, state written" in out


def test_bench_backend_on_the_embedded_store() -> None:
    check(bench())


def test_bench_backend_on_local_clickhouse_shards() -> None:
    if missing():
        pytest.skip(missing())
    out = bench("--clickhouse-local")
    check(out)
    assert "two local shards under a Distributed table (inserts over HTTP)" in out
    # A short run can take less than a clock tick of the servers' CPU: the figure is read, and counted in the total.
    servers = re.search(r"the servers' CPU during the intake: ([\d.]+) s; with this process's, ([\d,]+) events", out)
    alone = re.search(r"intake per CPU-second of this process \(the servers' CPU not counted\)\s+([\d,]+)", out)
    assert servers and alone and float(servers[1]) >= 0
    assert 0 < int(servers[2].replace(",", "")) <= int(alone[1].replace(",", "")) + 1


def test_bench_backend_on_local_clickhouse_shards_with_native_inserts() -> None:
    if missing():
        pytest.skip(missing())
    out = bench("--clickhouse-local", "--native-inserts")
    check(out)
    assert "two local shards under a Distributed table (inserts over the native protocol)" in out


def test_bench_backend_over_http_counts_a_real_backend_process() -> None:
    out = bench("--over-http")
    assert "Over HTTP: 3,000 events to `opencws backend serve`" in out and "zstd" in out
    cpu = re.search(r"intake per CPU-second of the backend process \(all its threads\)\s+([\d,]+) events/s", out)
    rss = re.search(r"peak RSS of the backend process\s+([\d,]+) MiB", out)
    assert cpu and int(cpu[1].replace(",", "")) > 0
    assert rss and int(rss[1].replace(",", "")) > 100  # a real server's, with its engine
