"""An event's process tree: its process and ancestors (from the event itself), and the processes seen
around it on the same host (children, siblings) with their events."""

from __future__ import annotations

from typing import Any

from opencws.backend.store import Hit, Store
from opencws.model import jsontext
from opencws.model.codec import format_timestamp
from opencws.secl.sql import Search
from opencws.secl.sql.generator import Where

MAX_EVENTS = 500


def _entry(p: dict[str, Any]) -> dict[str, Any]:
    exe = p.get("executable") or {}
    return {k: v for k, v in (("pid", p.get("pid")), ("ppid", p.get("ppid")), ("comm", p.get("comm")),
                              ("path", exe.get("path")), ("args", p.get("args"))) if v is not None}  # fmt: skip


def _summary(h: Hit) -> dict[str, Any]:
    e = jsontext.loads(h.event)
    out = {"id": h.id, "date": format_timestamp(h.date), "type": (e.get("evt") or {}).get("name")}
    f = e.get("file") or {}
    if f.get("path"):
        out["file"] = f["path"]
    return out


def _group(hits: list[Hit]) -> list[dict[str, Any]]:
    by_pid: dict[int, dict[str, Any]] = {}
    for h in sorted(hits, key=lambda h: h.date):
        p = (jsontext.loads(h.event).get("process")) or {}
        g = by_pid.setdefault(p.get("pid") or 0, {**_entry(p), "events": []})
        g["events"].append(_summary(h))
    return list(by_pid.values())


def process_tree(store: Store, hit: Hit, window: int) -> dict[str, Any]:
    event = jsontext.loads(hit.event)
    p = event.get("process") or {}
    pid, ppid = p.get("pid") or 0, p.get("ppid") or 0
    t_from, t_to = max(hit.date - window, 0), hit.date + window

    def around(cond: str, params: dict[str, Any]) -> list[Hit]:
        where = Where(f"host = {{host:String}} AND ({cond})", {"host": hit.host, **params})
        return store.search(Search("", None, where, None), t_from, t_to, None, MAX_EVENTS).hits

    same = around("process_pid = {pid:Int64}", {"pid": pid})
    children = around("process_ppid = {pid:Int64} AND process_pid != {pid:Int64}", {"pid": pid})
    siblings = around(
        "process_ppid = {ppid:Int64} AND process_pid != {pid:Int64} AND process_pid != {ppid:Int64}",
        {"pid": pid, "ppid": ppid},
    ) if ppid else []  # fmt: skip
    return {
        "event": {"id": hit.id, "date": format_timestamp(hit.date), "host": hit.host},
        "process": {**_entry(p), "events": [_summary(h) for h in sorted(same, key=lambda h: h.date)]},
        "ancestors": [_entry(a) for a in p.get("ancestors") or []],
        "children": _group(children),
        "siblings": _group(siblings),
    }
