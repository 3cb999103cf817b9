"""API keys: created, listed and revoked with the data directory, checked on every request.

Keys live in an SQLite file beside the store (`keys.sqlite`), so the CLI can change them while the server
runs and the server sees a change at the next request. Only a SHA-256 of each key's secret is kept: keys
are 256-bit random values, so a fast hash is enough (no password stretching needed). A key reads
`ocws_<id>_<secret>`; the id names it in lists and logs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass

from opencws.backend.nowait import holding

SCOPES = ("ingest", "read", "admin")
DEFAULT_SCOPES = ("ingest",)


class KeysError(ValueError):
    """A key operation that cannot be done (unknown key, bad scope)."""


@dataclass(frozen=True)
class Key:
    id: str
    name: str
    scopes: tuple[str, ...]
    created: int  # seconds since the epoch
    revoked: int | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(text: str) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise KeysError(f"invalid scope(s) {', '.join(bad) or '(none)'}: choose among {', '.join(SCOPES)}")
    return scopes


class KeyStore:
    def __init__(self, data_dir: str) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "keys.sqlite")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, hash TEXT NOT NULL, name TEXT NOT NULL, "
            "scopes TEXT NOT NULL, created INTEGER NOT NULL, revoked INTEGER)"
        )

    def close(self) -> None:
        self._db.close()

    def create(self, name: str = "", scopes: tuple[str, ...] = DEFAULT_SCOPES) -> tuple[Key, str]:
        """A new key and its text (shown once: only its hash is kept)."""
        for s in scopes:
            if s not in SCOPES:
                raise KeysError(f"invalid scope {s!r}: choose among {', '.join(SCOPES)}")
        kid, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        key = Key(kid, name, tuple(scopes), int(time.time()), None)
        with self._lock:
            self._db.execute(
                "INSERT INTO keys VALUES (?, ?, ?, ?, ?, NULL)",
                (kid, _hash(secret), name, ",".join(scopes), key.created),
            )
        return key, f"ocws_{kid}_{secret}"

    def list(self) -> list[Key]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, name, scopes, created, revoked FROM keys ORDER BY created, id"
            ).fetchall()
        return [Key(r[0], r[1], tuple(r[2].split(",")), r[3], r[4]) for r in rows]

    def revoke(self, key_or_id: str) -> Key:
        kid = (
            key_or_id.split("_")[1]
            if key_or_id.startswith("ocws_") and key_or_id.count("_") >= 2
            else key_or_id
        )
        with self._lock:
            cur = self._db.execute(
                "UPDATE keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (int(time.time()), kid)
            )
            if cur.rowcount == 0:
                known = self._db.execute("SELECT 1 FROM keys WHERE id = ?", (kid,)).fetchone()
                raise KeysError(f"key {kid} is already revoked" if known else f"no key {kid}")
        return next(k for k in self.list() if k.id == kid)

    def check(self, token: str, wait: bool = True) -> Key | None:
        """The live key `token` is, or None (unknown, malformed or revoked); `nowait.Busy` when `wait` is false
        and another thread is using the store."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "ocws" or len(token) > 200:
            return None
        kid, secret = parts[1], parts[2]
        with holding(self._lock, wait):
            row = self._db.execute(
                "SELECT hash, name, scopes, created, revoked FROM keys WHERE id = ?", (kid,)
            ).fetchone()
        if row is None or row[4] is not None or not hmac.compare_digest(row[0], _hash(secret)):
            return None
        return Key(kid, row[1], tuple(row[2].split(",")), row[3], None)
