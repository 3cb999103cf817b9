"""The events table: the same columns and SQL for the embedded store (chdb) and ClickHouse servers.

Kept to what ClickHouse 18.16 (the Debian server) and current ClickHouse both accept: no JSON functions,
DateTime64, CODECs or TTL. Times are Int64 nanoseconds; `day` (UTC) is the partition key, so retention drops
whole partitions. The sort key serves the common filters: event type, then time (every search has a range),
then host. Typed columns hold the fields people filter on (see `opencws.secl.sql.columns`); `event` keeps the whole event JSON (compressed by
MergeTree, LZ4 by default, ZSTD when the server's `<compression>` says so), except its `process.ancestors`
text (with its `process.parent` when that comes right before it), kept once a day in the contexts table
(`context` names it, `context_at` is where it goes back: see `opencws.backend.store.contexts`).
"""

from __future__ import annotations

LOCAL_TABLE = "events_local"
DISTRIBUTED_TABLE = "events"
CONTEXTS_LOCAL_TABLE = "contexts_local"
CONTEXTS_TABLE = "contexts"

# (name, ClickHouse type), in insert order.
COLUMNS: list[tuple[str, str]] = [
    ("day", "Date"),
    ("date", "Int64"),
    ("id", "String"),
    ("evt_name", "String"),
    ("evt_outcome", "String"),
    ("host", "String"),
    ("rule_id", "String"),
    ("rule_version", "String"),
    ("policy", "String"),
    ("agent_version", "String"),
    ("tags", "Array(String)"),
    ("process_pid", "Int64"),
    ("process_ppid", "Int64"),
    ("process_uid", "Int64"),
    ("process_user", "String"),
    ("process_comm", "String"),
    ("process_file_path", "String"),
    ("process_file_name", "String"),
    ("parent_file_path", "String"),
    ("ancestors_file_path", "Array(String)"),
    ("ancestors_file_name", "Array(String)"),
    ("container_id", "String"),
    ("file_path", "String"),
    ("file_name", "String"),
    ("destination_path", "String"),
    ("context", "String"),
    ("context_at", "Int64"),
    ("event", "String"),
]
COLUMN_NAMES = [name for name, _ in COLUMNS]
COLUMN_TYPES = dict(COLUMNS)

# Returned by searches: the envelope and the event (put together again from the last three).
RESULT_COLUMNS = [
    "id", "date", "host", "rule_id", "rule_version", "policy", "agent_version", "tags", "event", "context",
    "context_at",
]  # fmt: skip

# The contexts table: each distinct text cut out of events (a process's ancestors, with its parent when that comes
# right before them), once a day under a random key.
CONTEXT_COLUMNS: list[tuple[str, str]] = [("day", "Date"), ("key", "String"), ("text", "String")]


def create_database(database: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {database}"


def create_local_table(database: str) -> str:
    columns = ",\n  ".join(f"{name} {typ}" for name, typ in COLUMNS)
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.{LOCAL_TABLE} (\n  {columns}\n) ENGINE = MergeTree\n"
        "PARTITION BY day\nORDER BY (evt_name, date, host, id)\n"
        # Small granules: a page's 100 events are read one by one, and the default 8192 rows would make a
        # granule of ~10 MB to decompress per event (18.16 has no adaptive granularity). 128 rows of the
        # ~1.3 KiB an event keeps once its ancestors and parent are cut (~170 KB): a page of 100 scattered
        # events reads as fast as with 64, and the intake costs ~3 us an event less in chdb's inserts and
        # merges (64: 12.6-13.5 us a row, 128: 9.4, 256: 8.7, 8192: 6.1; 256 slows the combined search).
        "SETTINGS index_granularity = 128"
    )


def create_contexts_table(database: str) -> str:
    """Partitioned by day like the events: retention drops a day's contexts with the day's events (an event
    names only a context of its own day)."""
    columns = ",\n  ".join(f"{name} {typ}" for name, typ in CONTEXT_COLUMNS)
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.{CONTEXTS_LOCAL_TABLE} (\n  {columns}\n) ENGINE = MergeTree\n"
        "PARTITION BY day\nORDER BY key\nSETTINGS index_granularity = 256"
    )


def create_distributed_contexts_table(database: str, cluster: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.{CONTEXTS_TABLE} AS {database}.{CONTEXTS_LOCAL_TABLE}\n"
        f"ENGINE = Distributed({cluster}, {database}, {CONTEXTS_LOCAL_TABLE}, cityHash64(key))"
    )


def create_distributed_table(database: str, cluster: str) -> str:
    """Over the local tables of every shard; an event goes to the shard of its host (process trees stay on
    one shard)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.{DISTRIBUTED_TABLE} AS {database}.{LOCAL_TABLE}\n"
        f"ENGINE = Distributed({cluster}, {database}, {LOCAL_TABLE}, cityHash64(host))"
    )
