"""Status changes reach the application's audit log, with the caller as actor (in-process, over the session's store)."""

from __future__ import annotations

import orjson
from detection_helpers import exec_event
from fastapi.testclient import TestClient

from opencws.backend.main import create_app
from opencws.backend.settings import Settings
from opencws.backend.store import Store


def test_a_status_change_is_audited_with_the_actor(tmp_path, chdb_store: Store) -> None:
    app = create_app(Settings(data_dir=str(tmp_path), rate_limit=0), store=chdb_store)
    with TestClient(app) as client:
        ingest = app.state.keys.create("agent", ("ingest",))[1]
        bob, admin = app.state.keys.create("bob", ("admin", "read"))
        doc = {"host": "h1", "rule_id": "credential_shadow_read", "event": exec_event()}
        r = client.post(
            "/api/v1/events", content=orjson.dumps(doc), headers={"Authorization": f"Bearer {ingest}"}
        )
        assert r.json()["stored"] == 1
        auth = {"Authorization": f"Bearer {admin}"}
        (s,) = client.get("/api/v1/signals", headers=auth).json()["signals"]
        assert s["rule_id"] == "agent_credential_access" and s["webhook"] is None
        for change in ({"status": "archived"}, {"status": "open", "comment": "why"}):
            r = client.post(f"/api/v1/signals/{s['id']}/status", json=change, headers=auth)
            assert r.status_code == 200
        assert client.get("/api/v1/webhooks", headers=auth).json() == {"webhooks": []}
        entries = app.state.audit.entries(action="signal.")
    # app.state.audit(actor, action, target, detail), the actor a principal: a key is named by its id.
    assert [(e.actor, e.action, e.target, e.detail) for e in entries] == [
        (f"key:{bob.id} (bob)", "signal.status", s["id"], {"status": "open", "comment": "why"}),
        (f"key:{bob.id} (bob)", "signal.status", s["id"], {"status": "archived", "comment": None}),
    ]
