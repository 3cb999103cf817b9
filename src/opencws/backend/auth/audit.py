"""The audit log: every change (signal status and comment, detection rule, user, API key) and every failed
sign-in, with who did it, when, to what, and the details. Kept in `audit.sqlite` in the data directory
(WAL mode: the CLI appends while the server runs); entries are only ever added."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson

from opencws.backend.auth.principal import label

MAX_DETAIL = 8192  # bytes of JSON kept per entry


@dataclass(frozen=True)
class Entry:
    id: int
    at: float  # seconds since the epoch
    actor: str
    action: str  # "signal.status", "user.add", "signin.failed"...
    target: str
    detail: Any


class AuditLog:
    def __init__(self, data_dir: str) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self._db = sqlite3.connect(
            os.path.join(data_dir, "audit.sqlite"), check_same_thread=False, isolation_level=None, timeout=10
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, "
            "actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL)"
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def __call__(self, actor: object, action: str, target: object = "", detail: Any = None) -> Entry:
        """Records a change: `actor` is a principal (an API key or a session) or a name; `detail` any JSON."""
        text = orjson.dumps(detail, default=str, option=orjson.OPT_NON_STR_KEYS)
        if len(text) > MAX_DETAIL:
            text = orjson.dumps({"truncated": text[:MAX_DETAIL].decode(errors="ignore")})
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                (now, label(actor), action, str(target), text.decode()),
            )
        return Entry(cur.lastrowid or 0, now, label(actor), action, str(target), orjson.loads(text))

    def entries(
        self, *, before: int | None = None, limit: int = 100, action: str | None = None, actor: str | None = None,
        target: str | None = None,
    ) -> list[Entry]:  # fmt: skip
        """Newest first; `before` is an entry id (the page cursor); `action` matches a prefix ("signal.")."""
        sql, args = "SELECT id, at, actor, action, target, detail FROM audit WHERE 1", []
        if before is not None:
            sql, args = sql + " AND id < ?", [*args, before]
        if action:
            sql, args = sql + " AND substr(action, 1, ?) = ?", [*args, len(action), action]
        if actor:
            sql, args = sql + " AND actor = ?", [*args, actor]
        if target:
            sql, args = sql + " AND target = ?", [*args, target]
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()
        return [Entry(r[0], r[1], r[2], r[3], r[4], orjson.loads(r[5])) for r in rows]
