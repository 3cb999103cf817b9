"""Kernel strings that are not UTF-8 (any byte but `/` and NUL in a name) go through JSON losslessly: as the
`\\udcXX` escapes of their surrogateescape form, read back to the same bytes; never an error."""

from __future__ import annotations

import dataclasses
import os
import random

import pytest

from opencws.model import jsontext
from opencws.model.codec import event_from_json, serialize
from opencws.model.examples import open_event
from opencws.schema.validation import event_validator

_rng = random.Random(13)
NAMES = [
    bytes(_rng.choice([b for b in range(1, 256) if b != 0x2F]) for _ in range(40)),  # random bytes
    b"\xed\xa0\x80-lone-surrogate-encoded",  # UTF-8 of U+D800: not valid UTF-8
    b"\xff\xfe\x80\xc0\xaf",  # invalid starts, an overlong '/'
    b"line\nbreak\ttab\x01\x1b[31mred\x7f",  # control characters
    b"\xe9t\xe9" * 85,  # 255 bytes of Latin-1 (not UTF-8)
    "caf\u00e9-\u4e2d\u6587-\U0001f600".encode(),  # valid UTF-8 stays as it is
]


@pytest.mark.parametrize("raw", NAMES, ids=range(len(NAMES)))
def test_a_name_of_any_bytes_round_trips_through_the_event_json(raw):
    path = os.fsdecode(b"/tmp/" + raw)
    event = open_event(path)
    exe = dataclasses.replace(event.process.executable, path=path)  # (frozen: serialized apart, once)
    event.process = dataclasses.replace(event.process, comm=os.fsdecode(raw[:15]), args=[path, "x"], executable=exe)
    event.file = dataclasses.replace(event.file, attribute_name=os.fsdecode(b"user." + raw[:20]))
    text = serialize(event)
    text.decode("utf-8")  # (JSON text: UTF-8, the bytes that are not written as escapes)
    again = event_from_json(text)
    assert os.fsencode(again.file.path) == b"/tmp/" + raw
    assert os.fsencode(again.process.comm) == raw[:15]
    assert os.fsencode(again.process.args[0]) == b"/tmp/" + raw
    assert os.fsencode(again.process.executable.path) == b"/tmp/" + raw
    assert os.fsencode(again.file.attribute_name) == b"user." + raw[:20]
    assert serialize(again) == text
    assert event_validator().is_valid(jsontext.loads(text))


def test_bytes_that_are_not_utf8_are_written_as_udcxx_escapes():
    name = os.fsdecode(b"/tmp/\xff\xfe")
    assert jsontext.dumps({"a": name, "b": [name], name: 1}) == (
        b'{"a":"/tmp/\\udcff\\udcfe","b":["/tmp/\\udcff\\udcfe"],"/tmp/\\udcff\\udcfe":1}')
    assert jsontext.loads(b'{"a":"/tmp/\\udcff\\udcfe"}')["a"] == name

