"""Event storage: one `Store` over two engines, the embedded one (chdb) and ClickHouse servers.

open_store(None, data_dir)                                     # embedded, under data_dir/store
open_store("clickhouse://127.0.0.1:9000/opencws", data_dir)    # one server
open_store("clickhouse://h:9000/opencws?cluster=c", data_dir)  # a cluster: a Distributed table over its shards
open_store("clickhouse://h:9000/opencws?http_port=8123", data_dir)  # inserts over the server's HTTP interface
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from opencws.backend.store.engine import StoreError
from opencws.backend.store.journal import Journal, JournalLimits
from opencws.backend.store.store import Hit, Page, Store

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class StoreURLError(ValueError):
    """A `--store` URL this backend cannot use."""


class StoreURL(NamedTuple):
    host: str
    port: int  # the native protocol's (queries, DDL; inserts too without http_port)
    database: str
    user: str
    password: str
    cluster: str | None
    http_port: int | None  # the HTTP interface's: inserts send the journal's RowBinary through it


def parse_store_url(url: str) -> StoreURL:
    """`clickhouse://[user[:password]@]host[:port]/database[?cluster=name][&http_port=N]` → its parts."""
    parts = urlsplit(url)
    if parts.scheme != "clickhouse":
        raise StoreURLError(f"unsupported store URL scheme {parts.scheme!r} (expected clickhouse://)")
    if not parts.hostname:
        raise StoreURLError("the store URL names no host")
    try:
        port = parts.port or 9000
    except ValueError:
        raise StoreURLError("the store URL has an invalid port") from None
    database = parts.path.strip("/") or "opencws"
    query = parse_qs(parts.query, keep_blank_values=True)
    cluster = query.pop("cluster", [None])[0]
    http = query.pop("http_port", [None])[0]
    http_port = None
    if http is not None:
        if not http.isdigit() or not 0 < int(http) < 65536:
            raise StoreURLError(f"invalid http_port {http!r} in the store URL (a port number, 1-65535)")
        http_port = int(http)
    if query:
        raise StoreURLError(f"unknown store URL parameter(s): {', '.join(sorted(query))}")
    for what, name in (("database", database), ("cluster", cluster)):
        if name is not None and not _NAME.match(name):
            raise StoreURLError(f"invalid {what} name {name!r} (letters, digits and '_')")
    user = unquote(parts.username) if parts.username else "default"
    password = unquote(parts.password) if parts.password else ""
    return StoreURL(parts.hostname, port, database, user, password, cluster, http_port)


def open_store(url: str | None, data_dir: str, fsync: bool = False, journal: JournalLimits | None = None) -> Store:
    """Open (and create when missing) the store, behind its journal (`opencws.backend.store.journal`:
    `data_dir/journal` for the embedded store, `data_dir/journal-HOST-PORT-DATABASE` for a server's);
    raise StoreError or StoreURLError with the reason."""
    if url is None:
        from opencws.backend.store.chdb_engine import ChdbEngine

        store = Store(ChdbEngine(os.path.join(data_dir, "store")))
        where = "journal"
    else:
        from opencws.backend.store.server_engine import ServerAddress, ServerEngine

        host, port, database, user, password, cluster, http_port = parse_store_url(url)
        # Inserts through a Distributed table wait until every shard has its rows (a 2xx means stored).
        settings = {"insert_distributed_sync": 1} if cluster else {}
        address = ServerAddress(host, port, user, password, http_port)
        store = Store(ServerEngine(address, settings), database, cluster)
        where = "journal-" + re.sub(r"[^A-Za-z0-9_.]", "_", f"{host}-{port}-{database}")
    try:
        store.create(fsync)
        store.open_journal(Journal(os.path.join(data_dir, where), journal, fsync))
    except BaseException:
        store.close()
        raise
    return store


__all__ = [
    "Hit", "JournalLimits", "Page", "Store", "StoreError", "StoreURL", "StoreURLError", "open_store", "parse_store_url",
]  # fmt: skip
