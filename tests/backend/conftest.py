"""Backend fixtures: one embedded engine per test session (chdb opens one store path per process), a fresh
database of it per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_process import Backend

from opencws.backend.store import Store
from opencws.backend.store.chdb_engine import ChdbEngine
from opencws.backend.store.journal import Journal
from opencws.backend.store.server_engine import ServerAddress, ServerEngine
from opencws.bench.clickhouse_cluster import CLUSTER, LocalCluster, missing

_names = itertools.count()


@pytest.fixture(scope="session")
def chdb_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbEngine]:
    engine = ChdbEngine(str(tmp_path_factory.mktemp("chdb")))
    yield engine
    engine.close()


@pytest.fixture
def chdb_store(chdb_engine: ChdbEngine, tmp_path: Path) -> Iterator[Store]:
    """Behind a journal, as the backend's (reads find what was inserted before them: read-your-writes)."""
    store = Store(chdb_engine, database=f"test{next(_names)}")
    store.create()
    store.open_journal(Journal(str(tmp_path / "journal")))
    yield store
    store._flusher.close()  # type: ignore[union-attr]  # the engine is the session's: left open
    store.journal.close()  # type: ignore[union-attr]


@pytest.fixture(scope="session")
def clickhouse_cluster() -> Iterator[LocalCluster]:
    """Two Debian ClickHouse 18.16 servers on loopback: the two shards of cluster `opencws`."""
    reason = missing()
    if reason is not None:
        if os.environ.get("OPENCWS_REQUIRE_KERNEL") == "1" or os.environ.get("CI"):
            pytest.fail(f"ClickHouse servers cannot run: {reason}")
        pytest.skip(f"ClickHouse servers cannot run: {reason}")
    cluster = LocalCluster(shards=2).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_store(clickhouse_cluster: LocalCluster, tmp_path: Path) -> Iterator[Store]:
    """Inserts over the first shard's HTTP interface (the journal's RowBinary as it is), the rest over the
    native protocol."""
    address = ServerAddress("127.0.0.1", clickhouse_cluster.ports[0], http_port=clickhouse_cluster.http_ports[0])
    engine = ServerEngine(address, {"insert_distributed_sync": 1})
    store = Store(engine, database=f"test{next(_names)}", cluster=CLUSTER)
    store.create()
    store.open_journal(Journal(str(tmp_path / "journal")))
    yield store
    store.close()


@pytest.fixture(params=["chdb", "clickhouse-cluster"])
def store(request: pytest.FixtureRequest) -> Store:
    """The same tests against the embedded store and against two 18.16 shards under a Distributed table."""
    return request.getfixturevalue("chdb_store" if request.param == "chdb" else "cluster_store")


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """One backend process (embedded store) for the session's API tests."""
    data = tmp_path_factory.mktemp("backend")
    config = data / "backend.yaml"
    config.write_text(
        "rate_limit: 0\nmax_body_bytes: 1048576\nmax_decompressed_bytes: 4194304\nmax_events_per_request: 5000\n"
    )
    b = Backend(data, ["--config", str(config)]).start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def ui_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """One backend process for the web UI's and the sign-in's tests: users alice (admin) and rita (read),
    and 3,000 events of the last hour sent over HTTP (`ui_harness.ingest`). OPENCWS_UI_EVENTS=N stores N
    more in the 23 hours before (written straight into the store): the views' load times at that size."""
    import time

    import ui_harness

    data = tmp_path_factory.mktemp("ui-backend")
    extra = int(os.environ.get("OPENCWS_UI_EVENTS", "0"))
    if extra > 0:
        hour = 3600 * 1_000_000_000
        ui_harness.prefill(data, extra, time.time_ns() - 24 * hour, time.time_ns() - hour)
    config = data / "backend.yaml"
    config.write_text("rate_limit: 0\nsignin_failures_per_address: 1000\n")
    b = Backend(data, ["--config", str(config)]).start()
    for name, role in (("alice", "admin"), ("rita", "read")):
        ui_harness.add_user(b, name, role)
    b.events = ui_harness.ingest(b, 3000)  # type: ignore[attr-defined]
    yield b
    b.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The web UI's screenshots and each view's load time (reported, never asserted)."""
    import sys

    ui_harness = sys.modules.get("ui_harness")
    if ui_harness is None or not (ui_harness.timings or ui_harness.screenshots):
        return
    tr = terminalreporter
    tr.section("web UI: view load times (route change to data on the page; not asserted)")
    for test, view, ms in ui_harness.timings:
        tr.write_line(f"{ms:8.0f} ms  {view:<8} {test}")
    tr.section(f"web UI: screenshots in {ui_harness.SCREENSHOTS}")
    for path in ui_harness.screenshots:
        tr.write_line(str(path))
