"""Process ancestors kept once: an event is stored without the text of its `process.ancestors` (and of its
`process.parent` when that comes right before them: `intake._parent_before`), which the contexts table holds
once a day under a random key (`tables.CONTEXT_COLUMNS`); readers get the event's text back exactly as it was
received by putting that text back where it was cut (`splice`).

Events of every process of a lineage repeat the same ancestors byte for byte (three quarters of a typical
event's bytes), and most often the same parent (their first ancestor: a third of the rest). The key is random (128 bits), given the first time this backend stores those exact bytes on a
given day: not a hash of the text, which a holder of an ingest key could make collide with another host's
ancestors. The same text seen again after a restart, or by another backend, gets a key of its own: a harmless
copy.
"""

from __future__ import annotations

import secrets
from typing import Any

from opencws.backend.store.rowbinary import text_bytes
from opencws.model import jsontext

# Between a process's parent and its ancestors when they are cut out together (`{parent},"ancestors":[...]`).
PARENT_SEP = b',"ancestors":'
_WITH_PARENT = b"0" + PARENT_SEP + b"0"  # what stands for a parent and ancestors cut out, when parsing the rest
_WITH_PARENT_STR = _WITH_PARENT.decode()


def new_key() -> str:
    return secrets.token_hex(16)


def splice(event: str, at: int, text: str) -> str:
    """The event's JSON as received: `text` put back at byte offset `at` of the stored `event` (strings as
    the engines read them: UTF-8, a byte that is not UTF-8 as the lone surrogate standing for it)."""
    if event.isascii():
        return event[:at] + text + event[at:]
    b = text_bytes(event)
    return (b[:at] + text_bytes(text) + b[at:]).decode("utf-8", "surrogateescape")


def parse_context(text: bytes | str | memoryview) -> Any:
    """A context's text as JSON: the ancestors' list, or `{"parent": ..., "ancestors": [...]}` when the text
    starts with the parent's object (`{...},"ancestors":[...]`)."""
    if type(text) is str:
        return jsontext.loads('{"parent":' + text + "}" if text[:1] == "{" else text)
    return jsontext.loads(b'{"parent":' + text + b"}" if text[:1] == b"{" else text)


def parse_spliced(before: Any, after: Any, context: Any) -> dict[str, Any] | None:
    """The event whose JSON text is `before` + a context's text + `after` (all str, or all bytes-like), parsed
    with `context` (that text's `parse_context`, shared by the events naming it: read-only) put back in its
    place among the process's keys; None when the context was not cut where the process's own ancestors (and
    parent) are (a copy of their text elsewhere in the event: the caller parses the whole text). Parsing the
    rest alone spares parsing the bulk of the event again for each event of a lineage."""
    with_parent = type(context) is dict
    if type(before) is str:
        event = jsontext.loads(before + (_WITH_PARENT_STR if with_parent else "0") + after)
    else:
        event = jsontext.loads(b"".join((before, _WITH_PARENT if with_parent else b"0", after)))
    process = event.get("process") if type(event) is dict else None
    if (
        type(process) is not dict
        or type(process.get("ancestors")) is not int
        or (with_parent and type(process.get("parent")) is not int)
    ):
        return None
    if with_parent:
        process["parent"] = context["parent"]
        process["ancestors"] = context["ancestors"]
    else:
        process["ancestors"] = context
    return event
