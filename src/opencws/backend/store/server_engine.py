"""A ClickHouse server (or one node of a cluster) over the native protocol (`clickhouse-driver`).

The 18.16 servers Debian ships predate server-side query parameters: the driver binds them (it escapes
each value into the query it sends). One connection per thread (a connection is not shared).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opencws.backend.store.engine import Engine, StoreError

_PLACEHOLDER = re.compile(r"\{(\w+):[^{}]+\}")


def _bytes(v: Any) -> bytes:
    return v.encode("utf-8", "surrogateescape") if type(v) is str else bytes(v)


_STRING_VALUES = {"String": _bytes, "Array(String)": lambda vs: [_bytes(v) for v in vs]}


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
                host=a.host, port=a.port, user=a.user, password=a.password, settings=self.settings,
                connect_timeout=5, send_receive_timeout=60,
            )  # fmt: skip
            self._local.client = c
            with self._lock:
                self._clients.append(c)
        return c

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        if params:
            sql = _PLACEHOLDER.sub(r"%(\1)s", sql)
        try:
            return list(self._client().execute(sql, params or None))
        except Exception as e:
            raise StoreError(f"ClickHouse {self.address.host}:{self.address.port}: {e}") from None

    def insert(self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        # Strings as bytes: a lone surrogate goes back to the byte it stands for (the driver would refuse it).
        convert = [_STRING_VALUES.get(t) for _, t in columns]
        values = [
            [v if c is None else c(v) for c, v in zip(convert, row, strict=True)] for row in rows
        ]
        try:
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
