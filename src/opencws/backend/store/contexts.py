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

from opencws.backend.store.rowbinary import text_bytes


def new_key() -> str:
    return secrets.token_hex(16)


def splice(event: str, at: int, text: str) -> str:
    """The event's JSON as received: `text` put back at byte offset `at` of the stored `event` (strings as
    the engines read them: UTF-8, a byte that is not UTF-8 as the lone surrogate standing for it)."""
    if event.isascii():
        return event[:at] + text + event[at:]
    b = text_bytes(event)
    return (b[:at] + text_bytes(text) + b[at:]).decode("utf-8", "surrogateescape")
