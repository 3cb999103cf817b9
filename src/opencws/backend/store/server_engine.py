"""A ClickHouse server (or one node of a cluster): queries and DDL over the native protocol
(`clickhouse-driver`), inserts of RowBinary over its HTTP interface when its port is known
(`opencws.backend.store.http_insert`: the journal's bytes go as they are).

The 18.16 servers Debian ships predate server-side query parameters: the driver binds them (it escapes
each value into the query it sends). One connection per thread (a connection is not shared). Without an
HTTP port, RowBinary is read back into values for the driver (`rowbinary.read_values`), several times the
CPU of the HTTP path.
"""

from __future__ import annotations

import codecs
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opencws.backend.store.engine import Data, Engine, StoreError
from opencws.backend.store.http_insert import IDENTITY_SQL, HttpInsert, same_server
from opencws.backend.store.rowbinary import Cut, RowBinaryError, read_values, row_binary, text_bytes

log = logging.getLogger(__name__)
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
    http_port: int | None = None  # the server's HTTP interface (`<http_port>`): inserts go through it


class ServerEngine:
    def __init__(self, address: ServerAddress, settings: dict[str, Any] | None = None) -> None:
        self.address = address
        self.settings = settings or {}
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        self._http: HttpInsert | None = None
        self._fallback_told = False
        self.execute("SELECT 1")  # fail at start, with the server's reason, rather than at the first event
        if address.http_port is not None:
            try:
                self._http = self._open_http()
            except BaseException:
                self.close()
                raise

    def _open_http(self) -> HttpInsert:
        """The HTTP side, checked at start: it must answer, as the same server as the native port (a wrong
        `http_port` would otherwise be found at the first insert, or never: another server's tables)."""
        a = self.address
        http = HttpInsert(a.host, a.http_port or 0, a.user, a.password, self.settings)
        try:
            try:
                over_http = http.identity()
            except StoreError as e:
                raise StoreError(
                    f"http_port {a.http_port}: ClickHouse's HTTP interface does not answer there ({e}); give the "
                    f"server's <http_port> (8123 by default), or no http_port for inserts over the native protocol"
                ) from None
            (host, path, uptime), = self.execute(IDENTITY_SQL)
            native = (str(host), str(path), time.time() - int(uptime))
            if not same_server(over_http, native):
                raise StoreError(
                    f"http_port {a.http_port}: {a.host}:{a.http_port} is another ClickHouse server than the native "
                    f"port {a.host}:{a.port} (host {over_http[0]!r}, data {over_http[1]!r} against host "
                    f"{native[0]!r}, data {native[1]!r}); give the <http_port> of the server on port {a.port}"
                )
        except BaseException:
            http.close()
            raise
        return http

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
        """`data`: the RowBinary of the rows when the caller has it (`count` rows): sent as it is over HTTP,
        or read back into values for the native protocol (which takes columns of values)."""
        if self._http is not None:
            return self._insert_http(table, columns, rows, data, count)
        if data is not None:
            if not self._fallback_told:
                self._fallback_told = True
                log.info(
                    "ClickHouse %s:%d: no http_port in the store URL: journaled rows are read back into values "
                    "for the native protocol (add ?http_port=N, the server's <http_port>, to send them as they are)",
                    self.address.host, self.address.port,
                )  # fmt: skip
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

    def _insert_http(
        self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]],
        data: Data | None, count: int | None,
    ) -> int:  # fmt: skip
        assert self._http is not None
        if data is None:
            if not rows:
                return 0
            try:
                data = row_binary(rows, [t for _, t in columns])
            except Exception as e:
                raise StoreError(f"the rows cannot be encoded: {e}") from None
            count = len(rows)
        body = [data] if isinstance(data, bytes | bytearray | memoryview) else [b for b in data if len(b)]
        if count is None:  # the rows are counted (the journal always tells)
            try:
                count = sum(len(read_values(b, [t for _, t in columns])) for b in body)
            except RowBinaryError as e:
                raise StoreError(f"{self._http.where}: {e}") from None
        if not count:
            return 0
        self._http.insert(table, [n for n, _ in columns], body, count)
        return count

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
        if self._http is not None:
            self._http.close()
        with self._lock:
            for c in self._clients:
                c.disconnect()
            self._clients.clear()
