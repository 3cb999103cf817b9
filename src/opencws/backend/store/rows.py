"""An accepted event (and its envelope) → a row of the events table.

Hot path of the intake: the typed columns are read from the event's JSON directly. Each column must hold
what SECL's getter reads for the fields mapped to it (missing values as ""/0); `tests/backend/test_rows.py`
holds the two together on varied events.
"""

from __future__ import annotations

import datetime
import posixpath
import secrets
from dataclasses import dataclass, field
from typing import Any

import orjson

from opencws.model.codec import parse_timestamp

_EPOCH = datetime.date(1970, 1, 1)
_NS_PER_DAY = 86_400 * 1_000_000_000


@dataclass(slots=True)
class Envelope:
    """What the agent's reporter wraps around an event (all optional)."""

    rule_id: str = ""
    rule_version: str = ""
    policy: str = ""
    host: str = ""
    agent_version: str = ""
    tags: list[str] = field(default_factory=list)


def _name(f: dict[str, Any]) -> str:
    path = f.get("path") or ""
    return f.get("name") or (posixpath.basename(path) if path else "") or ""


def _exe(p: dict[str, Any] | None) -> dict[str, Any]:
    if not p:
        return {}
    return p.get("executable") or {}


def day_of(ns: int) -> datetime.date:
    return _EPOCH + datetime.timedelta(days=ns // _NS_PER_DAY)


def new_id() -> str:
    """A random event id (96 bits, hex): the tie-breaker of the newest-first order."""
    return secrets.token_hex(12)


def event_row(event: dict[str, Any], env: Envelope, received_ns: int) -> tuple[Any, ...]:
    """The row, in `tables.COLUMNS` order. `event` is valid against the schema."""
    date_text = event.get("date")
    date = parse_timestamp(date_text) if date_text else received_ns
    evt = event.get("evt") or {}
    p = event.get("process") or {}
    creds = p.get("credentials")
    uid = (creds.get("uid") if creds is not None else p.get("uid")) or 0
    user = (creds or {}).get("user") or p.get("user") or ""
    ancestors = p.get("ancestors") or []
    parent = p.get("parent")
    if parent is None and ancestors:
        parent = ancestors[0]
    cont = event.get("container") or {}
    container_id = cont.get("id") or (p.get("container") or {}).get("id") or ""
    exe = _exe(p)
    f = event.get("file") or {}
    dest = f.get("destination") or {}
    anc_exes = [a.get("executable") for a in ancestors]
    return (
        day_of(date),
        date,
        new_id(),
        evt.get("name") or "",
        evt.get("outcome") or "",
        env.host,
        env.rule_id,
        env.rule_version,
        env.policy,
        env.agent_version,
        env.tags,
        p.get("pid") or 0,
        p.get("ppid") or 0,
        uid,
        user,
        p.get("comm") or "",
        exe.get("path") or "",
        _name(exe),
        _exe(parent).get("path") or "",
        [(x or {}).get("path") or "" for x in anc_exes],
        [_name(x or {}) for x in anc_exes],
        container_id,
        f.get("path") or "",
        _name(f),
        (dest.get("path") or "") if isinstance(dest, dict) else "",
        orjson.dumps(event).decode(),
    )
