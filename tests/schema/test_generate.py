"""The JSON Schema is generated from the model and equals the reference contract."""

from __future__ import annotations

import json

import orjson

from opencws.cli.main import main
from opencws.model.event import Event, FileEvent
from opencws.model.meta import model, prop
from opencws.schema.docs import schema_docs
from opencws.schema.generate import build_schema, event_schema


def _without_schema_key(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "$schema"}


def test_the_generated_schema_equals_the_reference(spec_dir):
    reference = json.loads((spec_dir / "cws-event.schema.json").read_text())
    assert _without_schema_key(event_schema()) == _without_schema_key(reference)


def test_the_generated_legacy_schema_equals_the_legacy_reference(spec_dir):
    reference = json.loads((spec_dir / "cws-event-legacy.schema.json").read_text())
    assert _without_schema_key(event_schema(legacy=True)) == _without_schema_key(reference)


def test_definitions_are_alphabetical_and_properties_keep_declaration_order():
    schema = event_schema()
    assert list(schema["definitions"]) == sorted(schema["definitions"])
    file_props = list(schema["definitions"]["FileEvent"]["properties"])
    assert file_props[:3] == ["path", "name", "path_resolution_error"]
    assert file_props[-5:] == ["destination", "new_mount_id", "group_id", "device", "fstype"]


def test_schema_json_prints_the_generated_schema(capsys, spec_dir):
    assert main(["schema", "json"]) == 0
    printed = orjson.loads(capsys.readouterr().out)
    reference = json.loads((spec_dir / "cws-event.schema.json").read_text())
    assert _without_schema_key(printed) == _without_schema_key(reference)


@model(frozen=True)
class _FileEventWithHash(FileEvent):
    sha256: str | None = prop("SHA-256 of the file content")


@model
class _EventWithHash(Event):
    file: _FileEventWithHash | None = prop()


def test_a_field_added_to_the_model_shows_up_in_the_schema_and_the_docs():
    schema = build_schema(_EventWithHash)
    props = schema["definitions"]["_FileEventWithHash"]["properties"]
    assert list(props)[-1] == "sha256"
    assert props["sha256"] == {"type": "string", "description": "SHA-256 of the file content"}
    docs = schema_docs(schema)
    assert "| `sha256` | SHA-256 of the file content |" in docs
    assert '"sha256": {' in docs
