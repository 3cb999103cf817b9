"""The validator accepts exactly what the schema allows and names every offending value.

`jsonschema` (the Python reference implementation of JSON Schema) is the oracle: the validator (built on
jsonschema-rs) must agree with it on every document, valid or mutated, and on where the problems are.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from jsonschema import Draft7Validator

from opencws.schema.generate import event_schema
from opencws.schema.validation import event_validator
from opencws.schema.validator import SchemaError, Validator

SCHEMA = event_schema()
ORACLE = Draft7Validator(SCHEMA, format_checker=Draft7Validator.FORMAT_CHECKER)
DATE = "2026-11-21T17:55:02.123456789Z"


def _sample(node: dict[str, Any]) -> Any:
    """A valid value for a schema node, with every property filled in."""
    if "$ref" in node:
        return _sample(SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[-1]])
    kind = node.get("type")
    if kind == "object":
        return {k: _sample(v) for k, v in node["properties"].items()}
    if kind == "array":
        return [_sample(node["items"]), _sample(node["items"])]
    if node.get("format") == "date-time":
        return DATE
    return {"string": "x", "integer": 7, "boolean": True, None: {"anything": [1]}}[kind]


_WRONG = {"string": 7, "integer": "7", "boolean": 1, "object": [], "array": {}}


def _wrong_value(node: dict[str, Any]) -> Any:
    if "$ref" in node:
        return "not an object"
    if node.get("format") == "date-time":
        return "2026-13-01T00:00:00Z"
    return _WRONG[node.get("type", "string")]


def _oracle_pointers(doc: Any, schema: dict[str, Any]) -> set[str]:
    """Where jsonschema sees problems; an unknown key is placed at the key itself, as we do."""
    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    out = set()
    for e in validator.iter_errors(doc):
        at = "".join(f"/{p}" for p in e.absolute_path)
        if e.validator == "additionalProperties":
            out |= {f"{at}/{k}" for k in set(e.instance) - set(e.schema.get("properties", {}))}
        else:
            out.add(at)
    return out


def _definition_schema(name: str) -> dict[str, Any]:
    return {**SCHEMA["definitions"][name], "definitions": SCHEMA["definitions"]}


@pytest.mark.parametrize("name", sorted(SCHEMA["definitions"]))
def test_a_complete_instance_of_each_definition_is_valid(name):
    schema = _definition_schema(name)
    doc = _sample(SCHEMA["definitions"][name])
    assert Validator(schema).is_valid(doc)
    assert Validator(schema).issues(doc) == []
    assert not list(Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER).iter_errors(doc))


@pytest.mark.parametrize("name", sorted(SCHEMA["definitions"]))
def test_each_property_of_a_wrong_type_is_reported_at_its_pointer(name):
    schema = _definition_schema(name)
    validator = Validator(schema)
    for prop, node in SCHEMA["definitions"][name]["properties"].items():
        if node.get("additionalProperties") is True:
            continue  # free-form: anything goes
        doc = _sample(SCHEMA["definitions"][name])
        doc[prop] = _wrong_value(node)
        assert not validator.is_valid(doc), prop
        assert [i.pointer for i in validator.issues(doc)] == [f"/{prop}"], prop
        assert _oracle_pointers(doc, schema) == {f"/{prop}"}, prop


@pytest.mark.parametrize("name", sorted(SCHEMA["definitions"]))
def test_unknown_keys_and_missing_required_keys_are_reported(name):
    definition = SCHEMA["definitions"][name]
    validator = Validator(_definition_schema(name))
    doc = _sample(definition)
    doc["unexpected"] = 1
    issues = validator.issues(doc)
    assert [(i.pointer, "unknown property" in i.reason) for i in issues] == [("/unexpected", True)]
    for required in definition.get("required", []):
        doc = _sample(definition)
        del doc[required]
        assert not validator.is_valid(doc)
        assert [str(i) for i in validator.issues(doc)] == [f"/: missing required property {required!r}"]


@pytest.mark.parametrize(("key", "escaped"), [("a/b", "a~1b"), ("~1", "~01"), ("~/", "~0~1"), ("/~", "~1~0"),
                                            ("~0~1//~~", "~00~01~1~1~0~0")])
def test_a_pointer_escapes_tilde_before_slash(key: str, escaped: str):
    """RFC 6901: `~` becomes `~0` first, then `/` becomes `~1`; decoding (`~1` then `~0`) gives the key back."""
    name = sorted(SCHEMA["definitions"])[0]  # (each refuses unknown keys)
    doc = _sample(SCHEMA["definitions"][name])
    doc[key] = 1
    (issue,) = Validator(_definition_schema(name)).issues(doc)
    assert issue.pointer == "/" + escaped
    assert issue.pointer[1:].replace("~1", "/").replace("~0", "~") == key


def test_a_long_offending_value_is_shortened_in_the_reason():
    validator = Validator(_definition_schema("EventContext"))
    (issue,) = validator.issues({"name": list(range(100))})
    assert issue.pointer == "/name" and issue.reason.startswith("expected string, got array [0, 1, 2")
    assert issue.reason.endswith("...") and len(issue.reason) < 80


def _mutations(doc: Any, rng: random.Random) -> Any:
    """A copy of `doc` with one random value replaced, deleted or a key added, somewhere."""
    doc = copy.deepcopy(doc)
    parent, key = None, None
    node = doc
    while isinstance(node, dict | list) and node and rng.random() < 0.8:
        parent = node
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        node = node[key]
    choice = rng.randrange(4)
    replacement = [None, 1.5, 3.0, "s", True, [], {}, "2026-02-30T00:00:00Z", DATE, -1][rng.randrange(10)]
    if parent is None:
        return replacement if choice == 0 else doc
    if choice == 0 and isinstance(parent, dict):
        del parent[key]
    elif choice == 1 and isinstance(parent, dict):
        parent[f"extra{rng.randrange(3)}"] = replacement
    else:
        parent[key] = replacement
    return doc


def test_the_validator_agrees_with_jsonschema_on_thousands_of_mutated_events():
    from opencws.model.codec import to_dict
    from opencws.model.examples import exec_event, open_event

    rng = random.Random(1234)
    validator = event_validator()
    seeds = [to_dict(exec_event(5)), to_dict(open_event()), _sample({"$ref": "#/definitions/FileEvent"})]
    seeds[2] = {"file": seeds[2], "date": DATE}
    disagreements = []
    invalid = 0
    for _ in range(3000):
        doc = _mutations(rng.choice(seeds), rng)
        ours = validator.is_valid(doc)
        theirs = ORACLE.is_valid(doc)
        invalid += not theirs
        if ours != theirs or (
            not ours and {i.pointer for i in validator.issues(doc)} != _oracle_pointers(doc, SCHEMA)
        ):
            disagreements.append((doc, ours, theirs, validator.issues(doc), _oracle_pointers(doc, SCHEMA)))
    assert invalid > 1000  # the mutations do produce invalid documents
    assert disagreements == []


def test_integral_floats_count_as_integers_as_in_json_schema():
    doc = to_plain = _sample({"$ref": "#/definitions/File"})
    to_plain["inode"] = 12.0
    assert Validator(_definition_schema("File")).is_valid(doc)
    to_plain["inode"] = 12.5
    assert not Validator(_definition_schema("File")).is_valid(doc)


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2026-11-21T17:55:02.123456789Z", True),
        ("2026-11-21T17:55:02Z", True),
        ("2026-11-21T17:55:02+05:30", True),
        ("2024-02-29T00:00:00Z", True),
        ("2026-11-21t17:55:02.5z", True),
        ("2025-02-29T00:00:00Z", False),
        ("2026-11-21T24:00:00Z", False),
        ("2026-11-21 17:55:02", False),
        ("2026-11-21T17:55:02.Z", False),
        ("21/11/2026", False),
    ],
)
def test_date_times_follow_rfc3339(text, valid):
    assert event_validator().is_valid({"date": text}) is valid
    assert ORACLE.is_valid({"date": text}) is valid


def test_a_date_time_with_a_trailing_newline_is_refused():
    # Stricter than rfc3339-validator, whose `$` lets a trailing newline through.
    assert not event_validator().is_valid({"date": "2026-11-21T17:55:02Z\n"})


def test_a_leap_second_is_a_valid_date_time():
    assert event_validator().is_valid({"date": "2016-12-31T23:59:60Z"})


def test_an_invalid_schema_is_refused_with_a_precise_error():
    with pytest.raises(SchemaError, match="invalid schema"):
        Validator({"type": "object", "properties": {"a": {"type": "text"}}})


def test_the_legacy_schema_refuses_bpf_and_dd_blocks():
    doc = {"bpf": {"cmd": "BPF_MAP_CREATE"}, "dd": {"span_id": 1}}
    assert event_validator().is_valid(doc)
    issues = event_validator(legacy=True).issues(doc)
    assert [i.pointer for i in issues] == ["/bpf", "/dd"]
