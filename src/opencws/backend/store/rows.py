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


_ids: list[str] = []


def new_id() -> str:
    """A random event id (96 bits, hex): the tie-breaker of the newest-first order. Drawn from the system's
    random source 4,096 at a time (one call each instead of one per event)."""
    try:
        return _ids.pop()
    except IndexError:
        block = secrets.token_hex(12 * 4096)
        _ids.extend(block[i : i + 24] for i in range(0, len(block), 24))
        return _ids.pop()


Lineage = tuple[str, list[str], list[str]]
"""What the rows need of a process's ancestors: the first one's executable path, and every one's executable
path and name (`lineage_of`)."""


def lineage_of(ancestors: Any) -> Lineage:
    """The typed columns' part of `process.ancestors` (a list of Structs, strict or lenient)."""
    exes = [a.executable or _NONE for a in ancestors]
    return (exes[0].path or "" if exes else ""), [x.path or "" for x in exes], [_name(x) for x in exes]


def event_date(event: Any, received_ns: int) -> int:
    """The event's date in nanoseconds (when it was received if it has none)."""
    return parse_timestamp(event.date) if event.date else received_ns


_HOURS: dict[str, int] = {}


def plain_date(event: Any, received_ns: int) -> int:
    """`event_date` for a strict event, whose dates `opencws.schema.structs` checked (`YYYY-MM-DDTHH:MM:SS`,
    up to 9 fraction digits, `Z` or an offset; no leap second): in UTC, each hour's start computed once."""
    text = event.date
    if not text:
        return received_ns
    if text[-1] != "Z":
        return parse_timestamp(text)
    hour = _HOURS.get(text[:13])
    if hour is None:
        if len(_HOURS) >= 10_000:
            _HOURS.clear()
        hour = _HOURS[text[:13]] = parse_timestamp(text[:13] + ":00:00Z") // 1_000_000_000
    frac = text[20:-1]
    ns = int(frac.ljust(9, "0")) if frac else 0
    return (hour + int(text[14:16]) * 60 + int(text[17:19])) * 1_000_000_000 + ns


def event_row(
    event: Any, env: Envelope, received_ns: int, raw: Any, lineage: Lineage | None = None,
    context: str = "", date: int | None = None,
) -> tuple[Any, ...]:  # fmt: skip
    """The row, in `tables.COLUMNS` order, of an event valid against the schema: `event` is its Struct
    (`opencws.schema.structs`, strict or lenient; absent values are UNSET, which is false), `raw` its JSON
    (a `rowbinary.Cut` when its ancestors are stored apart, under the key `context`). `lineage` stands for
    `process.ancestors` when the Struct holds them as text (the cut family); `date` is `event_date`'s."""
    if date is None:
        date = event_date(event, received_ns)
    evt = event.evt or _NONE
    p = event.process or _NONE
    creds = p.credentials
    uid = (creds.uid if creds else p.uid) or 0
    user = (creds or _NONE).user or p.user or ""
    first_path, anc_paths, anc_names = lineage or lineage_of(p.ancestors or ())
    parent = p.parent
    parent_path = ((parent.executable or _NONE).path or "") if parent else first_path
    container_id = (event.container or _NONE).id or (p.container or _NONE).id or ""
    exe = p.executable or _NONE
    f = event.file or _NONE
    dest = f.destination or _NONE
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
        parent_path,
        anc_paths,
        anc_names,
        container_id,
        f.path or "",
        _name(f),
        dest.path or "",
        context,
        raw.at if context else 0,
        raw,
    )


def row_of_dict(event: dict[str, Any], env: Envelope, received_ns: int) -> tuple[Any, ...]:
    """The slow twin's way in: an event dict the exact validator accepted (its strings may hold the lone
    surrogates of `opencws.model.jsontext`, written back as `\\udcXX` escapes)."""
    return event_row(lenient(event), env, received_ns, jsontext.dumps(event))
