"""The strict Structs accept only events the exact validator accepts (a subset), and every plain event."""

from __future__ import annotations

import random

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_validator import DATE, SCHEMA, _mutations, _sample

from opencws.model.codec import to_dict
from opencws.model.examples import exec_event, open_event
from opencws.schema.structs import (
    _DATE_TIME,
    ancestors_dates_checker,
    ancestors_decoder,
    cut_dates_checker,
    cut_event_decoder,
    dates_checker,
    dates_valid_py,
    event_decoder,
    lenient,
    lenient_event,
)
from opencws.schema.validation import event_validator


def strict_accepts(doc: object) -> bool:
    text = orjson.dumps(doc)
    try:
        event = event_decoder().decode(text)
    except (msgspec.ValidationError, msgspec.DecodeError):
        assert not cut_accepts(text)
        return False
    verdict = dates_checker()(event)
    assert verdict == dates_valid_py(event)  # the generated checker and its twin
    assert verdict == cut_accepts(text)  # the cut family and the ancestors' decoder, together
    return verdict


def cut_accepts(text: bytes) -> bool:
    """The intake's way: the event with its ancestors as text, then that text on its own."""
    try:
        event = cut_event_decoder().decode(text)
        if not cut_dates_checker()(event):
            return False
        ancestors = event.process.ancestors if event.process else msgspec.UNSET
        if ancestors is msgspec.UNSET:
            return True
        return all(ancestors_dates_checker()(a) for a in ancestors_decoder().decode(ancestors))
    except (msgspec.ValidationError, msgspec.DecodeError):
        return False


SEEDS = [
    to_dict(exec_event(5)),
    to_dict(open_event()),
    {"file": _sample(SCHEMA["properties"]["file"]), "date": DATE},
]


def test_the_generated_date_checker_shows_its_source():
    source = dates_checker().source
    assert source.startswith("def check_Event(o):") and "v = o.exec_time" in source


def test_plain_events_are_accepted():
    for doc in SEEDS:
        assert event_validator().is_valid(doc)
        assert strict_accepts(doc)


def test_what_the_structs_accept_the_validator_accepts_on_thousands_of_mutated_events():
    rng = random.Random(99)
    validator = event_validator()
    accepted = refused = 0
    for _ in range(4000):
        doc = _mutations(rng.choice(SEEDS), rng)
        if strict_accepts(doc):
            accepted += 1
            assert validator.is_valid(doc), doc
        else:
            refused += 1
    assert accepted > 500 and refused > 1000  # both sides exercised


@pytest.mark.parametrize(
    "text",
    ["2026-11-21 17:55:02Z", "2026-11-21T17:55:02+0100", "2026-11-21T17:55:02Z\n", "\uff12\uff10\uff12\uff16-11-21T17:55:02Z",
     "2025-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-21T24:00:00Z", "2026-11-21T17:55:02.Z"],
)  # fmt: skip
def test_date_times_the_schema_refuses_are_refused(text: str):
    assert not event_validator().is_valid({"date": text})
    assert not strict_accepts({"date": text})
    assert not strict_accepts({"process": {"uid": 0, "gid": 0, "exec_time": text}})


@pytest.mark.parametrize("year", ["2024", "2028", "2000", "2400"])
def test_february_29_of_a_leap_year_is_taken(year: str):
    """(It was refused, sending every event of a process started on one, and of its descendants, to the
    slow twin.)"""
    text = f"{year}-02-29T12:00:00Z"
    assert event_validator().is_valid({"date": text})
    assert strict_accepts({"date": text})
    assert strict_accepts({"process": {"uid": 0, "gid": 0, "exec_time": text}})


@pytest.mark.parametrize("year", ["2023", "2100", "1900", "2026"])
def test_february_29_of_other_years_is_refused(year: str):
    text = f"{year}-02-29T12:00:00Z"
    assert not event_validator().is_valid({"date": text})
    assert not strict_accepts({"date": text})


@settings(max_examples=400, deadline=None)
@given(
    st.from_regex(
        r"\A[0-9]{4}-[0-1][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{0,11})?([Zz]|[+-][0-2][0-9]:?[0-6][0-9])?\n?\Z"
    )
)
def test_a_date_time_the_pattern_takes_is_rfc3339(text: str):
    if _DATE_TIME.match(text):
        assert event_validator().is_valid({"date": text}), text


def test_a_validated_dict_converts_to_the_lenient_struct_whatever_its_numbers():
    doc = {"file": {"uid": 0, "gid": 0, "inode": 12.0}, "process": {"uid": 1.0, "gid": 0}}
    assert event_validator().is_valid(doc) and not strict_accepts(doc)
    event = lenient(doc)
    assert isinstance(event, lenient_event()) and event.file.inode == 12.0 and not event.evt
