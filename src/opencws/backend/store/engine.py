"""What a store needs from a ClickHouse engine: run SQL with bound parameters, insert rows, list shards.

SQL uses ClickHouse's typed placeholders (`{name:String}`); each engine binds them its own way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

# RowBinary rows: one buffer, or several one after the other (each holding whole rows).
Data = bytes | bytearray | memoryview | Sequence[bytes | bytearray | memoryview]


class StoreError(RuntimeError):
    """The engine failed (the message is the engine's)."""


class Engine(Protocol):
    def execute(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...

    def insert(
        self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]] = (),
        data: Data | None = None, count: int | None = None,
    ) -> int:
        """Insert rows of `columns` ((name, ClickHouse type) pairs) and return the number of rows written;
        return only once they are on disk. String values are str (a lone surrogate stands for its byte),
        bytes or msgspec.Raw. `data`: the rows already in RowBinary (`count` of them; `rows` unused), one
        buffer or several (each of whole rows)."""
        ...

    def shards(self, cluster: str) -> list[Engine]:
        """An engine per shard of `cluster` (the local tables are created and dropped through them)."""
        ...

    def close(self) -> None: ...
