"""Search and investigation: `/api/v1/events` (GET and POST .../search), one event, its process tree,
facets and counts over time. The filter `q` is SECL; a bad one answers 400 with SECL's message and caret."""

from __future__ import annotations

import re
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field

from opencws.backend import cursor as cursors
from opencws.backend.dependencies import MetricsDep, ReadKey, SettingsDep, StoreDep
from opencws.backend.metrics import Metrics
from opencws.backend.routers.answers import hit_json, json_response, store_call, time_param
from opencws.backend.settings import Settings
from opencws.backend.store import Hit, Store
from opencws.backend.tree import process_tree
from opencws.model.codec import format_timestamp
from opencws.secl.errors import SeclError
from opencws.secl.sql import Search, compile_search
from opencws.secl.sql.search import MAX_SEARCH_LENGTH

router = APIRouter(prefix="/api/v1", tags=["search"])

QParam = Annotated[
    str, Query(max_length=MAX_SEARCH_LENGTH, description="a SECL expression (empty: every event)")
]
FromParam = Annotated[str | None, Query(alias="from", max_length=64, description="RFC 3339, inclusive")]
ToParam = Annotated[str | None, Query(max_length=64, description="RFC 3339, exclusive")]
HostParam = Annotated[str | None, Query(max_length=1024, description="only events sent with this host")]
RuleParam = Annotated[str | None, Query(max_length=1024, description="only events sent for this rule")]

_DURATION = re.compile(r"^([1-9][0-9]{0,9})(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_FAR = 2**62




def _compile(q: str, host: str | None = None, rule_id: str | None = None) -> Search:
    try:
        search = compile_search(q)
    except SeclError as e:
        raise HTTPException(
            400,
            {
                "message": e.message,
                "expression": e.source_line,
                "caret": e.caret,
                "position": e.pos,
                "text": str(e),
            },
        ) from None
    # Envelope filters (not SECL fields: the evaluator sees the event only), exact in SQL.
    for column, value in (("host", host), ("rule_id", rule_id)):
        if value:
            name = f"e_{column}"
            search.where.sql = f"({search.where.sql}) AND {column} = {{{name}:String}}"
            search.where.params[name] = value
    return search



def _range(t_from: str | None, t_to: str | None) -> tuple[int, int]:
    a, b = time_param(t_from, "from", 0), time_param(t_to, "to", _FAR)
    if a >= b:
        raise HTTPException(400, "'from' must be before 'to'")
    return a, b



class SearchRequest(BaseModel):
    q: str = Field("", max_length=MAX_SEARCH_LENGTH, description="a SECL expression (empty: every event)")
    from_: str | None = Field(None, alias="from", description="RFC 3339, inclusive")
    to: str | None = Field(None, description="RFC 3339, exclusive")
    limit: int = Field(100, ge=1, le=10_000)
    cursor: str | None = Field(None, max_length=200)
    host: str | None = Field(None, max_length=1024, description="only events sent with this host")
    rule_id: str | None = Field(None, max_length=1024, description="only events sent for this rule")


def _search(req: SearchRequest, store: Store, settings: Settings, metrics: Metrics) -> Response:
    start = time.perf_counter()
    if req.limit > settings.max_page:
        raise HTTPException(400, f"'limit' is at most {settings.max_page}")
    search = _compile(req.q, req.host, req.rule_id)
    t_from, t_to = _range(req.from_, req.to)
    position = None
    if req.cursor:
        try:
            position = cursors.decode(req.cursor)
        except cursors.CursorError as e:
            raise HTTPException(400, str(e)) from None
    page = store_call(store.search, search, t_from, t_to, position, req.limit)
    metrics.search_seconds.observe(time.perf_counter() - start)
    return json_response(
        {"events": [hit_json(h) for h in page.hits], "next": cursors.encode(page.next) if page.next else None}
    )


_SEARCH_DOC = (
    "Events matching the SECL expression `q`, newest first; `next` is the cursor of the following page "
    "(null at the end). Needs the `read` scope."
)


@router.get(
    "/events", summary="Search events", description=_SEARCH_DOC, responses={400: {}, 401: {}, 403: {}}
)
def get_events(
    *,
    q: QParam = "",
    from_: FromParam = None,
    to: ToParam = None,
    host: HostParam = None,
    rule_id: RuleParam = None,
    limit: int = Query(100, ge=1, le=10_000),
    cursor: str | None = Query(None, max_length=200),
    _: ReadKey,
    store: StoreDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> Response:
    req = SearchRequest.model_validate(
        {"q": q, "from": from_, "to": to, "limit": limit, "cursor": cursor, "host": host, "rule_id": rule_id}
    )
    return _search(req, store, settings, metrics)


@router.post(
    "/events/search",
    summary="Search events (body)",
    description=_SEARCH_DOC,
    responses={400: {}, 401: {}, 403: {}},
)
def post_search(
    req: SearchRequest,
    _: ReadKey,
    store: StoreDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> Response:
    return _search(req, store, settings, metrics)


def _event(store: Store, event_id: str) -> Hit:
    if not re.fullmatch(r"[0-9a-f]{1,64}", event_id):
        raise HTTPException(404, "no such event")
    hit = store_call(store.get, event_id)
    if hit is None:
        raise HTTPException(404, "no such event")
    return hit


@router.get("/events/{event_id}", summary="One event", responses={404: {}})
def get_event(event_id: str, _: ReadKey, store: StoreDep) -> Response:
    return json_response(hit_json(_event(store, event_id)))


@router.get("/events/{event_id}/tree", summary="An event's process tree", responses={404: {}})
def get_tree(
    *,
    event_id: str,
    window: str = Query(
        "1h", description="how far around the event to look for other processes (30s, 5m, 1h, 1d)"
    ),
    _: ReadKey,
    store: StoreDep,
) -> Response:
    hit = _event(store, event_id)
    tree = store_call(process_tree, store, hit, _duration(window, "window"))
    return json_response(tree)


def _duration(text: str, name: str) -> int:
    m = _DURATION.match(text)
    if m is None:
        raise HTTPException(400, f"'{name}': a duration such as 30s, 5m, 1h or 1d")
    return int(m.group(1)) * _UNITS[m.group(2)] * 1_000_000_000


@router.get("/facets", summary="Top values of a field among matching events")
def get_facets(
    *,
    field: str = Query(..., max_length=200, description="a SECL field (process.file.path, evt.name...)"),
    q: QParam = "",
    from_: FromParam = None,
    to: ToParam = None,
    host: HostParam = None,
    rule_id: RuleParam = None,
    limit: int = Query(10, ge=1, le=1000),
    _: ReadKey,
    store: StoreDep,
) -> Response:
    search = _compile(q, host, rule_id)
    t_from, t_to = _range(from_, to)
    try:
        top, complete = store_call(store.facet, search, field, t_from, t_to, limit)
    except ValueError as e:
        raise HTTPException(400, str(e)) from None
    return json_response({"field": field, "values": [{"value": v, "count": c} for v, c in top], "complete": complete})


@router.get("/timeseries", summary="Counts of matching events over time")
def get_timeseries(
    *,
    q: QParam = "",
    from_: FromParam = None,
    to: ToParam = None,
    host: HostParam = None,
    rule_id: RuleParam = None,
    interval: str = Query("1h", max_length=16, description="bucket width: 30s, 5m, 1h, 1d"),
    _: ReadKey,
    store: StoreDep,
) -> Response:
    search = _compile(q, host, rule_id)
    t_from, t_to = _range(from_, to)
    step = _duration(interval, "interval")
    series, complete = store_call(store.timeseries, search, t_from, t_to, step)
    return json_response(
        {
            "interval": interval,
            "buckets": [{"start": format_timestamp(b), "count": c} for b, c in series],
            "complete": complete,
        }
    )
