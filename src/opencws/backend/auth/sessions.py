"""Server-side browser sessions: the cookie holds a random secret, the server keeps its SHA-256, who it
belongs to (a user, or the API key used to sign in), its CSRF token, and when it was made and last used.

A session ends when signed out, after `idle` seconds unused, `lifetime` seconds after sign-in, or when its
user is removed or its key revoked (checked at every request by `dependencies.require`)."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from opencws.backend.auth.store import connect

# `seen` is written at most this often (seconds): a request does not cost a write to the disk.
_TOUCH_EVERY = 30.0


@dataclass(frozen=True)
class Session:
    id: str
    csrf: str
    user: str | None
    key_id: str | None
    created: float
    seen: float
    address: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SessionStore:
    def __init__(self, data_dir: str, idle: float, lifetime: float) -> None:
        self._db = connect(data_dir)
        self._lock = threading.Lock()
        self.idle, self.lifetime = idle, lifetime

    def close(self) -> None:
        self._db.close()

    def create(
        self, address: str, *, user: str | None = None, key_id: str | None = None
    ) -> tuple[Session, str]:
        """A new session and its cookie's secret (only the secret's hash is kept)."""
        now = time.time()
        s = Session(secrets.token_hex(8), secrets.token_urlsafe(32), user, key_id, now, now, address)
        secret = secrets.token_urlsafe(32)
        with self._lock:
            # Expired sessions go when new ones come: the table stays as small as the live sessions.
            self._db.execute(
                "DELETE FROM sessions WHERE seen < ? OR created < ?", (now - self.idle, now - self.lifetime)
            )
            self._db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (s.id, _hash(secret), s.csrf, user, key_id, now, now, address),
            )
        return s, secret

    def get(self, secret: str) -> Session | None:
        """The live session whose cookie holds `secret` (and marks it used), or None."""
        if not secret or len(secret) > 100:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT id, csrf, user, key_id, created, seen, address FROM sessions WHERE secret_hash = ?",
                (_hash(secret),),
            ).fetchone()
            if row is None:
                return None
            s = Session(*row)
            now = time.time()
            if now - s.seen > self.idle or now - s.created > self.lifetime:
                self._db.execute("DELETE FROM sessions WHERE id = ?", (s.id,))
                return None
            if now - s.seen > _TOUCH_EVERY:
                self._db.execute("UPDATE sessions SET seen = ? WHERE id = ?", (now, s.id))
        return s

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
