"""The embedded engine: ClickHouse in the backend's process (chdb), data under the data directory.

One process owns a store directory (chdb locks it). A chdb session is not safe for concurrent use: calls are
serialized by a lock (chdb runs the query in C++, releasing the GIL). Parameters are bound by the engine
(`params=`): values travel in ClickHouse's escaped text form, never inside the SQL.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
from collections.abc import Sequence
from typing import Any

import orjson

from opencws.backend.store.engine import Data, Engine, StoreError
from opencws.backend.store.rowbinary import row_binary, text_bytes


def _escape(value: Any) -> str:
    """A parameter value in ClickHouse's escaped text form (what `{name:Type}` parses)."""
    if isinstance(value, str):
        text = (
            value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
            .replace("\0", "\\0")
        )  # fmt: skip
        try:
            text.encode()
        except UnicodeEncodeError:  # lone surrogates: the bytes they stand for, as `\xHH` escapes
            text = text_bytes(text).decode("utf-8", "backslashreplace")
        return text
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | datetime.date):
        return str(value)
    if isinstance(value, list) and all(type(x) is int for x in value):
        return "[" + ",".join(map(str, value)) + "]"
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        # Array text: each element a quoted string with backslash escapes (which also cover tabs and newlines).
        return "[" + ",".join("'" + _escape(x).replace("'", "\\'") + "'" for x in value) + "]"
    raise TypeError(f"unsupported parameter type {type(value).__name__}")


def _row(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        # A column holding bytes that are not UTF-8 (a non-UTF-8 name): back to the lone surrogates that
        # stand for them, as the event's own JSON has them (see `opencws.model.jsontext`).
        return json.loads(line.decode("utf-8", "surrogateescape"))


class ChdbEngine:
    def __init__(self, path: str) -> None:
        from chdb import session  # imported here: ~0.3 s and 250 MB, only for the embedded store

        os.makedirs(path, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        try:
            self._session = session.Session(path)
        except Exception as e:
            raise StoreError(f"cannot open the embedded store at {path}: {e}") from None
        self._query("SET output_format_json_quote_64bit_integers = 0")

    def _query(self, sql: str, params: dict[str, str] | None = None, fmt: str = "JSONCompactEachRow") -> Any:
        with self._lock:
            try:
                return (
                    self._session.query(sql, fmt, params=params) if params else self._session.query(sql, fmt)
                )
            except Exception as e:
                raise StoreError(str(e)) from None

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        bound = {k: _escape(v) for k, v in params.items()} if params else None
        out = self._query(sql, bound).bytes()
        return [tuple(_row(line)) for line in out.splitlines() if line]

    def insert(
        self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]] = (),
        data: Data | None = None, count: int | None = None,
    ) -> int:  # fmt: skip
        """`data`: the RowBinary of the rows when the caller has it (`count` rows; `rows` is then unused), in
        one buffer or several (streamed into the one INSERT: no copy of them all in one buffer)."""
        n = len(rows) if count is None else count
        if not n:
            return 0
        try:
            # RowBinary: lengths and little-endian numbers, nothing to escape (the event's JSON goes in as it
            # is); four times cheaper for both sides than TabSeparated text here.
            if data is None:
                data = row_binary(rows, [t for _, t in columns])
            with self._lock:
                inserter = self._session.send_insert(f"INSERT INTO {table} ({', '.join(n for n, _ in columns)})", "RowBinary")
                for chunk in [data] if isinstance(data, bytes | bytearray | memoryview) else data:
                    inserter.append(chunk)
                written = inserter.finish().rows_written
        except Exception as e:
            raise StoreError(str(e)) from None
        if written != n:
            raise StoreError(f"the embedded store wrote {written} of {n} rows")
        return written

    def shards(self, cluster: str) -> list[Engine]:
        raise StoreError("the embedded store has no cluster")

    def close(self) -> None:
        with self._lock:
            self._session.close()
