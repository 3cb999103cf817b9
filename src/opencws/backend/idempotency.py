"""Idempotent intake: a request sent again with the same `Idempotency-Key` (an agent retrying a batch whose
answer it lost) gets the first answer back instead of storing its events twice.

Answers are remembered per API key for a day, in an SQLite file beside the keys. The answer is also journaled
with the request's rows, in the same write (`receipt`, `Store.insert`): after a crash, the answers the journal
holds and this file does not are recorded at start (`restore`), so a retry of a stored batch gets its answer
even when the crash came between the insert and the recording of its answer.
With WAL and `synchronous=NORMAL` a recorded answer survives a crash of the backend; after a power loss, the
journal's receipts restore those it kept (without `fsync`, a power loss can lose the journal's last records too,
their rows with their answers); with `fsync`, `synchronous=FULL`: every answer is on disk before the request is
answered.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import orjson

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

    @staticmethod
    def receipt(api_key: str, idem: str, answer: bytes) -> bytes:
        """What the journal keeps with a request's rows: its API key, its Idempotency-Key and its answer."""
        return orjson.dumps([api_key, idem, answer.decode()])

    def restore(self, receipts: list[bytes]) -> int:
        """Record the answers of `receipts` (journaled before a crash) that are not here; how many were not."""
        added = 0
        now = int(time.time())
        with self._lock:
            for r in receipts:
                try:
                    api_key, idem, answer = orjson.loads(r)
                except (orjson.JSONDecodeError, TypeError, ValueError):
                    continue  # (written by this module: a defect, not a reason to refuse to start)
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?)", (api_key, idem, answer.encode(), now)
                )
                added += cur.rowcount
        return added

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
