"""An accepted event (and its envelope) → a row of the events table.

Hot path of the intake: the typed columns are read from the event's Struct directly. Each column must hold
what SECL's getter reads for the fields mapped to it (missing values as ""/0); `tests/backend/test_rows.py`
holds the two together on varied events.
"""

from __future__ import annotations

import datetime
import posixpath
import secrets
from dataclasses import dataclass, field
from typing import Any

from msgspec import UNSET

from opencws.model import jsontext
from opencws.model.codec import parse_timestamp
from opencws.schema.structs import lenient

_EPOCH = datetime.date(1970, 1, 1)
_NS_PER_DAY = 86_400 * 1_000_000_000


class _Absent:
    """Any field of an absent part: UNSET (false)."""

    def __getattr__(self, name: str) -> Any:
        return UNSET

    def __bool__(self) -> bool:
        return False


_NONE = _Absent()


@dataclass(slots=True)
class Envelope:
    """What the agent's reporter wraps around an event (all optional)."""

    rule_id: str = ""
    rule_version: str = ""
    policy: str = ""
    host: str = ""
    agent_version: str = ""
    tags: list[str] = field(default_factory=list)


def _name(f: Any) -> str:
    path = f.path or ""
    return f.name or (posixpath.basename(path) if path else "") or ""


def day_of(ns: int) -> datetime.date:
    return _EPOCH + datetime.timedelta(days=ns // _NS_PER_DAY)


def new_id() -> str:
    """A random event id (96 bits, hex): the tie-breaker of the newest-first order."""
    return secrets.token_hex(12)


def event_row(event: Any, env: Envelope, received_ns: int, raw: bytes) -> tuple[Any, ...]:
    """The row, in `tables.COLUMNS` order, of an event valid against the schema: `event` is its Struct
    (`opencws.schema.structs`, strict or lenient; absent values are UNSET, which is false), `raw` its JSON."""
    date_text = event.date
    date = parse_timestamp(date_text) if date_text else received_ns
    evt = event.evt or _NONE
    p = event.process or _NONE
    creds = p.credentials
    uid = (creds.uid if creds else p.uid) or 0
    user = (creds or _NONE).user or p.user or ""
    ancestors = p.ancestors or ()
    parent = p.parent
    if not parent and ancestors:
        parent = ancestors[0]
    container_id = (event.container or _NONE).id or (p.container or _NONE).id or ""
    exe = p.executable or _NONE
    f = event.file or _NONE
    dest = f.destination or _NONE
    anc_exes = [a.executable or _NONE for a in ancestors]
    return (
        day_of(date),
        date,
        new_id(),
        evt.name or "",
        evt.outcome or "",
        env.host,
        env.rule_id,
        env.rule_version,
        env.policy,
        env.agent_version,
        env.tags,
        p.pid or 0,
        p.ppid or 0,
        uid,
        user,
        p.comm or "",
        exe.path or "",
        _name(exe),
        ((parent or _NONE).executable or _NONE).path or "",
        [x.path or "" for x in anc_exes],
        [_name(x) for x in anc_exes],
        container_id,
        f.path or "",
        _name(f),
        dest.path or "",
        raw,
    )


def row_of_dict(event: dict[str, Any], env: Envelope, received_ns: int) -> tuple[Any, ...]:
    """The slow twin's way in: an event dict the exact validator accepted (its strings may hold the lone
    surrogates of `opencws.model.jsontext`, written back as `\\udcXX` escapes)."""
    return event_row(lenient(event), env, received_ns, jsontext.dumps(event))
