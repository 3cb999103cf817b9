"""The typed columns hold what SECL's getters read, for every field mapped to a column."""

from __future__ import annotations

import random
import types

import orjson
import pytest
from backend_corpus import event_mix

from opencws.backend import bodies
from opencws.backend.intake import _accept_plain
from opencws.backend.store import tables
from opencws.backend.store.rows import Envelope, event_row, plain_date, row_of_dict
from opencws.model.codec import event_from_json, format_timestamp, parse_timestamp
from opencws.schema.structs import event_decoder
from opencws.secl.sql import SEARCH_REGISTRY
from opencws.secl.sql.columns import FIELD_COLUMNS

EVENTS = event_mix(300)


def hot_row(e: dict) -> tuple:
    """The intake's hot path: the row of the strict Struct decoded from the event's JSON."""
    raw = orjson.dumps(e)
    return event_row(event_decoder().decode(raw), Envelope(), 0, raw)


def cut_row(e: dict) -> tuple:
    """The row `accept_body` makes: the ancestors' part from the checked ancestors kept (each distinct text
    decoded once), the date read without `parse_timestamp`."""
    raws = bodies.raw_documents(orjson.dumps([e]), "application/json", 1)
    out = _accept_plain(raws, 32, 0, -1)
    assert out is not None
    return out.rows[0]


@pytest.mark.parametrize("field", sorted(FIELD_COLUMNS))
def test_column_holds_the_value_secl_reads(field: str) -> None:
    col = FIELD_COLUMNS[field]
    index = tables.COLUMN_NAMES.index(col.name)
    getter = SEARCH_REGISTRY.get(field).getter
    event_type = SEARCH_REGISTRY.get(field).event_type
    checked = 0
    for e in EVENTS:
        if event_type is not None and e["evt"]["name"] != event_type:
            continue
        value = getter(event_from_json(e))
        for row in (row_of_dict(e, Envelope(), 0), hot_row(e), cut_row(e)):
            assert row[index] == (list(value) if col.multi else value), (field, e)
        checked += 1
    assert checked or event_type not in ("open", "exec", "rename", "unlink"), f"no event exercised {field}"


def test_row_keeps_the_envelope_and_the_event_date() -> None:
    env = Envelope(
        rule_id="r1", rule_version="2", policy="default", host="web-1", agent_version="0.1", tags=["a:b"]
    )
    e = EVENTS[0]
    row = dict(zip(tables.COLUMN_NAMES, row_of_dict(e, env, 5), strict=True))
    assert row["date"] == parse_timestamp(e["date"])
    assert (row["rule_id"], row["host"], row["tags"], row["policy"]) == ("r1", "web-1", ["a:b"], "default")


def test_event_without_date_is_dated_when_received() -> None:
    e = dict(EVENTS[0])
    del e["date"]
    assert row_of_dict(e, Envelope(), 1_800_000_000_000_000_000)[1] == 1_800_000_000_000_000_000


def test_the_hot_paths_date_reading_agrees_with_parse_timestamp() -> None:
    rng = random.Random(4)
    for _ in range(3000):
        ns = rng.randrange(0, 4_000_000_000) * 1_000_000_000 + rng.randrange(1_000_000_000)
        text = format_timestamp(ns)
        digits = rng.randrange(0, 10)
        frac = text[20:29][:digits]
        text = text[:19] + ("." + frac if digits else "") + rng.choice(["Z", "+02:00", "-11:30", "Z"])
        event = types.SimpleNamespace(date=text)
        assert plain_date(event, 0) == parse_timestamp(text), text
    assert plain_date(types.SimpleNamespace(date=None), 7) == 7
