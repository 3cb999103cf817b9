"""Inserts over a ClickHouse server's HTTP interface (`store/http_insert.py`, a `ServerEngine` given the
server's `http_port`), against the session's two 18.16 shards: the journal's RowBinary goes as it is."""

from __future__ import annotations

import datetime
import itertools
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from backend_corpus import event_mix

from opencws.backend.store import Store, StoreError, StoreURLError, open_store, parse_store_url, tables
from opencws.backend.store.http_insert import HttpInsert
from opencws.backend.store.journal import Journal, JournalLimits
from opencws.backend.store.rowbinary import row_binary, text_bytes
from opencws.backend.store.rows import Envelope, row_of_dict
from opencws.backend.store.server_engine import ServerAddress, ServerEngine
from opencws.bench.clickhouse_cluster import CLUSTER, LocalCluster, missing

_names = itertools.count()
# The journal's flusher stays out of the way: the tests flush.
_LATER = JournalLimits(flush_rows=10**9, flush_bytes=1 << 30, flush_interval=3600, max_bytes=1 << 30)


def _engine(cluster: LocalCluster, http: bool = True) -> ServerEngine:
    http_port = cluster.http_ports[0] if http else None
    return ServerEngine(ServerAddress("127.0.0.1", cluster.ports[0], http_port=http_port), {"insert_distributed_sync": 1})


@pytest.fixture(params=["http", "native"])
def journaled(request: pytest.FixtureRequest, clickhouse_cluster: LocalCluster, tmp_path: Path) -> Iterator[Store]:
    """A cluster store behind its journal, inserting over HTTP or (no http_port) over the native protocol."""
    store = Store(_engine(clickhouse_cluster, request.param == "http"), f"http{next(_names)}", CLUSTER)
    store.create()
    store.open_journal(Journal(str(tmp_path / "journal"), _LATER))
    yield store
    store.close()


def _stored_bytes(cluster: LocalCluster, sql: str) -> bytes:
    """What the server holds, as RowBinary (read over HTTP: the bytes as they are)."""
    pool = urllib3.HTTPConnectionPool("127.0.0.1", cluster.http_ports[0])
    r = pool.request("POST", "/", body=(sql + " FORMAT RowBinary").encode())
    assert r.status == 200, r.data
    return r.data


def _rows_with_odd_bytes() -> tuple[list[list], list[list]]:
    """Events and contexts whose strings hold bytes that are not UTF-8 (a lone surrogate stands for its byte,
    `opencws.model.jsontext`), UTF-8 beyond ASCII, and the bytes RowBinary's reader might trip on."""
    events = event_mix(30, seed=41)
    events[0]["process"]["comm"] = "caf\udce9"
    events[1]["file"] = {**events[1].get("file", {}), "path": "/tmp/\udcff\udc80/\u65e5\u672c", "name": "\u65e5\u672c"}
    events[2]["process"]["comm"] = "tab\there\nnl\r\x00zero"
    rows = [row_of_dict(e, Envelope(host=f"node-{i % 6}", tags=["t\udcfe", "\u00e9"]), i) for i, e in enumerate(events)]
    day = datetime.date(2026, 11, 30)
    contexts = [
        [day, "k1", '[{"file":{"path":"/bin/caf\udce9"}}]'],
        [day, "k2", "\u00e9\n\t \x00"],
        [day, "k3", ""],
    ]
    return rows, contexts


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sorted_rowbinary(rows: list, types: list[str], key_at: int) -> bytes:
    return bytes(row_binary(sorted(rows, key=lambda r: text_bytes(str(r[key_at]))), types))


def test_journaled_rows_read_back_byte_for_byte_including_bytes_that_are_not_utf8(
    journaled: Store, clickhouse_cluster: LocalCluster
) -> None:
    rows, contexts = _rows_with_odd_bytes()
    assert journaled.insert(rows[:10], contexts[:2]) == 10
    assert journaled.insert(rows[10:], contexts[2:]) == 20  # two records, one INSERT per table
    journaled.flush()
    assert journaled.journal_stats()["inserts"] == 1 and journaled.journal_stats()["pending_rows"] == 0
    names = ", ".join(tables.COLUMN_NAMES)
    got = _stored_bytes(clickhouse_cluster, f"SELECT {names} FROM {journaled.read_table} ORDER BY id")
    assert got == _sorted_rowbinary(rows, [t for _, t in tables.COLUMNS], 2)
    got = _stored_bytes(clickhouse_cluster, f"SELECT day, key, text FROM {journaled.contexts_table} ORDER BY key")
    assert got == _sorted_rowbinary(contexts, [t for _, t in tables.CONTEXT_COLUMNS], 1)


@pytest.mark.parametrize("low_byte", [0x09, 0x0A, 0x0C, 0x0D, 0x20])
def test_a_body_starting_with_a_whitespace_byte_is_read_whole(
    clickhouse_cluster: LocalCluster, low_byte: int
) -> None:
    """The first bytes of an events body are a `Date` (UInt16, little endian): a day such as 2024-10-04
    (20,000: 0x4E20) starts it with a space, which must not be taken for the end of the query."""
    store = Store(_engine(clickhouse_cluster), f"http{next(_names)}", CLUSTER)
    try:
        store.create()
        day = datetime.date(1970, 1, 1) + datetime.timedelta(days=0x4E00 | low_byte)
        rows = [[day, "\n key", " text"], [day, "key2", "\udcff"]]
        data = row_binary(rows, ["Date", "String", "String"])
        assert data[0] == low_byte
        assert store.engine.insert(store.contexts_table, tables.CONTEXT_COLUMNS, data=data, count=2) == 2
        got = _stored_bytes(clickhouse_cluster, f"SELECT day, key, text FROM {store.contexts_table} ORDER BY key")
        assert got == _sorted_rowbinary(rows, ["Date", "String", "String"], 1)
    finally:
        store.close()


def test_rowbinary_without_its_count_is_counted_before_the_insert(clickhouse_cluster: LocalCluster) -> None:
    store = Store(_engine(clickhouse_cluster), f"http{next(_names)}", CLUSTER)
    try:
        store.create()
        day = datetime.date(2026, 11, 30)
        parts = [row_binary([[day, f"{p}{i}", "t"] for i in range(n)], ["Date", "String", "String"]) for p, n in [("a", 3), ("b", 4)]]
        assert store.engine.insert(store.contexts_table, tables.CONTEXT_COLUMNS, data=parts) == 7
        assert store.engine.insert(store.contexts_table, tables.CONTEXT_COLUMNS, data=[b""]) == 0
        assert store.engine.execute(f"SELECT count() FROM {store.contexts_table}") == [(7,)]
    finally:
        store.close()


def test_rows_given_as_values_are_encoded_and_sent_over_http(clickhouse_cluster: LocalCluster) -> None:
    """A store without its journal hands the engine values: encoded to RowBinary here, the same bytes."""
    store = Store(_engine(clickhouse_cluster), f"http{next(_names)}", CLUSTER)
    try:
        store.create()
        rows, contexts = _rows_with_odd_bytes()
        assert store.insert(rows, contexts) == len(rows)
        names = ", ".join(tables.COLUMN_NAMES)
        got = _stored_bytes(clickhouse_cluster, f"SELECT {names} FROM {store.read_table} ORDER BY id")
        assert got == _sorted_rowbinary(rows, [t for _, t in tables.COLUMNS], 2)
    finally:
        store.close()


def test_a_refused_insert_raises_store_error_and_the_journal_keeps_the_record(
    clickhouse_cluster: LocalCluster, tmp_path: Path
) -> None:
    store = Store(_engine(clickhouse_cluster), f"http{next(_names)}", CLUSTER)
    store.create()
    store.open_journal(Journal(str(tmp_path / "journal"), _LATER))
    try:
        rows, _ = _rows_with_odd_bytes()
        store.engine.execute(f"DROP TABLE {store.write_table}")  # the server now refuses the insert
        assert store.insert(rows, []) == len(rows)  # acknowledged: journaled
        with pytest.raises(StoreError, match=r"HTTP 404\): Code: 60, .*events doesn't exist"):
            store.flush()
        stats = store.journal_stats()
        assert stats["pending_rows"] == len(rows) and stats["pending_records"] == 1 and stats["insert_errors"] == 1
        store.create()  # the table is back: the record goes in, once
        store.flush()
        ids = [str(i) for (i,) in store.engine.execute(f"SELECT id FROM {store.read_table}")]
        assert sorted(ids) == sorted(str(r[2]) for r in rows)
        assert store.journal_stats()["pending_rows"] == 0
    finally:
        store.close()


def test_a_body_bad_anywhere_stores_none_of_its_rows(clickhouse_cluster: LocalCluster) -> None:
    """The rows are one block (`max_insert_block_size` = the count): a body cut short in its last row, or with
    a row the server cannot read in the middle, stores nothing on either shard of the Distributed table."""
    store = Store(_engine(clickhouse_cluster), f"http{next(_names)}", CLUSTER)
    try:
        store.create()
        day = datetime.date(2026, 11, 30)
        good = row_binary([[day, f"k{i}", "t"] for i in range(100)], ["Date", "String", "String"])
        with pytest.raises(StoreError, match=r"HTTP 500\): Code: 33, .*Cannot read all data"):
            store.engine.insert(store.contexts_table, tables.CONTEXT_COLUMNS, data=[good, good[:-1]], count=200)
        huge = b"\x00\x00\x80\x80\x80\x80\x04"  # a day, then a key of 1 GiB
        with pytest.raises(StoreError, match=r"HTTP 500\): Code: 33, .*\(at row 101\)"):
            store.engine.insert(store.contexts_table, tables.CONTEXT_COLUMNS, data=[good, huge, good], count=201)
        assert store.engine.execute(f"SELECT count() FROM {store.contexts_table}") == [(0,)]
    finally:
        store.close()


def test_a_wrong_http_port_fails_at_start_with_a_precise_message(clickhouse_cluster: LocalCluster) -> None:
    native, other_server = clickhouse_cluster.ports[0], clickhouse_cluster.http_ports[1]
    closed = _closed_port()
    with pytest.raises(StoreError, match=rf"http_port {closed}: ClickHouse's HTTP interface does not answer there \(.*refused"):
        ServerEngine(ServerAddress("127.0.0.1", native, http_port=closed))
    with pytest.raises(StoreError, match=rf"http_port {native}: .*HTTP 400\): Port {native} is for clickhouse-client"):
        ServerEngine(ServerAddress("127.0.0.1", native, http_port=native))
    with pytest.raises(StoreError, match=rf"http_port {other_server}: 127.0.0.1:{other_server} is another ClickHouse server than the native port 127.0.0.1:{native} .*shard2"):
        ServerEngine(ServerAddress("127.0.0.1", native, http_port=other_server))


def test_a_store_url_with_a_wrong_http_port_stops_the_open(clickhouse_cluster: LocalCluster, tmp_path: Path) -> None:
    url = f"clickhouse://127.0.0.1:{clickhouse_cluster.ports[0]}/urltest?cluster={CLUSTER}&http_port={clickhouse_cluster.http_ports[1]}"
    with pytest.raises(StoreError, match="is another ClickHouse server"):
        open_store(url, str(tmp_path))
    for bad in ("x", "0", "70000", ""):
        with pytest.raises(StoreURLError, match="invalid http_port"):
            parse_store_url(f"clickhouse://h:9000/db?http_port={bad}")
    assert parse_store_url("clickhouse://u:p@h:9001/db?http_port=8123&cluster=c") == (
        "h", 9001, "db", "u", "p", "c", 8123
    )  # fmt: skip


def test_the_local_cluster_url_sends_inserts_over_http(clickhouse_cluster: LocalCluster, tmp_path: Path) -> None:
    url = clickhouse_cluster.url("urlhttp")
    assert f"http_port={clickhouse_cluster.http_ports[0]}" in url and f"cluster={CLUSTER}" in url
    store = open_store(url, str(tmp_path))
    try:
        assert store.engine._http is not None  # type: ignore[attr-defined]
        rows, contexts = _rows_with_odd_bytes()
        assert store.insert(rows, contexts) == len(rows)
        assert store.count() == len(rows)
    finally:
        store.close()


def test_the_http_side_authenticates_as_the_url_user(clickhouse_cluster: LocalCluster) -> None:
    port = clickhouse_cluster.http_ports[0]
    with pytest.raises(StoreError, match=r"HTTP 401\): Code: 192, .*Unknown user nobody"):
        HttpInsert("127.0.0.1", port, user="nobody").identity()
    with pytest.raises(StoreError, match=r"HTTP 401\): Code: 193, .*Wrong password for user default"):
        HttpInsert("127.0.0.1", port, password="not-it").identity()


def test_without_http_port_the_native_fallback_says_so_once_in_the_log(
    clickhouse_cluster: LocalCluster, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(_engine(clickhouse_cluster, http=False), f"http{next(_names)}", CLUSTER)
    try:
        store.create()
        data = row_binary([[datetime.date(2026, 11, 30), "k", "t"]], ["Date", "String", "String"])
        with caplog.at_level(logging.INFO, logger="opencws.backend.store.server_engine"):
            for _ in range(3):
                assert store.engine.insert(store.contexts_table, tables.CONTEXT_COLUMNS, data=data, count=1) == 1
        told = [r.getMessage() for r in caplog.records if "no http_port" in r.getMessage()]
        assert len(told) == 1 and "native protocol" in told[0]
    finally:
        store.close()



def test_the_node_killed_during_an_insert_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """Two 18.16 shards of its own: the node the inserts go to (HTTP and native) is killed (SIGKILL) while
    the journal inserts a big batch. Whatever the kill cut (nothing stored, the other shard's rows only, all of
    it), once the node is back every acknowledged event is stored exactly once."""
    if missing() is not None:
        pytest.skip(f"ClickHouse servers cannot run: {missing()}")
    cluster = LocalCluster(shards=2).start()
    store = None
    try:
        store = Store(_engine(cluster), "killed", CLUSTER)
        store.create()
        store.open_journal(Journal(str(tmp_path / "journal"), _LATER))
        ids: list[str] = []
        for k in range(10):
            rows = [row_of_dict(e, Envelope(host=f"node-{i % 6}"), i) for i, e in enumerate(event_mix(300, seed=k))]
            assert store.insert(rows) == 300  # acknowledged: journaled
            ids += [str(r[2]) for r in rows]
        outcome: list[str] = []

        def flush() -> None:
            try:
                store.flush()
                outcome.append("stored")
            except StoreError as e:
                outcome.append(str(e))

        flusher = threading.Thread(target=flush)
        flusher.start()
        time.sleep(0.05)
        cluster.kill(0)
        flusher.join(120)
        assert outcome and not flusher.is_alive()
        if outcome[0] != "stored":
            assert store.journal_stats()["pending_rows"] == len(ids)  # kept, to be tried again
        cluster.restart(0)
        store.flush()
        got = Counter(str(i) for (i,) in store.engine.execute(f"SELECT id FROM {store.read_table}"))
        assert got == Counter(ids)
    finally:
        if store is not None:
            store.close()
        cluster.stop()
