"""Backend fixtures: one embedded engine per test session (chdb opens one store path per process), a fresh
database of it per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from backend_process import Backend

from opencws.backend.store import Store
from opencws.backend.store.chdb_engine import ChdbEngine

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
