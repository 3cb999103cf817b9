"""The intake's hot path (`accept_body`: raw documents, Structs, the text as received) and its slow twin
(`accept(bodies.documents(...))`: orjson, the exact validator) give the same answer and the same rows."""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson
import pytest
from backend_corpus import event_mix

from opencws.backend import bodies
from opencws.backend.intake import Outcome, _accept_plain, accept, accept_body
from opencws.backend.store import tables
from opencws.model import jsontext

EVENTS = event_mix(200, seed=3)
EVENT = tables.COLUMN_NAMES.index("event")
ID = tables.COLUMN_NAMES.index("id")
NOW = 1_800_000_000_000_000_000


def comparable(out: Outcome) -> tuple[list[Any], list[dict[str, Any]]]:
    """Rows without their random id, the event column as the value its JSON stands for."""
    rows = [
        [jsontext.loads(bytes(v)) if i == EVENT else v for i, v in enumerate(row) if i != ID]
        for row in out.rows
    ]
    return rows, out.rejected


def both(body: bytes, content_type: str = "application/json") -> Outcome:
    fast = accept_body(body, content_type, 5000, 32, NOW)
    slow = accept(bodies.documents(body, content_type, 5000), 32, NOW)
    assert comparable(fast) == comparable(slow)
    return fast


def enveloped(e: dict[str, Any], i: int) -> dict[str, Any]:
    return {"rule_id": f"r{i}", "rule_version": i, "tags": ["a:b"], "policy": "p", "host": "h", "event": e}


@pytest.mark.parametrize("shape", ["array", "lines", "one", "envelopes"])
def test_plain_bodies_take_the_hot_path_and_store_the_text_as_received(shape: str) -> None:
    docs = [enveloped(e, i) for i, e in enumerate(EVENTS)] if shape == "envelopes" else EVENTS
    if shape == "lines":
        body, content_type = b"\n".join(map(orjson.dumps, docs)), "application/x-ndjson"
    elif shape == "one":
        body, content_type = orjson.dumps(docs[0]), "application/json"
    else:
        body, content_type = orjson.dumps(docs), "application/json"
    raws = bodies.raw_documents(body, content_type, 5000)
    assert raws is not None and _accept_plain(raws, 32, NOW) is not None
    out = both(body, content_type)
    assert len(out.rows) == len(raws) and not out.rejected
    stored = out.rows[0][EVENT]
    assert bytes(stored) == orjson.dumps(docs[0]["event"] if shape == "envelopes" else docs[0])


def _mutated(doc: Any, rng: random.Random) -> Any:
    doc = copy.deepcopy(doc)
    node, key, parent = doc, None, None
    while isinstance(node, dict | list) and node and rng.random() < 0.75:
        parent, key = node, rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        node = node[key]
    value = rng.choice([None, 1.0, 2**63, -1, "x" * 1100, "s", True, [], {}, [1], "2026-02-30T00:00:00Z",
                        "2024-02-29T00:00:00Z", "2026-11-21T17:55:02.5z", 2**70])  # fmt: skip
    if parent is None:
        return value
    if isinstance(parent, dict) and rng.random() < 0.3:
        parent[f"extra{rng.randrange(2)}"] = value
    else:
        parent[key] = value
    return doc


def test_mutated_bodies_get_the_same_answer_on_both_paths() -> None:
    rng = random.Random(5)
    docs = EVENTS[:20] + [enveloped(e, i) for i, e in enumerate(EVENTS[20:40])]
    rejected = stored = 0
    for _ in range(300):
        batch = [_mutated(d, rng) if rng.random() < 0.4 else d for d in rng.sample(docs, 5)]
        try:
            body = jsontext.dumps(batch)
        except (TypeError, orjson.JSONEncodeError):
            continue
        out = both(body)
        rejected += len(out.rejected)
        stored += len(out.rows)
    assert rejected > 100 and stored > 500


@pytest.mark.parametrize(
    "body",
    [b"[]", b"{}", b"[1, {}]", b"5", b"[{}]\n[{}]", b'{"evt": {"name": "open"}}\n{"evt": {}}', b"[" * 2000 + b"]" * 2000,
     b'[{"process": {"uid": 0, "gid": 0, "pid": 18446744073709551615}}]', b' \n[{"evt": {"name": "a"}}]\n '],
)  # fmt: skip
def test_odd_bodies_get_the_same_answer_on_both_paths(body: bytes) -> None:
    try:
        both(body)
    except bodies.BodyError as e:
        with pytest.raises(bodies.BodyError) as fast:
            accept_body(body, "application/json", 5000, 32, NOW)
        assert (fast.value.status, fast.value.message) == (e.status, e.message)


def test_non_utf8_names_are_stored_as_their_escapes() -> None:
    e = copy.deepcopy(EVENTS[0])
    e["process"]["executable"]["path"] = "/tmp/caf\udce9"
    e["process"]["comm"] = "\udcff\udcfe"
    body = jsontext.dumps([e, EVENTS[1]])
    assert b"\\udce9" in body
    out = both(body)
    assert not out.rejected and len(out.rows) == 2
    row = dict(zip(tables.COLUMN_NAMES, out.rows[0], strict=True))
    assert jsontext.loads(bytes(row["event"])) == e
    assert row["process_file_path"] == "/tmp/caf\udce9" and row["process_comm"] == "\udcff\udcfe"
