"""Backend fixtures: one embedded engine per test session (chdb opens one store path per process), a fresh
database of it per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

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
