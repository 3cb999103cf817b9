"""RowBinary: the unrolled encoder and its readable twin write the same bytes, which chdb reads back."""

from __future__ import annotations

import datetime

import pytest
from backend_corpus import event_mix

from opencws.backend.store import Store, tables
from opencws.backend.store.rowbinary import (
    Cut,
    RowBinaryError,
    encoded,
    encoder_source,
    read_rows,
    read_values,
    row_binary,
    row_binary_py,
)
from opencws.backend.store.rows import Envelope, row_of_dict

TYPES = [t for _, t in tables.COLUMNS]


def test_the_unrolled_encoder_writes_what_its_twin_writes() -> None:
    rows = [
        row_of_dict(e, Envelope(host="h" * 300, tags=["a"] * 200), i) for i, e in enumerate(event_mix(50))
    ]
    assert bytes(row_binary(rows, TYPES)) == row_binary_py(rows, TYPES)
    assert "def encode(rows):" in encoder_source(TYPES) and "_pack('<Hq'" in encoder_source(TYPES)


def test_a_cut_value_is_written_without_its_part_and_a_shared_list_as_its_encoding() -> None:
    names = tables.COLUMN_NAMES
    plain = [list(row_of_dict(e, Envelope(), i)) for i, e in enumerate(event_mix(20))]
    shaped = [list(r) for r in plain]
    for r in shaped:
        text = bytes(r[names.index("event")])
        at = len(text) // 3
        r[names.index("event")] = Cut(b"x" * 7 + text[:at] + b"\xc3\xa9" * 300 + text[at:], at + 7, 600)
        r[names.index("ancestors_file_path")] = encoded(r[names.index("ancestors_file_path")] + ["caf\udce9"])
    for r in plain:
        r[names.index("event")] = b"x" * 7 + bytes(r[names.index("event")])
        r[names.index("ancestors_file_path")] = r[names.index("ancestors_file_path")] + ["caf\udce9"]
    assert row_binary(shaped, TYPES) == row_binary_py(shaped, TYPES) == row_binary_py(plain, TYPES)


def test_values_only_the_twin_writes_round_trip_through_chdb(chdb_store: Store) -> None:
    row = list(row_of_dict(event_mix(1)[0], Envelope(), 0))
    names = tables.COLUMN_NAMES
    row[names.index("process_pid")] = 2**64 - 1  # wraps to -1, as ClickHouse parses it
    row[names.index("process_comm")] = "caf\udce9"  # the byte 0xE9
    row[names.index("day")] = datetime.date(2026, 12, 1)
    chdb_store.insert([tuple(row)])
    chdb_store.flush()
    got = chdb_store.engine.execute(
        f"SELECT process_pid, hex(process_comm), day FROM {chdb_store.read_table}"
    )
    assert got == [(-1, "636166E9", "2026-12-01")]


def test_the_unrolled_reader_reads_what_the_readable_one_reads() -> None:
    rows = [
        row_of_dict(e, Envelope(host="h" * 300, tags=["a", "b" * 200] * (i % 3)), i) for i, e in enumerate(event_mix(50))
    ]
    data = bytes(row_binary(rows, TYPES))
    assert read_values(data, TYPES) == [values for _, _, values in read_rows(data, TYPES)]
    assert read_values(memoryview(data), TYPES) == read_values(data, TYPES)
    assert read_values(b"", TYPES) == []


@pytest.mark.parametrize("cut", [1, 2, 9, 40, -1])
def test_rows_cut_short_are_an_error_for_the_unrolled_reader(cut: int) -> None:
    data = bytes(row_binary([row_of_dict(e, Envelope(), 0) for e in event_mix(3)], TYPES))
    with pytest.raises(RowBinaryError):
        read_values(data[:cut], TYPES)
