"""Detection's SQLite file (`detection.sqlite` in the data directory, WAL): signals, their webhook
deliveries, the evaluation state (threshold windows, learned values) that must survive a restart, and the
rules an admin disabled.

One connection shared by the intake's threads, the API and the webhook sender, under one lock; each batch of
events is written in one transaction. With WAL and `synchronous=NORMAL`, a commit survives a crash of the
backend (not a power loss, like the store without `--fsync`); with `fsync`, `synchronous=FULL`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SCHEMA = """
CREATE TABLE IF NOT EXISTS signals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    rule_id TEXT NOT NULL,
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    grp TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    count INTEGER NOT NULL,
    samples TEXT NOT NULL,
    history TEXT NOT NULL,
    webhook_state TEXT,
    webhook_attempts INTEGER NOT NULL DEFAULT 0,
    webhook_error TEXT,
    webhook_next REAL
);
CREATE INDEX IF NOT EXISTS signals_by_status ON signals (status, seq);
CREATE INDEX IF NOT EXISTS signals_by_rule ON signals (rule_id, seq);
CREATE INDEX IF NOT EXISTS signals_webhook ON signals (webhook_state, webhook_next);
CREATE TABLE IF NOT EXISTS windows (rule_id TEXT NOT NULL, grp TEXT NOT NULL, data TEXT NOT NULL,
                                    PRIMARY KEY (rule_id, grp));
CREATE TABLE IF NOT EXISTS learning (rule_id TEXT NOT NULL, grp TEXT NOT NULL, start INTEGER NOT NULL,
                                     PRIMARY KEY (rule_id, grp));
CREATE TABLE IF NOT EXISTS learned (rule_id TEXT NOT NULL, grp TEXT NOT NULL, value TEXT NOT NULL,
                                    PRIMARY KEY (rule_id, grp, value));
CREATE TABLE IF NOT EXISTS disabled_rules (rule_id TEXT PRIMARY KEY, by TEXT NOT NULL, at INTEGER NOT NULL);
"""


class Database:
    def __init__(self, data_dir: str | None, fsync: bool = False) -> None:
        """`data_dir` None: in memory (rule test suites)."""
        if data_dir is None:
            path = ":memory:"
        else:
            os.makedirs(data_dir, exist_ok=True)
            path = os.path.join(data_dir, "detection.sqlite")
        self.path = path
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        if path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self.conn.executescript(SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.conn.close()
