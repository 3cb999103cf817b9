"""A ClickHouse server (or one node of a cluster) over the native protocol (`clickhouse-driver`).

The 18.16 servers Debian ships predate server-side query parameters: the driver binds them (it escapes
each value into the query it sends). One connection per thread (a connection is not shared).
"""

from __future__ import annotations

import codecs
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opencws.backend.store.engine import Data, Engine, StoreError
from opencws.backend.store.rowbinary import Cut, RowBinaryError, read_values, text_bytes

_PLACEHOLDER = re.compile(r"\{(\w+):[^{}]+\}")


def _bytes(v: Any) -> bytes:
    return text_bytes(v) if type(v) is str else v.stored() if type(v) is Cut else bytes(v)


_STRING_VALUES = {"String": _bytes, "Array(String)": lambda vs: [_bytes(v) for v in vs]}

# Strings read back: UTF-8, a byte that is not UTF-8 as the lone surrogate standing for it (a non-UTF-8 name:
# see `opencws.model.jsontext`), as the driver's `strings_encoding`.
_ENCODING = "opencws_utf_8_surrogateescape"


def _codec(name: str) -> codecs.CodecInfo | None:
    if name != _ENCODING:
        return None
    return codecs.CodecInfo(
        lambda s, errors="strict": (text_bytes(s), len(s)),
        lambda b, errors="strict": codecs.utf_8_decode(b, "surrogateescape", True),
        name=_ENCODING,
    )


codecs.register(_codec)

_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f"}


class _Literal:
    """A string parameter holding lone surrogates, as a quoted SQL literal with each of their bytes as
    `\\xHH` (the driver would put the surrogates themselves in the query, which cannot be sent)."""

    def __init__(self, value: str) -> None:
        text = "".join(_ESCAPES.get(c, c) for c in value)
        self.literal = "'" + text_bytes(text).decode("utf-8", "backslashreplace") + "'"

    def __str__(self) -> str:
        return self.literal


def _param(v: Any) -> Any:
    if isinstance(v, str):
        try:
            v.encode()
        except UnicodeEncodeError:
            return _Literal(v)
    elif isinstance(v, list):
        return [_param(x) for x in v]
    return v


@dataclass(frozen=True)
class ServerAddress:
    host: str
    port: int
    user: str = "default"
    password: str = ""


class ServerEngine:
    def __init__(self, address: ServerAddress, settings: dict[str, Any] | None = None) -> None:
        self.address = address
        self.settings = settings or {}
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        self.execute("SELECT 1")  # fail at start, with the server's reason, rather than at the first event

    def _client(self) -> Any:
        c = getattr(self._local, "client", None)
        if c is None:
            from clickhouse_driver import Client

            a = self.address
            c = Client(
                host=a.host, port=a.port, user=a.user, password=a.password,
                settings={**self.settings, "strings_encoding": _ENCODING},
                connect_timeout=5, send_receive_timeout=60,
            )  # fmt: skip
            self._local.client = c
            with self._lock:
                self._clients.append(c)
        return c

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        if params:
            sql = _PLACEHOLDER.sub(r"%(\1)s", sql)
            params = {k: _param(v) for k, v in params.items()}
        try:
            return list(self._client().execute(sql, params or None))
        except Exception as e:
            raise StoreError(f"ClickHouse {self.address.host}:{self.address.port}: {e}") from None

    def insert(
        self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]] = (),
        data: Data | None = None, count: int | None = None,
    ) -> int:  # fmt: skip
        """`data`: the RowBinary of the rows when the caller has it (`count` rows); read back into values
        here (the native protocol takes columns of values)."""
        if data is not None:
            if not isinstance(data, bytes | bytearray | memoryview):
                data = b"".join(data)
            try:
                rows = read_values(data, [t for _, t in columns])
            except RowBinaryError as e:
                raise StoreError(f"ClickHouse {self.address.host}:{self.address.port}: {e}") from None
            if count is not None and len(rows) != count:
                raise StoreError(f"the RowBinary holds {len(rows)} rows, not {count}")
        if not rows:
            return 0
        # Strings as bytes: a lone surrogate goes back to the byte it stands for (the driver would refuse it).
        convert = [_STRING_VALUES.get(t) for _, t in columns]
        try:
            values = [
                [v if c is None else c(v) for c, v in zip(convert, row, strict=True)] for row in rows
            ]
            self._client().execute(f"INSERT INTO {table} ({', '.join(n for n, _ in columns)}) VALUES", values)
        except Exception as e:
            raise StoreError(f"ClickHouse {self.address.host}:{self.address.port}: {e}") from None
        return len(rows)

    def shards(self, cluster: str) -> list[Engine]:
        rows = self.execute(
            "SELECT shard_num, host_address, port FROM system.clusters WHERE cluster = {c:String} "
            "ORDER BY shard_num, replica_num",
            {"c": cluster},
        )
        if not rows:
            raise StoreError(
                f"ClickHouse {self.address.host}:{self.address.port}: no cluster named {cluster!r}"
            )
        out: list[Engine] = []
        for _, host, port in rows:
            if (host, port) == (self.address.host, self.address.port):
                out.append(self)
            else:
                out.append(ServerEngine(ServerAddress(host, port, self.address.user, self.address.password)))
        return out

    def close(self) -> None:
        with self._lock:
            for c in self._clients:
                c.disconnect()
            self._clients.clear()
