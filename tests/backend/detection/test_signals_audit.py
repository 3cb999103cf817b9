"""Status changes reach the application's audit log when it has one (in-process, over the session's store)."""

from __future__ import annotations

import orjson
from detection_helpers import exec_event
from fastapi.testclient import TestClient

from opencws.backend.main import create_app
from opencws.backend.settings import Settings
from opencws.backend.store import Store


def test_a_status_change_is_audited_with_the_actor(tmp_path, chdb_store: Store) -> None:
    app = create_app(Settings(data_dir=str(tmp_path), rate_limit=0), store=chdb_store)
    calls = []
    with TestClient(app) as client:
        ingest = app.state.keys.create("agent", ("ingest",))[1]
        admin = app.state.keys.create("bob", ("admin", "read"))[1]
        doc = {"host": "h1", "rule_id": "credential_shadow_read", "event": exec_event()}
        r = client.post(
            "/api/v1/events", content=orjson.dumps(doc), headers={"Authorization": f"Bearer {ingest}"}
        )
        assert r.json()["stored"] == 1
        auth = {"Authorization": f"Bearer {admin}"}
        (s,) = client.get("/api/v1/signals", headers=auth).json()["signals"]
        assert s["rule_id"] == "agent_credential_access" and s["webhook"] is None
        # Without an audit log: nothing to call, the change is made.
        assert (
            client.post(
                f"/api/v1/signals/{s['id']}/status", json={"status": "archived"}, headers=auth
            ).status_code
            == 200
        )
        app.state.audit = lambda *a: calls.append(a)
        r = client.post(
            f"/api/v1/signals/{s['id']}/status", json={"status": "open", "comment": "why"}, headers=auth
        )
        assert r.status_code == 200
        assert client.get("/api/v1/webhooks", headers=auth).json() == {"webhooks": []}
    assert [c[1:] for c in calls] == [("bob", "signal.status", s["id"], {"status": "open", "comment": "why"})]
    assert calls[0][0] is app
