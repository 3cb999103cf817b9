"""RowBinary inserts over a ClickHouse server's HTTP interface: the journal's bytes go to the server as they
are (`POST /?query=INSERT INTO db.t (cols) FORMAT RowBinary`, the rows as the body), with no decode into
Python values and no re-encode by the native driver (`clickhouse-driver` takes values, not RowBinary).

What ClickHouse 18.16 (Debian's) does, checked against it (tests/backend/test_http_insert.py):
- It takes RowBinary over HTTP. The query parameter and the body are read as one text, the query first and a
  newline between them; after `FORMAT RowBinary` exactly that newline is skipped, so a body starting with a
  space, tab, CR or LF byte (a `Date`'s low byte, often) is read whole.
- A refused request answers a non-2xx status (500 for bad data, 404 for a missing table, 401 for a wrong
  user or password) with the exception as the body: `Code: 33, e.displayText() = DB::Exception: Cannot read
  all data...: (at row 2)`; no `X-ClickHouse-Exception-Code` header yet. An INSERT answers once its rows
  are written, so its status is final.
- The rows are parsed into blocks of `max_insert_block_size` rows and each block is written as soon as it is
  full: with that setting at the insert's row count, a body cut short or bad anywhere stores nothing. Past
  the parse, a block is written as one part per partition (day), and through a `Distributed` table with
  `insert_distributed_sync` to each shard: a failure there can leave some of the rows stored, as over the
  native protocol (seen with a body of two blocks whose second was bad: the other shard had the first
  block's rows, this one none). The journal is made for that: the records of a failed insert are retried
  without the rows the store already has (`Record.suspect`, `Store._missing`): nothing lost, nothing twice.

User and password go as HTTP basic authentication (18.16 takes it); no TLS (neither does the native side).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import urllib3
from urllib3.util import Retry, Timeout

from opencws.backend.store.engine import StoreError

# A new connection is retried (nothing was sent); a request that may have reached the server is not (the
# journal retries it, leaving out what got stored).
_RETRY = Retry(total=None, connect=2, read=False, redirect=False, status=False, other=False)
_TIMEOUT = Timeout(connect=5, read=300)
_CHECK_TIMEOUT = Timeout(connect=5, read=10)
_MAX_ERROR = 2_000  # characters of a server's error kept in a StoreError

# What tells one server from another: its host name, where it keeps its data, when it started.
IDENTITY_SQL = (
    "SELECT hostName(), (SELECT data_path FROM system.databases WHERE name = 'system'), toUInt64(uptime())"
)
_START_SLACK = 5  # seconds two readings of one server's start time may differ by


class HttpInsert:
    """The HTTP side of one server: a pool of kept-alive connections (safe to share between threads)."""

    def __init__(self, host: str, port: int, user: str = "default", password: str = "",
                 settings: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        self.where = f"ClickHouse HTTP {host}:{port}"
        self.settings = {k: str(v) for k, v in (settings or {}).items()}
        self._headers = urllib3.make_headers(basic_auth=f"{user}:{password}")
        self._pool = urllib3.HTTPConnectionPool(
            host, port, maxsize=4, block=False, retries=_RETRY, timeout=_TIMEOUT
        )

    def _post(self, params: dict[str, str], body: Sequence[bytes | bytearray | memoryview], size: int,
              timeout: Timeout, retries: Retry | bool = _RETRY) -> bytes:  # fmt: skip
        headers = {**self._headers, "Content-Length": str(size)}
        try:
            r = self._pool.urlopen(
                "POST", "/?" + urlencode(params), body=body, headers=headers, timeout=timeout, retries=retries
            )
        except urllib3.exceptions.HTTPError as e:
            raise StoreError(f"{self.where}: {_reason(e)}") from None
        if r.status != 200:
            raise StoreError(f"{self.where} refused (HTTP {r.status}): {_server_error(r.data)}")
        return r.data

    def insert(self, table: str, columns: Sequence[str], body: Sequence[bytes | bytearray | memoryview],
               count: int) -> None:  # fmt: skip
        """Insert `count` rows whose RowBinary is `body` (its parts one after the other, sent as they are);
        return once the server has stored them. Raises StoreError with the server's reason."""
        params = {
            "query": f"INSERT INTO {table} ({', '.join(columns)}) FORMAT RowBinary",
            **self.settings,
            # One block: a body bad anywhere stores none of its rows.
            "max_insert_block_size": str(max(count, 1)),
        }
        self._post(params, body, sum(len(b) for b in body), _TIMEOUT)

    def identity(self) -> tuple[str, str, float]:
        """(host name, data path, start time) of the server behind the port. Raises StoreError when the port
        does not answer as ClickHouse."""
        data = self._post({"query": IDENTITY_SQL + " FORMAT TabSeparated"}, [], 0, _CHECK_TIMEOUT, retries=False)
        parts = data.rstrip(b"\n").split(b"\t")
        if len(parts) != 3 or not parts[2].isdigit():
            raise StoreError(f"{self.where} does not answer as ClickHouse: {data[:200]!r}")
        return parts[0].decode(errors="replace"), parts[1].decode(errors="replace"), time.time() - int(parts[2])

    def close(self) -> None:
        self._pool.close()


def same_server(a: tuple[str, str, float], b: tuple[str, str, float]) -> bool:
    """Two `HttpInsert.identity`-like readings name one server."""
    return a[:2] == b[:2] and abs(a[2] - b[2]) <= _START_SLACK


def _reason(e: Exception) -> str:
    """urllib3's error without its wrapping (the socket's own reason: refused, reset, timed out)."""
    while isinstance(getattr(e, "reason", None), Exception):
        e = e.reason  # type: ignore[attr-defined]
    text = str(e)
    if isinstance(e, urllib3.exceptions.NewConnectionError):  # "HTTPConnection(host=..., port=...): Failed..."
        text = text.split("): ", 1)[-1]
    return text


def _server_error(body: bytes) -> str:
    """ClickHouse's exception text (`Code: 60, e.displayText() = DB::Exception: ..., e.what() = ...`), on one
    line, without the `e.what()` tail that repeats the exception's class."""
    text = body.decode("utf-8", "replace")
    text = re.sub(r",?\s*e\.what\(\) = [\w:]+\s*$", "", text.strip())
    return " ".join(text.split())[:_MAX_ERROR]
