"""Signals: what a detection rule raised for one group and window, its sample events, its triage status with
history, and the state of its webhook delivery. Stored in detection's SQLite file."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from opencws.backend.detection.db import Database
from opencws.model.codec import format_timestamp

STATUSES = ("open", "under_review", "archived")
MAX_SAMPLES = 10  # events kept per signal (their date and id): the first ones
MAX_COMMENT = 4000


class SignalError(ValueError):
    """A status change that cannot be done (400)."""


@dataclass
class Signal:
    id: str
    rule_id: str
    title: str
    message: str
    severity: str
    group: dict[str, Any]
    first_seen: int
    last_seen: int
    count: int
    samples: list[list[Any]] = field(default_factory=list)  # [date, event id] of the first events
    status: str = "open"
    history: list[dict[str, Any]] = field(default_factory=list)
    webhook: dict[str, Any] | None = None

    def add(self, date: int, event_id: str) -> None:
        self.count += 1
        self.first_seen = min(self.first_seen, date)
        self.last_seen = max(self.last_seen, date)
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append([date, event_id])

    @property
    def event_ids(self) -> list[str]:
        return [i for _, i in self.samples]

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id, "rule_id": self.rule_id, "title": self.title, "message": self.message,
            "severity": self.severity, "status": self.status, "group": self.group,
            "first_seen": format_timestamp(self.first_seen), "last_seen": format_timestamp(self.last_seen),
            "count": self.count, "event_ids": self.event_ids, "history": self.history, "webhook": self.webhook,
        }  # fmt: skip


def new_signal_id() -> str:
    return secrets.token_hex(8)


_COLUMNS = (
    "id, rule_id, title, message, severity, status, grp, first_seen, last_seen, count, samples, history, "
    "webhook_state, webhook_attempts, webhook_error, seq"
)


def _from_row(r: tuple[Any, ...]) -> Signal:
    webhook = None if r[12] is None else {"state": r[12], "attempts": r[13], "last_error": r[14]}
    return Signal(
        id=r[0], rule_id=r[1], title=r[2], message=r[3], severity=r[4], status=r[5], group=orjson.loads(r[6]),
        first_seen=r[7], last_seen=r[8], count=r[9], samples=orjson.loads(r[10]), history=orjson.loads(r[11]),
        webhook=webhook,
    )  # fmt: skip


class SignalStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- written by the evaluator, in its batch's transaction ------------------------------------------

    @staticmethod
    def write(conn: Any, new: list[Signal], updated: list[Signal], webhook: bool) -> None:
        now = time.time()
        conn.executemany(
            "INSERT INTO signals (id, rule_id, title, message, severity, status, grp, first_seen, last_seen, "
            "count, samples, history, webhook_state, webhook_next) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (s.id, s.rule_id, s.title, s.message, s.severity, s.status, orjson.dumps(s.group).decode(),
                 s.first_seen, s.last_seen, s.count, orjson.dumps(s.samples).decode(),
                 orjson.dumps(s.history).decode(), "pending" if webhook else None, now if webhook else None)
                for s in new
            ],
        )  # fmt: skip
        conn.executemany(
            "UPDATE signals SET count = ?, first_seen = ?, last_seen = ?, samples = ? WHERE id = ?",
            [(s.count, s.first_seen, s.last_seen, orjson.dumps(s.samples).decode(), s.id) for s in updated],
        )

    # --- the API ---------------------------------------------------------------------------------------

    def list(
        self, *, status: str | None = None, rule_id: str | None = None, severity: str | None = None,
        t_from: int | None = None, t_to: int | None = None, limit: int = 100, cursor: int | None = None,
    ) -> tuple[list[Signal], int | None]:  # fmt: skip
        """Newest first (by creation); the cursor is the last one's position."""
        cond, params = [], []
        for col, v in (("status", status), ("rule_id", rule_id), ("severity", severity)):
            if v:
                cond.append(f"{col} = ?")
                params.append(v)
        if t_from is not None:
            cond.append("last_seen >= ?")
            params.append(t_from)
        if t_to is not None:
            cond.append("first_seen < ?")
            params.append(t_to)
        if cursor is not None:
            cond.append("seq < ?")
            params.append(cursor)
        where = f"WHERE {' AND '.join(cond)}" if cond else ""
        with self.db.lock:
            rows = self.db.conn.execute(
                f"SELECT {_COLUMNS} FROM signals {where} ORDER BY seq DESC LIMIT ?", (*params, limit + 1)
            ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return [_from_row(r) for r in rows], (rows[-1][15] if more and rows else None)

    def get(self, signal_id: str) -> Signal | None:
        with self.db.lock:
            r = self.db.conn.execute(f"SELECT {_COLUMNS} FROM signals WHERE id = ?", (signal_id,)).fetchone()
        return _from_row(r) if r else None

    def set_status(self, signal_id: str, status: str, by: str, comment: str | None) -> Signal | None:
        """The signal after the change (None: unknown id); SignalError for a bad status or comment."""
        if status not in STATUSES:
            raise SignalError(f"unknown status {status!r}: choose among {', '.join(STATUSES)}")
        if comment is not None and len(comment) > MAX_COMMENT:
            raise SignalError(f"the comment is longer than {MAX_COMMENT} characters")
        with self.db.transaction() as conn:
            row = conn.execute("SELECT history FROM signals WHERE id = ?", (signal_id,)).fetchone()
            if row is None:
                return None
            history = orjson.loads(row[0])
            history.append(
                {"status": status, "by": by, "at": format_timestamp(time.time_ns()), "comment": comment}
            )
            conn.execute(
                "UPDATE signals SET status = ?, history = ? WHERE id = ?",
                (status, orjson.dumps(history).decode(), signal_id),
            )
        return self.get(signal_id)

    def count(self) -> int:
        with self.db.lock:
            return int(self.db.conn.execute("SELECT count(*) FROM signals").fetchone()[0])

    # --- the webhook queue -----------------------------------------------------------------------------

    def due_deliveries(self, now: float, limit: int = 20) -> list[Signal]:
        with self.db.lock:
            rows = self.db.conn.execute(
                f"SELECT {_COLUMNS} FROM signals WHERE webhook_state = 'pending' AND webhook_next <= ? "
                "ORDER BY webhook_next, seq LIMIT ?",
                (now, limit),
            ).fetchall()
        return [_from_row(r) for r in rows]

    def next_delivery(self) -> float | None:
        with self.db.lock:
            r = self.db.conn.execute(
                "SELECT min(webhook_next) FROM signals WHERE webhook_state = 'pending'"
            ).fetchone()
        return r[0]

    def delivered(self, signal_id: str, attempts: int) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE signals SET webhook_state = 'delivered', webhook_attempts = ?, webhook_next = NULL WHERE id = ?",
                (attempts, signal_id),
            )

    def failed(self, signal_id: str, attempts: int, error: str, retry_at: float | None) -> None:
        """An attempt failed: retried at `retry_at`, or given up (None)."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE signals SET webhook_state = ?, webhook_attempts = ?, webhook_error = ?, webhook_next = ? "
                "WHERE id = ?",
                ("pending" if retry_at is not None else "failed", attempts, error, retry_at, signal_id),
            )

    def webhook_summary(self) -> dict[str, Any]:
        with self.db.lock:
            counts = dict(
                self.db.conn.execute(
                    "SELECT webhook_state, count(*) FROM signals WHERE webhook_state IS NOT NULL GROUP BY webhook_state"
                ).fetchall()
            )
            last = self.db.conn.execute(
                "SELECT id, webhook_error FROM signals WHERE webhook_error IS NOT NULL ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        return {
            "pending": counts.get("pending", 0), "delivered": counts.get("delivered", 0),
            "failed": counts.get("failed", 0), "last_error": last[1] if last else None,
            "last_error_signal": last[0] if last else None,
        }  # fmt: skip
