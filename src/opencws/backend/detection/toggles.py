"""Rules an admin turned off: kept in detection.sqlite (`disabled_rules`), so a restart keeps them off.

A disabled rule stays loaded and listed; the evaluator skips it from the next batch on, and keeps its windows
and learned values (enabling it again resumes where it was)."""

from __future__ import annotations

import time
from typing import Any

from opencws.backend.detection.db import Database


class RuleToggles:
    def __init__(self, db: Database) -> None:
        self.db = db

    def disabled(self) -> dict[str, dict[str, Any]]:
        """rule id → {by, at (ns)} for each disabled rule."""
        with self.db.lock:
            rows = self.db.conn.execute("SELECT rule_id, by, at FROM disabled_rules").fetchall()
        return {rid: {"by": by, "at": at} for rid, by, at in rows}

    def set(self, rule_id: str, enabled: bool, by: str) -> bool:
        """Turn a rule on or off; whether that changed anything."""
        with self.db.transaction() as conn:
            if enabled:
                return conn.execute("DELETE FROM disabled_rules WHERE rule_id = ?", (rule_id,)).rowcount > 0
            cur = conn.execute(
                "INSERT OR IGNORE INTO disabled_rules VALUES (?, ?, ?)", (rule_id, by, time.time_ns())
            )
            return cur.rowcount > 0
