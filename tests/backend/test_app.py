"""Application-level behaviours tested in-process (FastAPI's TestClient over the session's embedded engine):
rate limits, settings, the listening rules, and the layering of the backend."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from opencws.backend.main import create_app
from opencws.backend.server import bind
from opencws.backend.settings import Settings, SettingsError
from opencws.backend.store import Store

SRC = Path(__file__).resolve().parents[2] / "src" / "opencws"


def test_a_key_over_its_rate_is_told_when_to_come_back(tmp_path, chdb_store: Store) -> None:
    app = create_app(Settings(data_dir=str(tmp_path), rate_limit=1, rate_burst=3), store=chdb_store)
    with TestClient(app) as client:
        key = app.state.keys.create("agent", ("ingest",))[1]
        other = app.state.keys.create("agent2", ("ingest",))[1]
        codes = [
            client.post(
                "/api/v1/events", content=b"[]", headers={"Authorization": f"Bearer {key}"}
            ).status_code
            for _ in range(5)
        ]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = client.post("/api/v1/events", content=b"[]", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        # Another key has its own budget.
        assert (
            client.post(
                "/api/v1/events", content=b"[]", headers={"Authorization": f"Bearer {other}"}
            ).status_code
            == 200
        )


def test_a_non_loopback_address_needs_tls_or_insecure(tmp_path) -> None:
    with pytest.raises(SettingsError, match="without TLS"):
        bind(Settings(data_dir=str(tmp_path), listen="0.0.0.0:0"))
    sock = bind(Settings(data_dir=str(tmp_path), listen="0.0.0.0:0", insecure=True))
    sock.close()
    with pytest.raises(SettingsError, match="invalid --listen"):
        bind(Settings(data_dir=str(tmp_path), listen="localhost"))


def test_settings_come_from_a_file_under_the_flags(tmp_path) -> None:
    f = tmp_path / "b.yaml"
    f.write_text("max-depth: 8\nrate_limit: 5\nlisten: 127.0.0.1:9\n")
    s = Settings.load(str(f), {"listen": "127.0.0.1:10", "store": None})
    assert (s.max_depth, s.rate_limit, s.listen) == (8, 5, "127.0.0.1:10")
    f.write_text("max_dept: 8\n")
    with pytest.raises(SettingsError, match="unknown setting"):
        Settings.load(str(f), {})
    f.write_text("max_depth: -1\n")
    with pytest.raises(SettingsError, match="max_depth must be a positive integer"):
        Settings.load(str(f), {})


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("backend", ("opencws.probe", "opencws.agent")),
        ("secl/sql", ("opencws.backend", "chdb", "clickhouse_driver")),
    ],
)
def test_dependencies_point_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    files = list((SRC / package).rglob("*.py"))
    assert files
    for f in files:
        bad = [m for m in _imports(f) if m.startswith(forbidden)]
        assert not bad, f"{f.relative_to(SRC)} imports {bad}"


def test_the_server_drops_days_past_retention_by_itself(tmp_path, chdb_store: Store) -> None:
    import time

    from backend_corpus import event_mix

    from opencws.backend.store.rows import Envelope, row_of_dict
    from opencws.model.codec import parse_timestamp

    old = event_mix(3, base_ns=parse_timestamp("2020-01-01T00:00:00Z"))
    new = event_mix(2, seed=4, base_ns=time.time_ns())
    chdb_store.insert([row_of_dict(e, Envelope(), 0) for e in old + new])
    app = create_app(
        Settings(data_dir=str(tmp_path), retention_days=30, retention_interval=0.2), store=chdb_store
    )
    with TestClient(app):
        deadline = time.monotonic() + 20
        while chdb_store.count() != 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert chdb_store.count() == 2
