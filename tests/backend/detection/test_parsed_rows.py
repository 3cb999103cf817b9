"""Detection reads each stored row's event whole: with its `process.ancestors` (and the parent right before
them) cut out into a context, they are parsed once per context and put back where they were."""

from __future__ import annotations

import types

import orjson
from backend_corpus import event_mix

from opencws.backend.detection import engine
from opencws.backend.intake import accept_body
from opencws.backend.store.rowbinary import Cut

EVENT = engine.I_EVENT
STORE = types.SimpleNamespace(serial=-7)  # rows made for a store: their ancestors are cut out


def _rows(events: list[dict]) -> list:
    body = b"\n".join(orjson.dumps(e) for e in events)
    out = accept_body(body, "application/x-ndjson", 10_000, 32, store=STORE)
    assert not out.rejected
    return out.rows


def test_an_event_read_with_its_shared_ancestors_equals_the_event_parsed_whole() -> None:
    events = event_mix(300, seed=11)
    rows = _rows(events)
    cut = [r for r in rows if type(r[EVENT]) is Cut]
    assert len(cut) > 100  # the mix's lineages repeat: most rows name a context
    for row in rows:
        assert engine._parsed_row(row) == orjson.loads(bytes(row[EVENT].text if type(row[EVENT]) is Cut else row[EVENT]))
    first, second = [r for r in cut if r[engine.I_CONTEXT] == cut[0][engine.I_CONTEXT]][:2]
    a, b = engine._parsed_row(first), engine._parsed_row(second)
    assert a["process"]["ancestors"] is b["process"]["ancestors"]  # parsed once for the context


def test_a_parent_cut_with_the_ancestors_is_put_back_in_its_place() -> None:
    event = next(e for e in event_mix(300, seed=11) if {"parent", "ancestors"} <= e.get("process", {}).keys())
    sibling = dict(event, process=dict(event["process"], pid=event["process"]["pid"] + 1, tty="pts/9"))
    rows = _rows([event, sibling])
    assert bytes(rows[0][EVENT].text)[rows[0][EVENT].at : rows[0][EVENT].at + 1] == b"{"  # the parent's text
    a, b = (engine._parsed_row(r) for r in rows)
    assert (a, b) == (event, sibling)
    assert list(a["process"]) == list(event["process"])  # in its place among the process's keys
    assert a["process"]["parent"] is b["process"]["parent"]


def test_a_parent_not_cut_with_the_ancestors_stays_where_it_is() -> None:
    event = next(e for e in event_mix(300, seed=11) if {"parent", "ancestors"} <= e.get("process", {}).keys())
    process = dict(event["process"])
    process["parent"] = process.pop("parent")
    event = dict(event, process=process)
    (row,) = _rows([event])
    assert engine._parsed_row(row) == event and list(engine._parsed_row(row)["process"]) == list(process)


def test_a_copy_of_the_ancestors_text_earlier_in_the_event_is_not_mistaken_for_them() -> None:
    event = next(e for e in event_mix(300, seed=11) if len(orjson.dumps(e["process"].get("ancestors", []))) > 200)
    event["process"]["credentials"]["destination"] = event["process"]["ancestors"]  # free-form: the same text
    (row,) = _rows([event])
    assert engine._parsed_row(row) == event
