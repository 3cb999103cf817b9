"""The typed columns of the events table and the SECL fields each one holds.

A column holds the value SECL reads for its fields (missing values as ""/0, never NULL), computed at intake
by `opencws.backend.store.rows` from the event's JSON; a test holds the two to the field getters. Fields
of several event types share a column when their getters read the same place (`open.file.path` and
`unlink.file.path` both read the event's `file.path`): the event-type restriction tells them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from opencws.secl.fields import FILE_EVENT_TYPES, INT, STRING


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # STRING or INT (of each value when `multi`)
    multi: bool = False  # an array column: SECL's "any value" semantics


def _build() -> dict[str, Column]:
    cols: dict[str, Column] = {
        "evt.name": Column("evt_name", STRING),
        "container.id": Column("container_id", STRING),
    }
    for prefix in ("process", "exec", "exit"):
        for suffix, typ in (("pid", INT), ("ppid", INT), ("uid", INT), ("user", STRING), ("comm", STRING)):
            cols[f"{prefix}.{suffix}"] = Column(f"process_{suffix}", typ)
        cols[f"{prefix}.file.path"] = Column("process_file_path", STRING)
        cols[f"{prefix}.file.name"] = Column("process_file_name", STRING)
    cols["process.parent.file.path"] = Column("parent_file_path", STRING)
    cols["process.ancestors.file.path"] = Column("ancestors_file_path", STRING, multi=True)
    cols["process.ancestors.file.name"] = Column("ancestors_file_name", STRING, multi=True)
    for t in FILE_EVENT_TYPES:
        cols[f"{t}.file.path"] = Column("file_path", STRING)
        cols[f"{t}.file.name"] = Column("file_name", STRING)
    cols["mount.mountpoint.path"] = Column("file_path", STRING)
    for t in ("rename", "link"):
        cols[f"{t}.file.destination.path"] = Column("destination_path", STRING)
    return cols


# SECL field (canonical name) → column.
FIELD_COLUMNS: dict[str, Column] = _build()


JSON_COLUMN = "event"
"""The column holding each event's JSON (compact: as `orjson.dumps` writes it)."""
JSON_KEYS: dict[str, str] = {"dd.span_id": "span_id", "dd.trace_id": "trace_id"}
"""Fields without a column of their own (search-only, rarely filtered on) whose value is an integer of the event's
JSON, read by SECL as its decimal text: `field == "N"` selects the events whose JSON has `"key":N` (a superset:
N's digits may go on, or the key belong to another block; the evaluator decides)."""
