"""Validation of CWS events read from a stream: the engine behind `opencws validate`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import IO

from opencws.schema.generate import event_schema
from opencws.schema.reader import MAX_EVENT_BYTES, Format, read_documents
from opencws.schema.validator import Issue, Validator


@cache
def event_validator(*, legacy: bool = False) -> Validator:
    """The validator of the current (or legacy) CWS event schema, compiled once."""
    return Validator(event_schema(legacy=legacy))


@dataclass(slots=True)
class Verdict:
    """The outcome for one document of the input."""

    where: str
    issues: list[Issue] = field(default_factory=list)
    error: str | None = None  # the document could not be read at all

    @property
    def valid(self) -> bool:
        return self.error is None and not self.issues


def validate_stream(
    stream: IO[bytes], *, legacy: bool = False, fmt: Format = "auto", max_event_bytes: int = MAX_EVENT_BYTES
) -> Iterator[Verdict]:
    """Validate every document of `stream`, yielding one verdict per document, in order."""
    validator = event_validator(legacy=legacy)
    for item in read_documents(stream, fmt, max_event_bytes):
        if item.error is not None:
            yield Verdict(item.where, error=item.error)
        elif validator.is_valid(item.value):
            yield Verdict(item.where)
        else:
            yield Verdict(item.where, validator.issues(item.value))
