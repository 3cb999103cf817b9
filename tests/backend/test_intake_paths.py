"""The intake's hot path (`accept_body`: raw documents, Structs, the text as received) and its slow twin
(`accept(bodies.documents(...))`: orjson, the exact validator) give the same answer and the same rows."""

from __future__ import annotations

import copy
import random
import types
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from backend_corpus import event_mix

from opencws.backend import bodies
from opencws.backend.intake import Outcome, _accept_plain, accept, accept_body
from opencws.backend.lineages import Lineages
from opencws.backend.store import tables
from opencws.backend.store.rowbinary import Cut
from opencws.model import jsontext

EVENTS = event_mix(200, seed=3)
EVENT = tables.COLUMN_NAMES.index("event")
ID = tables.COLUMN_NAMES.index("id")
CONTEXT = tables.COLUMN_NAMES.index("context")
CONTEXT_AT = tables.COLUMN_NAMES.index("context_at")
NOW = 1_800_000_000_000_000_000
STORE = types.SimpleNamespace(serial=-1)  # what the rows are for (nothing is stored here)


def whole(v: Any) -> bytes:
    """The event's JSON a row carries (what detection reads), cut or not."""
    return bytes(v.text) if isinstance(v, Cut) else bytes(v)


def checked_cuts(out: Outcome) -> None:
    """Each cut row: its ancestors' text (with its parent's when that comes right before them) is where
    `context_at` says, stored with this batch or before, and the column keeps the rest: the two put together
    again are the event's text."""
    new = {key: (day, text) for day, key, text in out.contexts}
    for row in out.rows:
        v = row[EVENT]
        if not row[CONTEXT]:
            assert not isinstance(v, Cut) and row[CONTEXT_AT] == 0
            continue
        text = whole(v)
        piece = text[v.at : v.at + v.size]
        process = jsontext.loads(text)["process"]
        ancestors = jsontext.dumps(process["ancestors"])
        both = jsontext.dumps(process["parent"]) + b',"ancestors":' + ancestors if "parent" in process else None
        assert row[CONTEXT_AT] == v.at and piece == (both if both and both in text else ancestors)
        assert v.stored()[: v.at] + piece + v.stored()[v.at :] == text
        if row[CONTEXT] in new:
            assert new[row[CONTEXT]] == (row[tables.COLUMN_NAMES.index("day")], piece)


def comparable(out: Outcome) -> tuple[list[Any], list[dict[str, Any]]]:
    """Rows without their random id and where their ancestors went, the event column as the value its JSON
    stands for."""
    checked_cuts(out)
    rows = [
        [jsontext.loads(whole(v)) if i == EVENT else v for i, v in enumerate(row) if i not in (ID, CONTEXT, CONTEXT_AT)]
        for row in out.rows
    ]
    return rows, out.rejected


def both(body: bytes, content_type: str = "application/json") -> Outcome:
    fast = accept_body(body, content_type, 5000, 32, NOW, store=STORE)
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
    assert raws is not None and _accept_plain(raws, 32, NOW, -1) is not None
    out = both(body, content_type)
    assert len(out.rows) == len(raws) and not out.rejected
    stored = out.rows[0][EVENT]
    assert whole(stored) == orjson.dumps(docs[0]["event"] if shape == "envelopes" else docs[0])
    assert isinstance(stored, Cut) and out.contexts  # the ancestors go apart


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


def counted_on_both_paths(batches: Iterator[list[Any]]) -> tuple[int, int]:
    """Each batch (that JSON can hold) through both paths: the events rejected and stored in all."""
    rejected = stored = 0
    for batch in batches:
        try:
            body = jsontext.dumps(batch)
        except (TypeError, orjson.JSONEncodeError):
            continue
        out = both(body)
        rejected += len(out.rejected)
        stored += len(out.rows)
    return rejected, stored


def test_mutated_bodies_get_the_same_answer_on_both_paths() -> None:
    rng = random.Random(5)
    docs = EVENTS[:20] + [enveloped(e, i) for i, e in enumerate(EVENTS[20:40])]
    batches = ([_mutated(d, rng) if rng.random() < 0.4 else d for d in rng.sample(docs, 5)] for _ in range(300))
    rejected, stored = counted_on_both_paths(batches)
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
    assert jsontext.loads(whole(row["event"])) == e
    assert row["process_file_path"] == "/tmp/caf\udce9" and row["process_comm"] == "\udcff\udcfe"


def test_mutated_ancestors_get_the_same_answer_on_both_paths_after_the_plain_ones_were_seen() -> None:
    """The checked ancestors texts are kept: a text differing by one value is checked afresh."""
    rng = random.Random(8)
    plain = [e for e in EVENTS if e.get("process", {}).get("ancestors")][:30]
    both(orjson.dumps(plain))

    def changed(e: dict[str, Any]) -> dict[str, Any]:
        e = copy.deepcopy(e)
        ancestors = e["process"]["ancestors"]
        i = rng.randrange(len(ancestors))
        if rng.random() < 0.3:
            ancestors[i] = _mutated(ancestors[i], rng) if rng.random() < 0.9 else None
        return e

    rejected, stored = counted_on_both_paths([changed(e) for e in rng.sample(plain, 4)] for _ in range(300))
    assert rejected > 100 and stored > 300


def test_ancestors_checked_against_a_looser_depth_limit_are_checked_again() -> None:
    e = copy.deepcopy(next(e for e in EVENTS if e.get("process", {}).get("ancestors")))
    e["process"]["ancestors"][-1].setdefault("credentials", {})["destination"] = {"a": {"b": {"c": {"d": [1]}}}}
    body = orjson.dumps([e])
    assert not accept_body(body, "application/json", 5000, 32, NOW, STORE).rejected
    fast = accept_body(body, "application/json", 5000, 3, NOW, STORE)
    slow = accept(bodies.documents(body, "application/json", 5000), 3, NOW)
    assert fast.rejected == slow.rejected and "nested deeper than 3 levels" in str(fast.rejected)


def test_an_ancestors_text_is_stored_once_a_day_and_named_by_later_batches_once_stored() -> None:
    lineages = Lineages()
    e = next(e for e in EVENTS if e.get("process", {}).get("ancestors"))
    later = dict(e, date="2027-01-02T03:04:05Z")
    raws = bodies.raw_documents(orjson.dumps([e, e, later]), "application/json", 10)
    first = _accept_plain(raws, 32, NOW, -1, lineages)
    assert first is not None and len(first.contexts) == 2  # one per day
    assert first.rows[0][CONTEXT] == first.rows[1][CONTEXT] != first.rows[2][CONTEXT]
    again = _accept_plain(raws, 32, NOW, -1, lineages)
    assert again is not None and len(again.contexts) == 2  # not named before the first batch is stored
    first.stored()
    last = _accept_plain(raws, 32, NOW, -1, lineages)
    assert last is not None and not last.contexts
    assert [r[CONTEXT] for r in last.rows] == [r[CONTEXT] for r in first.rows]
    other = _accept_plain(raws, 32, NOW, -2, lineages)  # another store has no copy yet
    assert other is not None and len(other.contexts) == 2
    whole_rows = _accept_plain(raws, 32, NOW, 0, lineages)  # no store: nothing cut
    assert whole_rows is not None and not whole_rows.contexts and not any(r[CONTEXT] for r in whole_rows.rows)


def test_the_checked_ancestors_kept_are_bounded_by_their_bytes() -> None:
    texts = {jsontext.dumps(e["process"]["ancestors"]) for e in EVENTS if e.get("process", {}).get("ancestors")}
    limit = sum(map(len, texts)) // 2
    lineages = Lineages(max_bytes=limit)
    for t in texts:
        assert lineages.find(t, 32) is not None
    assert 0 < len(lineages) < len(texts) and lineages._bytes <= limit


def test_envelopes_whose_event_is_not_last_or_named_twice_are_read_right() -> None:
    e = next(e for e in EVENTS if e.get("process", {}).get("ancestors"))
    ev = orjson.dumps(e)
    lines = [
        b'{"event":' + ev + b',"rule_id":"r","tags":["event"]}',
        b'{"rule_id":"r","event" : ' + ev + b'  }',
        b'{"rule_id":"r","event":{"evt":{"name":"open"}},"event":' + ev + b"}",
        b'{"host":"h","event":' + ev + b' }\r',
    ]
    out = both(b"\n".join(lines), "application/x-ndjson")
    assert not out.rejected and [whole(r[EVENT]) for r in out.rows] == [ev] * 4


def _with_destination(e: dict[str, Any], where: str, value: Any) -> dict[str, Any]:
    """`e` with a free-form `credentials.destination` in its process (where="process") or first ancestor."""
    e = copy.deepcopy(e)
    entry = e["process"] if where == "process" else e["process"]["ancestors"][0]
    entry.setdefault("credentials", {})["destination"] = value
    return e


@pytest.mark.parametrize("where", ["process", "ancestor"])
def test_an_envelope_key_written_with_an_escape_is_read_as_the_event_it_names(where: str) -> None:
    """`"\\u0065vent"` is `event`: the text stored is that key's value, even with a literal `"event"` key
    inside the event (a free-form value), never a piece of the event from that key on."""
    e = _with_destination(next(e for e in EVENTS if e.get("process", {}).get("ancestors")), where, {"event": {"a": 1}})
    ev = orjson.dumps(e)
    lines = [b'{"host":"h","\\u0065vent":' + ev + b"}", b'{"host":"h","event":' + ev + b"}"]
    out = both(b"\n".join(lines), "application/x-ndjson")
    assert not out.rejected and [whole(r[EVENT]) for r in out.rows] == [ev, ev]


def test_ancestors_written_unlike_the_next_lines_are_never_cut_out_of_another_line() -> None:
    """An `"ancestors"` key with a space before its colon or written with an escape, then a plain line with the
    same ancestors: each event's cut is inside its own text (or there is none), and each comes back whole."""
    e = next(e for e in EVENTS if e.get("process", {}).get("ancestors"))
    plain = orjson.dumps(e)
    piece = b'"ancestors":' + orjson.dumps(e["process"]["ancestors"])
    assert piece in plain
    spaced = plain.replace(b'"ancestors":', b'"ancestors" :')
    escaped = plain.replace(b'"ancestors":', b'"\\u0061ncestors":')
    for odd in (spaced, escaped):
        out = both(b"\n".join([odd, plain]), "application/x-ndjson")  # (checked_cuts: every cut within its event)
        assert not out.rejected and [whole(r[EVENT]) for r in out.rows] == [odd, plain]
        for r in out.rows:
            v = r[EVENT]
            if isinstance(v, Cut):
                assert v.at >= 0 and v.at + v.size <= len(whole(v))


def _with_parent() -> dict[str, Any]:
    return copy.deepcopy(next(e for e in EVENTS if {"parent", "ancestors"} <= e.get("process", {}).keys()))


def test_a_parent_right_before_its_ancestors_is_stored_with_them_once() -> None:
    e = _with_parent()
    sibling = copy.deepcopy(e)  # another process of the same parent: same parent and ancestors texts
    sibling["process"]["pid"] += 1
    out = both(orjson.dumps([e, sibling]))
    ((_, key, text),) = out.contexts
    parent, ancestors = (jsontext.dumps(e["process"][k]) for k in ("parent", "ancestors"))
    assert text == parent + b',"ancestors":' + ancestors
    assert [r[CONTEXT] for r in out.rows] == [key, key]
    for row, event in zip(out.rows, (e, sibling), strict=True):
        stored = row[EVENT].stored()
        assert parent not in stored and ancestors not in stored and jsontext.loads(whole(row[EVENT])) == event


def test_a_parent_away_from_its_ancestors_stays_in_the_event() -> None:
    e = _with_parent()
    e["process"]["parent"] = e["process"].pop("parent")  # after the ancestors
    out = both(orjson.dumps([e]))
    ((_, _, text),) = out.contexts
    assert text == jsontext.dumps(e["process"]["ancestors"])
    assert jsontext.dumps(e["process"]["parent"]) in out.rows[0][EVENT].stored()


def test_each_parent_of_one_ancestors_text_gets_its_own_context() -> None:
    """One ancestors text, two parents (the first ancestor is mostly the parent, not always): two contexts, and
    each event names the one holding its own parent."""
    lineages = Lineages()
    e = _with_parent()
    other = copy.deepcopy(e)
    other["process"]["parent"]["pid"] += 1
    raws = bodies.raw_documents(orjson.dumps([e, other, e]), "application/json", 10)
    out = _accept_plain(raws, 32, NOW, -1, lineages)
    assert out is not None and len(out.contexts) == 2
    keys = [r[CONTEXT] for r in out.rows]
    assert keys[0] == keys[2] != keys[1]
    out.stored()
    again = _accept_plain(raws, 32, NOW, -1, lineages)
    assert again is not None and not again.contexts and [r[CONTEXT] for r in again.rows] == keys
