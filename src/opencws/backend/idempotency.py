"""Idempotent intake: a request sent again with the same `Idempotency-Key` (an agent retrying a batch whose
answer it lost) gets the first answer back instead of storing its events twice.

Answers are remembered per API key for a day, in an SQLite file beside the keys. The answer is recorded
right after the insert: a crash between the two (a window of microseconds) lets one retry store twice.
With WAL and `synchronous=NORMAL` a recorded answer survives a crash of the backend, not a power loss (then a
retry of the last batches stores them twice), as the journal without `fsync`; with `fsync`, `synchronous=FULL`:
every answer is on disk before the request is answered.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time

from opencws.backend.nowait import holding

MAX_KEY_CHARS = 128
KEEP_SECONDS = 86_400


class IdempotencyStore:
    def __init__(self, data_dir: str, fsync: bool = False) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            os.path.join(data_dir, "batches.sqlite"),
            check_same_thread=False,
            isolation_level=None,
            timeout=10,
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (api_key TEXT NOT NULL, idem TEXT NOT NULL, answer BLOB NOT NULL, "
            "created INTEGER NOT NULL, PRIMARY KEY (api_key, idem))"
        )
        self._last_purge = 0.0

    def get(self, api_key: str, idem: str, wait: bool = True) -> bytes | None:
        """The answer recorded for this key, or None; `nowait.Busy` when `wait` is false and another thread is
        using the store."""
        with holding(self._lock, wait):
            row = self._db.execute(
                "SELECT answer FROM answers WHERE api_key = ? AND idem = ? AND created > ?",
                (api_key, idem, int(time.time()) - KEEP_SECONDS),
            ).fetchone()
        return row[0] if row else None

    def put(self, api_key: str, idem: str, answer: bytes) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)", (api_key, idem, answer, int(now))
            )
            if now - self._last_purge > 600:
                self._db.execute("DELETE FROM answers WHERE created <= ?", (int(now) - KEEP_SECONDS,))
                self._last_purge = now

    def close(self) -> None:
        self._db.close()
