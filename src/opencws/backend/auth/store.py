"""`auth.sqlite`: the users and the sessions, one SQLite file in WAL mode shared by the server and the CLI."""

from __future__ import annotations

import os
import sqlite3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,          -- public id (audit, listing)
    secret_hash TEXT NOT NULL UNIQUE,  -- SHA-256 of the cookie's secret
    csrf TEXT NOT NULL,
    user TEXT,                    -- signed in as a user...
    key_id TEXT,                  -- ...or with an API key
    created REAL NOT NULL, seen REAL NOT NULL, address TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user);
"""


def connect(data_dir: str) -> sqlite3.Connection:
    os.makedirs(data_dir, exist_ok=True)
    db = sqlite3.connect(
        os.path.join(data_dir, "auth.sqlite"), check_same_thread=False, isolation_level=None, timeout=10
    )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    return db
