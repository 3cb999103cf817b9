"""RowBinary: the unrolled encoder and its readable twin write the same bytes, which chdb reads back."""

from __future__ import annotations

import datetime

from backend_corpus import event_mix

from opencws.backend.store import Store, tables
from opencws.backend.store.rowbinary import encoder_source, row_binary, row_binary_py
from opencws.backend.store.rows import Envelope, row_of_dict

TYPES = [t for _, t in tables.COLUMNS]


def test_the_unrolled_encoder_writes_what_its_twin_writes() -> None:
    rows = [
        row_of_dict(e, Envelope(host="h" * 300, tags=["a"] * 200), i) for i, e in enumerate(event_mix(50))
    ]
    assert bytes(row_binary(rows, TYPES)) == row_binary_py(rows, TYPES)
    assert "def encode(rows):" in encoder_source(TYPES) and "_pack('<Hq'" in encoder_source(TYPES)


def test_values_only_the_twin_writes_round_trip_through_chdb(chdb_store: Store) -> None:
    row = list(row_of_dict(event_mix(1)[0], Envelope(), 0))
    names = tables.COLUMN_NAMES
    row[names.index("process_pid")] = 2**64 - 1  # wraps to -1, as ClickHouse parses it
    row[names.index("process_comm")] = "caf\udce9"  # the byte 0xE9
    row[names.index("day")] = datetime.date(2026, 12, 1)
    chdb_store.insert([tuple(row)])
    got = chdb_store.engine.execute(
        f"SELECT process_pid, hex(process_comm), day FROM {chdb_store.read_table}"
    )
    assert got == [(-1, "636166E9", "2026-12-01")]
