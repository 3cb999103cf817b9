"""Users of the web UI: a name, a role (`read` or `admin`) and an Argon2id password hash.

They live in `auth.sqlite` in the data directory (WAL mode), so `opencws backend users add|remove` works
while the server runs: the server reads the user at every request of a session, so a removed user or a
changed role takes effect at once. Argon2id (argon2-cffi's defaults: 64 MiB, 3 passes) makes each guess
cost memory as well as time; the hash string carries its parameters, so raising them later re-hashes
each password at its next sign-in."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from opencws.backend.auth.store import connect

ROLES = ("read", "admin")
ROLE_SCOPES = {"read": ("read",), "admin": ("read", "admin")}
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")

# A hash of nothing anyone knows, verified when the user does not exist, so that a sign-in takes the same
# time whether or not the name is known.
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("opencws: no such user")


class UsersError(ValueError):
    """A user operation that cannot be done (bad name, role or password; unknown or existing user)."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    created: int

    @property
    def scopes(self) -> tuple[str, ...]:
        return ROLE_SCOPES[self.role]


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UsersError(f"the password is too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UsersError(f"the password is too long: at most {MAX_PASSWORD} characters")


class UserStore:
    def __init__(self, data_dir: str) -> None:
        self._db = connect(data_dir)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def add(self, name: str, role: str, password: str) -> User:
        if not _NAME.fullmatch(name):
            raise UsersError(
                f"invalid user name {name!r}: 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a "
                "letter or digit"
            )
        if role not in ROLES:
            raise UsersError(f"invalid role {role!r}: choose among {', '.join(ROLES)}")
        check_password(password)
        user = User(name, role, int(time.time()))
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO users (name, role, hash, created) VALUES (?, ?, ?, ?)",
                    (name, role, _hasher.hash(password), user.created),
                )
        except sqlite3.IntegrityError:
            raise UsersError(f"user {name!r} already exists") from None
        return user

    def get(self, name: str) -> User | None:
        with self._lock:
            row = self._db.execute("SELECT name, role, created FROM users WHERE name = ?", (name,)).fetchone()
        return User(*row) if row else None

    def list(self) -> list[User]:
        with self._lock:
            rows = self._db.execute("SELECT name, role, created FROM users ORDER BY name").fetchall()
        return [User(*r) for r in rows]

    def remove(self, name: str) -> User:
        """Removes the user and ends its sessions."""
        user = self.get(name)
        if user is None:
            raise UsersError(f"no user {name!r}")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM sessions WHERE user = ?", (name,))
            self._db.execute("DELETE FROM users WHERE name = ?", (name,))
            self._db.execute("COMMIT")
        return user

    def set_password(self, name: str, password: str) -> User:
        """A new password; the user's sessions end (whoever knew the old one is signed out)."""
        check_password(password)
        user = self.get(name)
        if user is None:
            raise UsersError(f"no user {name!r}")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("UPDATE users SET hash = ? WHERE name = ?", (_hasher.hash(password), name))
            self._db.execute("DELETE FROM sessions WHERE user = ?", (name,))
            self._db.execute("COMMIT")
        return user

    def verify(self, name: str, password: str) -> User | None:
        """The user, if `password` is theirs; None otherwise (unknown user included, in the same time)."""
        with self._lock:
            row = self._db.execute(
                "SELECT name, role, created, hash FROM users WHERE name = ?", (name,)
            ).fetchone()
        if len(password) > MAX_PASSWORD:
            return None
        try:
            _hasher.verify(row[3] if row else _DUMMY, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if _hasher.check_needs_rehash(row[3]):
            with self._lock:
                self._db.execute("UPDATE users SET hash = ? WHERE name = ?", (_hasher.hash(password), name))
        return User(row[0], row[1], row[2])
