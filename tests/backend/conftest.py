"""Backend fixtures: one embedded engine per test session (chdb opens one store path per process), a fresh
database of it per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
from backend_process import Backend

from opencws.backend.store import Store
from opencws.backend.store.chdb_engine import ChdbEngine
from opencws.backend.store.server_engine import ServerAddress, ServerEngine
from opencws.bench.clickhouse_cluster import CLUSTER, LocalCluster, missing

_names = itertools.count()


@pytest.fixture(scope="session")
def chdb_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbEngine]:
    engine = ChdbEngine(str(tmp_path_factory.mktemp("chdb")))
    yield engine
    engine.close()


@pytest.fixture
def chdb_store(chdb_engine: ChdbEngine) -> Store:
    store = Store(chdb_engine, database=f"test{next(_names)}")
    store.create()
    return store


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
def cluster_store(clickhouse_cluster: LocalCluster) -> Iterator[Store]:
    engine = ServerEngine(
        ServerAddress("127.0.0.1", clickhouse_cluster.ports[0]), {"insert_distributed_sync": 1}
    )
    store = Store(engine, database=f"test{next(_names)}", cluster=CLUSTER)
    store.create()
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
