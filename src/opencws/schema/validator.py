"""Validation of documents against a CWS event schema, with every problem located by a JSON pointer.

The work is done by `jsonschema-rs` (a JSON Schema implementation in Rust, draft-07 with format checks):
on the typical event mix of `opencws bench schema` it validated about five times faster than the schema
compiled to Python closures it replaced, and 170 times faster than the `jsonschema` package. This module
turns its errors into `Issue`s: the JSON pointer of the offending value and a short reason (an unknown key
is reported at the key itself, one issue per key).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema_rs


@dataclass(frozen=True, slots=True)
class Issue:
    """One offending value: its JSON pointer in the document and the reason."""

    pointer: str
    reason: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.reason}"


class SchemaError(ValueError):
    """The schema itself is not a valid draft-07 schema."""


def _escape(key: object) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _pointer(path: list[Any]) -> str:
    return "".join(f"/{_escape(p)}" for p in path)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _issues_of(error: Any) -> list[Issue]:
    at = _pointer(list(error.instance_path))
    kind = error.kind
    value = error.instance
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
        return [
            Issue(f"{at}/{_escape(k)}", f"unknown property {k!r} (not allowed by the schema)")
            for k in kind.unexpected
        ]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        return [Issue(at, f"missing required property {kind.property!r}")]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Type):
        expected = (
            " or ".join(str(t) for t in kind.types) if isinstance(kind.types, list) else str(kind.types)
        )
        return [Issue(at, f"expected {expected}, got {_type_name(value)} {_short(value)}")]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Format) and kind.format == "date-time":
        return [Issue(at, f"{_short(value)} is not an RFC 3339 date-time")]
    return [Issue(at, error.message)]


class Validator:
    """Validates documents against one schema (draft-07), formats included."""

    def __init__(self, schema: dict[str, Any]) -> None:
        try:
            self._impl = jsonschema_rs.Draft7Validator(schema, validate_formats=True)
        except (jsonschema_rs.ValidationError, ValueError) as e:
            raise SchemaError(f"invalid schema: {e}") from None
        self.is_valid: Callable[[Any], bool] = self._impl.is_valid
        """Whether `doc` is valid (the library's method itself: the hot path has no wrapper)."""

    def issues(self, doc: Any) -> list[Issue]:
        """Every offending value of `doc` (empty when valid)."""
        out: list[Issue] = []
        try:
            for error in self._impl.iter_errors(doc):
                out += _issues_of(error)
        except UnicodeEncodeError:
            # A string holds a lone surrogate (a non-UTF-8 byte, see `opencws.model.jsontext`), which the
            # library cannot report on: the same document with each one spelled as its escape.
            return self.issues(_escaped(doc))
        return out


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, dict):
        return {_escaped(k): _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value
