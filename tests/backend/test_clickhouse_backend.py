"""The backend process over a ClickHouse cluster (`--store clickhouse://...?cluster=...`): two 18.16 shards
under a Distributed table, the same API as the embedded store."""

from __future__ import annotations

import orjson
from backend_corpus import event_mix
from backend_process import Backend
from clickhouse_driver import Client

from opencws.bench.clickhouse_cluster import LocalCluster


def test_backend_stores_on_both_shards_and_finds_events_again(
    tmp_path, clickhouse_cluster: LocalCluster
) -> None:
    b = Backend(tmp_path, ["--store", clickhouse_cluster.url("backend_e2e")]).start()
    try:
        ingest, read = b.key("ingest"), b.key("read")
        events = event_mix(60, seed=3)
        docs = [{"host": f"node-{i % 6}", "event": e} for i, e in enumerate(events)]
        with b.client(ingest) as c:
            assert c.post("/api/v1/events", content=orjson.dumps(docs)).json() == {
                "stored": 60,
                "rejected": [],
            }
        with b.client(read) as c:
            body = c.get("/api/v1/events", params={"q": 'evt.name == "exec"', "limit": 1000}).json()
            r = c.get("/api/v1/events", params={"q": 'open.file.path =~ "/etc/*"', "limit": 1000})
        assert sorted(orjson.dumps(h["event"]) for h in body["events"]) == sorted(
            orjson.dumps(e) for e in events if e["evt"]["name"] == "exec"
        )
        assert r.status_code == 200
        counts = [
            Client("127.0.0.1", port=p).execute("SELECT count() FROM backend_e2e.events_local")[0][0]
            for p in clickhouse_cluster.ports
        ]
        assert sum(counts) == 60 and all(counts)
    finally:
        b.stop()


def test_an_unreachable_store_stops_the_start_with_its_reason(tmp_path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "opencws.cli.main", "backend", "serve", "--listen", "127.0.0.1:0",
         "--data-dir", str(tmp_path), "--store", "clickhouse://127.0.0.1:1/x"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode != 0
    assert "ClickHouse 127.0.0.1:1" in out.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "opencws.cli.main", "backend", "serve", "--listen", "127.0.0.1:0",
         "--data-dir", str(tmp_path), "--store", "clickhouse://h/db?cluster=a;DROP"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "invalid cluster name" in bad.stderr
