"""A 2xx answer means stored: a backend killed with SIGKILL in the middle of the intake loses none of
the events it acknowledged, and stores none twice (whether the journal had inserted them into the store or
not yet)."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import orjson
import pytest
from backend_corpus import event_mix
from backend_process import Backend

JOURNAL = {
    # The journal inserts into the store every second (the default): killed between inserts.
    "flushing": [],
    # Nothing inserted into the store before the kill: every acknowledged event is only in the journal.
    "journal-only": ["--journal-flush-interval", "3600", "--journal-flush-rows", "100000000"],
}


@pytest.mark.parametrize("journal", list(JOURNAL))
def test_kill_9_during_intake_loses_no_acknowledged_event(tmp_path, journal: str) -> None:
    b = Backend(tmp_path, ["--retention-days", "0", *JOURNAL[journal]]).start()
    key, reader = b.key("ingest"), b.key("read")
    acked: list[int] = []
    stop = threading.Event()
    errors: list[str] = []

    def send() -> None:
        batch = 0
        with httpx.Client(base_url=b.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            while not stop.is_set():
                events = event_mix(200, seed=batch)
                for i, e in enumerate(events):
                    e["process"]["pid"] = batch * 1000 + i
                try:
                    r = c.post("/api/v1/events", content=orjson.dumps(events))
                except httpx.TransportError:
                    return  # the server died: this batch was never acknowledged
                if r.status_code != 200:
                    errors.append(r.text)
                    return
                assert r.json()["stored"] == 200
                acked.extend(e["process"]["pid"] for e in events)
                batch += 1

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 60
    while len(acked) < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    b.stop(signal.SIGKILL)
    stop.set()
    sender.join()
    assert not errors and len(acked) >= 2000

    b.start()
    try:
        found: list[int] = []
        cursor = None
        with b.client(reader) as c:
            while True:
                body = c.get(
                    "/api/v1/events", params={"limit": 1000, **({"cursor": cursor} if cursor else {})}
                ).json()
                found.extend(h["event"]["process"]["pid"] for h in body["events"])
                cursor = body["next"]
                if cursor is None:
                    break
        assert set(acked) <= set(found)
        assert len(found) == len(set(found))  # none twice
    finally:
        b.stop()


def test_a_batch_journaled_just_before_a_crash_is_answered_on_retry_not_stored_twice(tmp_path) -> None:
    """The crash came after the request's rows were journaled, before its answer was recorded for its
    Idempotency-Key: the journal kept the answer with the rows (one write), so the agent's retry after the
    restart gets the answer, and the events are stored once."""
    import types
    import uuid

    from opencws.backend.idempotency import IdempotencyStore
    from opencws.backend.intake import accept_body
    from opencws.backend.store.journal import Journal
    from opencws.backend.store.store import _CONTEXT_TYPES, _EVENT_TYPES, row_binary

    b = Backend(tmp_path, ["--retention-days", "0"]).start()
    key, reader = b.key("ingest"), b.key("read")
    b.stop(signal.SIGKILL)
    mark = f"/mark/{uuid.uuid4().hex}"
    events = event_mix(50, seed=3)
    for i, e in enumerate(events):
        e["process"]["executable"]["path"] = f"{mark}/{i}"
    body = b"\n".join(orjson.dumps(e) for e in events)
    # What the crashed request had done: its record, with its receipt, in the journal; no answer recorded.
    out = accept_body(body, "application/x-ndjson", 1000, 32, store=types.SimpleNamespace(serial=-11))
    assert not out.rejected and len(out.rows) == 50
    answer = b'{"stored":50,"rejected":[]}'
    journal = Journal(str(tmp_path / "journal"))
    journal.append(row_binary(out.contexts, _CONTEXT_TYPES), len(out.contexts), row_binary(out.rows, _EVENT_TYPES),
                   50, IdempotencyStore.receipt(key.split("_")[1], "batch-7", answer))  # fmt: skip
    journal.close()

    b.start()
    try:
        with b.client(key) as c:
            r = c.post("/api/v1/events", content=body, headers={"Idempotency-Key": "batch-7",
                                                                "Content-Type": "application/x-ndjson"})  # fmt: skip
        assert r.status_code == 200 and r.headers.get("Idempotent-Replayed") == "true", r.text
        assert r.content == answer
        stored = b.events(reader, q=f'process.file.path =~ "{mark}/*"')
        assert sorted(e["event"]["process"]["executable"]["path"] for e in stored) == sorted(
            f"{mark}/{i}" for i in range(50)
        )
    finally:
        b.stop()
