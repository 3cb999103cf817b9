"""The store's write-ahead journal: an acknowledged insert is found by the next read, survives a crash at any
point (inserted once, never twice), a torn last record is cut and a corrupt one stops the open; a store that
cannot insert keeps the records, and past the journal's bound the intake is refused (503).

Over the session's real chdb engine (one per process): a "crash" stops the flusher without its last flush
and closes the journal's files (what a kill -9 leaves: every record is written straight to its file), then
a new Store opens the same journal and database."""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from backend_corpus import event_mix
from fastapi.testclient import TestClient

from opencws.backend.intake import accept_body
from opencws.backend.main import create_app
from opencws.backend.settings import Settings, SettingsError
from opencws.backend.store import Store, StoreError
from opencws.backend.store.chdb_engine import ChdbEngine
from opencws.backend.store.journal import Journal, JournalLimits
from opencws.secl.sql import compile_search

ALL = (0, 2**62)
EVERY = compile_search("")
# Nothing flushed in the background during a test: only reads (and close) insert.
QUIET = JournalLimits(flush_rows=10**9, flush_bytes=1 << 30, flush_interval=3600.0, max_bytes=1 << 30)


def _open(engine: ChdbEngine, database: str, directory: Path, limits: JournalLimits = QUIET) -> Store:
    store = Store(engine, database=database)
    store.create()
    store.open_journal(Journal(str(directory), limits))
    return store


def _crash(store: Store) -> None:
    """The process dies: no last flush; the files stay as they are."""
    assert store._flusher is not None and store.journal is not None
    store._flusher.close(flush=False)
    store.journal.close()


def _close(store: Store) -> None:
    """A clean close that leaves the session's engine open."""
    assert store._flusher is not None and store.journal is not None
    store._flusher.close()
    store.journal.close()


def _ingest(store: Store, events: list[dict]) -> list[str]:
    out = accept_body(orjson.dumps(events), "application/json", 10_000, 32, store=store)
    assert not out.rejected
    assert store.insert(out.rows, out.contexts) == len(events)
    out.stored()
    return [str(r[2]) for r in out.rows]


def _stored_ids(store: Store) -> Counter[str]:
    store.flush()
    return Counter(str(i) for (i,) in store.engine.execute(f"SELECT id FROM {store.read_table}"))


def _context_keys(store: Store) -> Counter[str]:
    store.flush()
    return Counter(str(k) for (k,) in store.engine.execute(f"SELECT key FROM {store.contexts_table}"))


_n = iter(range(10**6))


@pytest.fixture
def database() -> str:
    return f"journal{next(_n)}"


def test_acknowledged_events_are_found_by_the_next_read(chdb_engine, database, tmp_path) -> None:
    store = _open(chdb_engine, database, tmp_path / "j")
    try:
        ids: list[str] = []
        for i in range(5):  # small inserts, far below every threshold
            ids += _ingest(store, event_mix(7, seed=i))
            assert store.journal is not None and store.journal.pending  # not in the engine yet
            page = store.search(EVERY, *ALL, None, 1000)
            assert sorted(h.id for h in page.hits) == sorted(ids)
            assert store.get(ids[-1]) is not None
            assert store.count() == len(ids)
        assert store.journal_stats()["pending_rows"] == 0 and store.journal_stats()["inserts"] == 5
    finally:
        _close(store)


def test_a_crash_before_the_insert_loses_nothing(chdb_engine, database, tmp_path) -> None:
    store = _open(chdb_engine, database, tmp_path / "j")
    ids = _ingest(store, event_mix(30, seed=1)) + _ingest(store, event_mix(30, seed=2))
    _crash(store)
    again = _open(chdb_engine, database, tmp_path / "j")
    try:
        assert _stored_ids(again) == Counter(ids)
        # Whole again: each event's ancestors found in the contexts stored with it.
        assert len(again.search(EVERY, *ALL, None, 100).hits) == 60
    finally:
        _close(again)


def test_a_crash_between_the_insert_and_its_record_inserts_nothing_twice(chdb_engine, database, tmp_path) -> None:
    store = _open(chdb_engine, database, tmp_path / "j")
    first = _ingest(store, event_mix(40, seed=3))
    second = _ingest(store, event_mix(40, seed=4))
    j = store.journal
    assert j is not None and len(j.pending) == 2
    # The first record's rows inserted, its insert never recorded (as a crash right after the INSERT leaves it);
    # of the second record, only the rows of one day (a multi-partition insert cut in the middle).
    batch = [j.pending[0]]
    store._insert_records(batch, *j.read(batch))
    _, evt = j.read([j.pending[1]])
    days = {r[2][0] for r in _rows(bytes(evt[0]))}
    one_day = min(days)
    part = [(a, b) for a, b, v in _rows(bytes(evt[0])) if v[0] == one_day]
    data = b"".join(bytes(evt[0])[a:b] for a, b in part)
    store.engine.insert(store.write_table, _columns(), data=data, count=len(part))
    keys_before = _context_keys_raw(store)
    _crash(store)
    again = _open(chdb_engine, database, tmp_path / "j")
    try:
        assert _stored_ids(again) == Counter(first + second)
        keys = _context_keys(again)
        assert all(n == 1 for n in keys.values()) and set(keys_before) <= set(keys)
        assert len(again.search(EVERY, *ALL, None, 100).hits) == 80
    finally:
        _close(again)


def _rows(evt: bytes) -> list:
    from opencws.backend.store import tables
    from opencws.backend.store.rowbinary import read_rows

    return read_rows(evt, [t for _, t in tables.COLUMNS])


def _columns() -> list[tuple[str, str]]:
    from opencws.backend.store import tables

    return tables.COLUMNS


def _context_keys_raw(store: Store) -> list[str]:
    return [str(k) for (k,) in store.engine.execute(f"SELECT key FROM {store.contexts_table}")]


def test_a_stored_point_older_than_the_truth_inserts_nothing_twice(chdb_engine, database, tmp_path) -> None:
    store = _open(chdb_engine, database, tmp_path / "j")
    ids = _ingest(store, event_mix(25, seed=5))
    store.flush()  # inserted and recorded
    ids += _ingest(store, event_mix(25, seed=6))
    _crash(store)
    (tmp_path / "j" / "stored").write_bytes(b"garbage")  # unreadable: every record is checked
    again = _open(chdb_engine, database, tmp_path / "j")
    try:
        assert _stored_ids(again) == Counter(ids)
        assert all(n == 1 for n in _context_keys(again).values())
    finally:
        _close(again)


def _segment(directory: Path) -> Path:
    (path,) = [p for p in directory.iterdir() if p.suffix == ".wal" and p.stat().st_size > 8]
    return path


def test_a_torn_last_record_is_cut_off_with_a_warning(chdb_engine, database, tmp_path, caplog) -> None:
    store = _open(chdb_engine, database, tmp_path / "j")
    kept = _ingest(store, event_mix(10, seed=7)) + _ingest(store, event_mix(10, seed=8))
    _ingest(store, event_mix(10, seed=9))
    assert store.journal is not None
    torn_at = store.journal.pending[2].offset
    _crash(store)
    path = _segment(tmp_path / "j")
    os.truncate(path, path.stat().st_size - 100)  # the last write cut short by the crash
    with caplog.at_level(logging.WARNING):
        j = Journal(str(tmp_path / "j"), QUIET)
    assert any(f"at offset {torn_at}, is cut off" in r.getMessage() for r in caplog.records)
    assert path.stat().st_size == torn_at and len(j.pending) == 2
    j.close()
    again = _open(chdb_engine, database, tmp_path / "j")
    try:
        assert _stored_ids(again) == Counter(kept)
    finally:
        _close(again)


def test_a_corrupt_record_in_the_middle_stops_the_open_with_file_and_offset(chdb_engine, database, tmp_path) -> None:
    store = _open(chdb_engine, database, tmp_path / "j")
    for seed in (10, 11, 12):
        _ingest(store, event_mix(10, seed=seed))
    assert store.journal is not None
    bad = store.journal.pending[1]
    _crash(store)
    path = _segment(tmp_path / "j")
    with open(path, "r+b") as f:
        f.seek(bad.offset + 60)
        byte = f.read(1)
        f.seek(bad.offset + 60)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(StoreError, match=f"the journal {path} is corrupt at offset {bad.offset}: CRC32 mismatch"):
        Journal(str(tmp_path / "j"), QUIET)
    assert path.stat().st_size > bad.end  # nothing dropped


class RefusingEngine(ChdbEngine):
    """The session's real chdb engine, refusing inserts while `refuse` is set (a server down)."""

    def __init__(self, inner: ChdbEngine) -> None:
        self.__dict__.update(inner.__dict__)  # the same session and lock
        self.refuse = True
        self.refused = 0

    def insert(self, *args, **kwargs) -> int:  # type: ignore[no-untyped-def]
        if self.refuse:
            self.refused += 1
            raise StoreError("connection refused (test)")
        return super().insert(*args, **kwargs)


def test_a_store_that_cannot_insert_keeps_the_records_and_inserts_them_later(chdb_engine, database, tmp_path) -> None:
    engine = RefusingEngine(chdb_engine)
    fast = JournalLimits(flush_rows=10**9, flush_bytes=1 << 30, flush_interval=0.05, max_bytes=1 << 30)
    store = _open(engine, database, tmp_path / "j", fast)  # type: ignore[arg-type]
    try:
        ids = _ingest(store, event_mix(20, seed=13))
        deadline = time.monotonic() + 30
        while engine.refused < 2 and time.monotonic() < deadline:  # the flusher tries, and tries again
            time.sleep(0.05)
        assert engine.refused >= 2
        with pytest.raises(StoreError, match="connection refused"):
            store.search(EVERY, *ALL, None, 10)  # a read cannot see what is acknowledged: an error, not a lie
        ids += _ingest(store, event_mix(20, seed=14))  # still acknowledged meanwhile
        stats = store.journal_stats()
        assert stats["pending_rows"] >= 40 and stats["insert_errors"] >= 2
        engine.refuse = False
        deadline = time.monotonic() + 30  # the flusher's next try (its delay is at most 10 s)
        while store.journal_stats()["pending_rows"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.journal_stats()["pending_rows"] == 0
        assert _stored_ids(store) == Counter(ids)
    finally:
        engine.refuse = False
        _close(store)


def test_past_the_bound_the_intake_is_refused_with_503(chdb_engine, database, tmp_path) -> None:
    engine = RefusingEngine(chdb_engine)
    small = JournalLimits(flush_rows=10**9, flush_bytes=8 << 10, flush_interval=3600.0, max_bytes=8 << 10)
    store = _open(engine, database, tmp_path / "j", small)  # type: ignore[arg-type]
    batch = orjson.dumps(event_mix(20, seed=15))  # past the bound alone
    app = create_app(Settings(data_dir=str(tmp_path / "app"), rate_limit=0), store=store)
    try:
        with TestClient(app) as client:
            from opencws.backend.keys import KeyStore

            keys = KeyStore(str(tmp_path / "app"))
            ingest = keys.create("t", ("ingest",))[1]
            keys.close()
            headers = {"Authorization": f"Bearer {ingest}"}
            first = client.post("/api/v1/events", content=batch, headers=headers)
            assert first.status_code == 200  # an empty journal takes any request
            assert store.journal is not None and store.journal.pending_bytes > small.max_bytes
            second = client.post("/api/v1/events", content=orjson.dumps(event_mix(3, seed=16)), headers=headers)
            assert second.status_code == 503
            assert "none is acknowledged" in second.text and "the store is behind" in second.text
            with pytest.raises(StoreError, match="the store is behind"):
                _ingest(store, event_mix(1, seed=17))
            metrics_key = KeyStore(str(tmp_path / "app"))
            reader = metrics_key.create("r", ("read",))[1]
            metrics_key.close()
            m = client.get("/metrics", headers={"Authorization": f"Bearer {reader}"}).text
            pending = next(line for line in m.splitlines() if line.startswith("opencws_journal_pending_rows "))
            assert float(pending.split()[1]) >= 20  # the events and their contexts
            engine.refuse = False
            store.flush()
            assert client.post("/api/v1/events", content=orjson.dumps(event_mix(3, seed=18)), headers=headers).status_code == 200
            assert store.count() == 23
    finally:
        engine.refuse = False
        _close(store)


def test_journal_settings_are_checked_with_precise_errors() -> None:
    with pytest.raises(SettingsError, match="journal_flush_rows must be a positive integer, got 0"):
        Settings.load(None, {"journal_flush_rows": 0})
    with pytest.raises(SettingsError, match="journal_flush_interval must be a number > 0"):
        Settings.load(None, {"journal_flush_interval": "soon"})
    with pytest.raises(SettingsError, match=r"journal_max_bytes \(1000\) must be at least journal_flush_bytes"):
        Settings.load(None, {"journal_max_bytes": 1000})
    with pytest.raises(SettingsError, match="must be at least max_decompressed_bytes"):
        Settings.load(None, {"journal_max_bytes": 200 << 20, "max_decompressed_bytes": 256 << 20})
    s = Settings.load(None, {"journal_flush_interval": 0.5, "journal_flush_rows": 1000})
    assert s.journal_limits().flush_interval == 0.5 and s.journal_limits().flush_rows == 1000


def test_a_journal_in_use_by_another_process_is_refused(tmp_path) -> None:
    j = Journal(str(tmp_path / "j"), QUIET)
    try:
        import subprocess
        import sys

        out = subprocess.run(
            [sys.executable, "-c", "import sys; from opencws.backend.store.journal import Journal; Journal(sys.argv[1])",
             str(tmp_path / "j")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode != 0 and "is in use by another process" in out.stderr
    finally:
        j.close()


def test_the_flusher_inserts_after_the_interval_without_any_read(chdb_engine, database, tmp_path) -> None:
    soon = JournalLimits(flush_rows=10**9, flush_bytes=1 << 30, flush_interval=0.2, max_bytes=1 << 30)
    store = _open(chdb_engine, database, tmp_path / "j", soon)
    try:
        ids = _ingest(store, event_mix(10, seed=19))
        deadline = time.monotonic() + 30
        while store.journal_stats()["pending_rows"] and time.monotonic() < deadline:
            time.sleep(0.05)  # journal_stats reads no table: nothing but the flusher inserts
        assert store.journal_stats()["inserts"] == 1
        rows = store.engine.execute(f"SELECT id FROM {store.read_table}")  # the engine itself, no flush
        assert Counter(str(i) for (i,) in rows) == Counter(ids)
    finally:
        _close(store)


def test_segments_roll_over_and_are_deleted_once_stored(chdb_engine, database, tmp_path) -> None:
    tiny = JournalLimits(flush_rows=10**9, flush_bytes=1 << 30, flush_interval=3600.0, max_bytes=1 << 30, segment_bytes=4096)
    store = _open(chdb_engine, database, tmp_path / "j", tiny)
    ids: list[str] = []
    for seed in range(20, 25):
        ids += _ingest(store, event_mix(5, seed=seed))  # a record each beyond 4 KiB: a segment each
    segments = sorted(p.name for p in (tmp_path / "j").iterdir() if p.suffix == ".wal")
    assert len(segments) >= 5
    _crash(store)
    again = _open(chdb_engine, database, tmp_path / "j", tiny)  # recovered across every segment
    try:
        assert _stored_ids(again) == Counter(ids)
        left = [p for p in (tmp_path / "j").iterdir() if p.suffix == ".wal"]
        assert len(left) == 1 and left[0].stat().st_size == 8  # only the new, empty one: disk use bounded
    finally:
        _close(again)


def test_with_fsync_every_record_is_flushed_and_found(chdb_engine, database, tmp_path) -> None:
    store = Store(chdb_engine, database=database)
    store.create()
    store.open_journal(Journal(str(tmp_path / "j"), QUIET, fsync=True))
    ids = _ingest(store, event_mix(10, seed=26))
    _crash(store)
    again = _open(chdb_engine, database, tmp_path / "j")
    try:
        assert _stored_ids(again) == Counter(ids)
    finally:
        _close(again)


def test_a_shard_down_keeps_the_records_and_they_are_stored_once_it_is_back(tmp_path) -> None:
    """Two ClickHouse 18.16 shards of its own (one is stopped): the Distributed insert fails, possibly after
    the other shard took its rows; once the shard is back every acknowledged event is stored once."""
    from opencws.backend.store.server_engine import ServerAddress, ServerEngine
    from opencws.bench.clickhouse_cluster import CLUSTER, LocalCluster, missing

    reason = missing()
    if reason is not None:
        pytest.skip(f"ClickHouse servers cannot run: {reason}")
    cluster = LocalCluster(shards=2).start()
    store = None
    try:
        address = ServerAddress("127.0.0.1", cluster.ports[0], http_port=cluster.http_ports[0])
        engine = ServerEngine(address, {"insert_distributed_sync": 1})
        store = Store(engine, database="journal_down", cluster=CLUSTER)
        store.create()
        soon = JournalLimits(flush_rows=10**9, flush_bytes=1 << 30, flush_interval=0.1, max_bytes=1 << 30)
        store.open_journal(Journal(str(tmp_path / "j"), soon))
        down = cluster.procs[1]
        down.terminate()
        down.wait(30)
        docs = [{"host": f"node-{i % 6}", "event": e} for i, e in enumerate(event_mix(60, seed=27))]
        out = accept_body(orjson.dumps(docs), "application/json", 1000, 32, store=store)
        assert store.insert(out.rows, out.contexts) == 60  # acknowledged with a shard down
        out.stored()
        ids = [str(r[2]) for r in out.rows]
        deadline = time.monotonic() + 60
        while store.journal_stats()["insert_errors"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.journal_stats()["insert_errors"] >= 1 and store.journal_stats()["pending_rows"] >= 60
        cluster.restart(1)
        store.flush()
        got = Counter(str(i) for (i,) in engine.execute(f"SELECT id FROM {store.read_table}"))
        assert got == Counter(ids)
        assert len(store.search(EVERY, *ALL, None, 100).hits) == 60
    finally:
        if store is not None:
            store.close()
        cluster.stop()


def test_a_receipt_written_with_a_record_is_handed_back_at_the_next_open_and_is_not_data(tmp_path) -> None:
    from opencws.backend.store.journal import Journal

    j = Journal(str(tmp_path))
    j.append(b"", 0, b"E" * 40, 2, b'["k","batch-1","{}"]')
    j.append(b"", 0, b"F" * 40, 3)
    assert [r.events for r in j.pending] == [2, 3] and j.pending_bytes == sum(r.size for r in j.pending)
    j.close()
    again = Journal(str(tmp_path))
    try:
        assert again.receipts == [b'["k","batch-1","{}"]']
        assert [r.events for r in again.pending] == [2, 3]  # the receipt is neither a record nor in the way
        assert again.read(list(again.pending))[1] == [b"E" * 40, b"F" * 40]
    finally:
        again.close()


def test_a_receipt_cut_short_by_a_crash_is_cut_off_and_its_record_kept(tmp_path) -> None:
    import os

    from opencws.backend.store.journal import Journal

    j = Journal(str(tmp_path))
    j.append(b"", 0, b"E" * 40, 2, b'["k","batch-1","{}"]')
    j.close()
    (segment,) = [p for p in os.listdir(tmp_path) if p.endswith(".wal") and os.path.getsize(tmp_path / p) > 8]
    os.truncate(tmp_path / segment, os.path.getsize(tmp_path / segment) - 5)  # the write stopped in the receipt
    again = Journal(str(tmp_path))
    try:
        assert again.receipts == [] and [r.events for r in again.pending] == [2]
    finally:
        again.close()
