"""The store: events written, searched, counted and expired with one set of SQL over any engine.

Searches run the SQL prefilter compiled from SECL (`opencws.secl.sql`), then SECL's evaluator on each event
returned, so results are exactly SECL's answer whatever the SQL could express. Pages are newest first, in
(date, id) order, so a cursor (the last event's date and id) is stable while events arrive.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from opencws.backend.store import tables
from opencws.backend.store.contexts import parse_context, parse_spliced, splice
from opencws.backend.store.engine import Data, Engine, StoreError
from opencws.backend.store.journal import Flusher, Journal, Record
from opencws.backend.store.rowbinary import RowBinaryError, read_rows, row_binary, text_bytes
from opencws.backend.store.rows import day_of
from opencws.model import jsontext
from opencws.model.codec import DecodeError, event_from_json
from opencws.model.view import event_view
from opencws.secl.sql import SEARCH_REGISTRY, Search
from opencws.secl.sql.columns import FIELD_COLUMNS

# Rows examined at most by one request when the SQL is not exact (the rest is reached with the cursor).
MAX_SCAN = 200_000
_MIN_BATCH = 1_000
_MAX_BATCH = 20_000
_FIRST_WINDOW = 3_600 * 1_000_000_000
COMPACT_PART_BYTES = 16 << 20
_MAX_TEXTS_BYTES = 16 << 20


@dataclass(slots=True)
class Hit:
    id: str
    date: int
    host: str
    rule_id: str
    rule_version: str
    policy: str
    agent_version: str
    tags: list[str]
    event: str  # the event's JSON


@dataclass(slots=True)
class Page:
    hits: list[Hit]
    next: tuple[int, str] | None  # (date, id) of the last event looked at, when there may be more


_serials = itertools.count(1)
_EVENT_TYPES = [t for _, t in tables.COLUMNS]
_CONTEXT_TYPES = [t for _, t in tables.CONTEXT_COLUMNS]
_CHECK_CHUNK = 2_000  # keys per query when checking journaled rows against the store
log = logging.getLogger(__name__)


class Store:
    def __init__(self, engine: Engine, database: str = "opencws", cluster: str | None = None) -> None:
        self.serial = next(_serials)  # tells this store from any other of the process (contexts stored in it)
        self.engine = engine
        self.database = database
        self.cluster = cluster
        self.write_table = f"{database}.{tables.DISTRIBUTED_TABLE if cluster else tables.LOCAL_TABLE}"
        self.read_table = self.write_table
        self.contexts_table = f"{database}.{tables.CONTEXTS_TABLE if cluster else tables.CONTEXTS_LOCAL_TABLE}"
        # Contexts read before, by key (a key always names the same text): most pages need no query for them.
        self._texts: dict[str, str] = {}
        self._texts_size = 0
        self._parsed_texts: dict[str, Any] = {}  # ...and parsed, for the SECL check of search results
        self.journal: Journal | None = None
        self._flusher: Flusher | None = None

    def nodes(self) -> list[Engine]:
        return self.engine.shards(self.cluster) if self.cluster else [self.engine]

    def create(self, fsync: bool = False) -> None:
        """Create the database and tables when missing (on every node of the cluster). With `fsync`, every
        insert is flushed to the disk before it returns (MergeTree's `fsync_after_insert`): an acknowledged
        event then survives a power loss too."""
        for node in self.nodes():
            node.execute(tables.create_database(self.database))
            node.execute(tables.create_local_table(self.database))
            self._add_missing_columns(node, tables.LOCAL_TABLE)
            node.execute(tables.create_contexts_table(self.database))
            flag = int(fsync)
            for table in (tables.CONTEXTS_LOCAL_TABLE, tables.LOCAL_TABLE):
                try:
                    node.execute(
                        f"ALTER TABLE {self.database}.{table} "
                        f"MODIFY SETTING fsync_after_insert = {flag}, fsync_part_directory = {flag}"
                    )
                except StoreError as e:
                    if fsync:
                        raise StoreError(
                            f"this ClickHouse cannot flush inserts to disk (fsync_after_insert): {e}"
                        ) from None
            with contextlib.suppress(StoreError):
                # A batch's part in one file rather than two per column (ClickHouse 20.3 and later; 18.16 has
                # none): a third of the insert's CPU time with chdb. Merged parts (beyond 16 MiB) are wide:
                # compact parts compress less and scan slower.
                node.execute(
                    f"ALTER TABLE {self.database}.{tables.LOCAL_TABLE} "
                    f"MODIFY SETTING min_bytes_for_wide_part = {COMPACT_PART_BYTES}"
                )
        if self.cluster:
            self.engine.execute(tables.create_distributed_table(self.database, self.cluster))
            self._add_missing_columns(self.engine, tables.DISTRIBUTED_TABLE)
            self.engine.execute(tables.create_distributed_contexts_table(self.database, self.cluster))

    def _add_missing_columns(self, node: Engine, table: str) -> None:
        """A store made by an older version lacks the newer columns: added (their defaults, "" and 0, say
        that nothing was cut out of its events)."""
        have = {
            str(name)
            for (name,) in node.execute(
                "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}",
                {"db": self.database, "t": table},
            )
        }
        previous = None
        for name, typ in tables.COLUMNS:
            if name not in have:  # names and types of ours, never request text
                after = f" AFTER {previous}" if previous else ""
                node.execute(f"ALTER TABLE {self.database}.{table} ADD COLUMN {name} {typ}{after}")
            previous = name

    def open_journal(self, journal: Journal) -> None:
        """Write through `journal` from now on (`opencws.backend.store.journal`): what it holds from before
        (a crash) is inserted first, leaving out the rows the store already has."""
        self.journal = journal
        self._flusher = Flusher(journal, self._insert_records)
        if journal.pending:
            with contextlib.suppress(StoreError):  # logged; the flusher tries again (and every read first)
                self._flusher.flush()

    def close(self) -> None:
        """Insert everything acknowledged (what cannot be stays in the journal for the next open), then close."""
        try:
            if self._flusher is not None:
                self._flusher.close()
        finally:
            if self.journal is not None:
                self.journal.close()
            self.engine.close()

    def flush(self) -> None:
        """Make sure every acknowledged row is in the engine (every read does this first: an event
        acknowledged is found by the next search). Raises StoreError when an insert fails."""
        if self._flusher is not None and self.journal is not None and self.journal.pending:
            self._flusher.flush()

    def journal_stats(self) -> dict[str, int]:
        """Pending rows, bytes and records of the journal, inserts and insert errors since the open."""
        return self._flusher.stats() if self._flusher is not None else {}

    # --- writing ------------------------------------------------------------------------------------

    def insert(
        self, rows: Sequence[Sequence[Any]], contexts: Sequence[Sequence[Any]] = (),
        encoded: bytes | bytearray | memoryview | None = None, receipt: bytes = b"",
    ) -> int:  # fmt: skip
        """Store events (`tables.COLUMNS` rows) and the new contexts they name (`tables.CONTEXT_COLUMNS`
        rows): the contexts first, so that an event is never stored before the text it needs. `encoded`:
        the RowBinary of `rows` when the caller has it. With a journal, the rows are acknowledged once
        journaled (one record) and inserted later, many requests at once; `receipt` (the request's answer
        to remember) is journaled with them, and handed back by `receipts()` after a crash."""
        if self.journal is None:  # straight into the engine (a store opened without its journal)
            if contexts:
                self.engine.insert(self.contexts_table, tables.CONTEXT_COLUMNS, contexts)
            if encoded is None:
                return self.engine.insert(self.write_table, tables.COLUMNS, rows)
            return self.engine.insert(self.write_table, tables.COLUMNS, data=encoded, count=len(rows))
        if not rows and not contexts:
            return 0
        try:
            ctx = row_binary(contexts, _CONTEXT_TYPES) if contexts else b""
            evt = encoded if encoded is not None else row_binary(rows, _EVENT_TYPES) if rows else b""
        except Exception as e:
            raise StoreError(f"the rows cannot be encoded: {e}") from None
        self.journal.append(ctx, len(contexts), evt, len(rows), receipt)
        return len(rows)

    def receipts(self) -> list[bytes]:
        """The receipts journaled with requests before this open (`insert(..., receipt=...)`), oldest first:
        those whose answer a crash may have kept from being recorded elsewhere."""
        return list(self.journal.receipts) if self.journal is not None else []

    def _insert_records(self, records: list[Record], ctx: list[bytes], evt: list[bytes]) -> None:
        """The flusher's insert of journaled records: their contexts, then their events, one INSERT each.
        Records that may be in the store already (a crash or a failure after their insert) go in without
        the rows the store has."""
        n_ctx = sum(r.contexts for r in records)
        n_evt = sum(r.events for r in records)
        ctx_data: Data = [c for c in ctx if c]
        evt_data: Data = [e for e in evt if e]
        if any(r.suspect for r in records):
            ctx_data, n_ctx = self._missing(b"".join(ctx), _CONTEXT_TYPES, self.contexts_table, "key", 1, None)
            evt_data, n_evt = self._missing(b"".join(evt), _EVENT_TYPES, self.read_table, "id", 2, 1)
        if n_ctx:
            self.engine.insert(self.contexts_table, tables.CONTEXT_COLUMNS, data=ctx_data, count=n_ctx)
        if n_evt:
            self.engine.insert(self.write_table, tables.COLUMNS, data=evt_data, count=n_evt)

    def _missing(
        self, data: bytes, types: list[str], table: str, column: str, at: int, date_at: int | None
    ) -> tuple[bytes, int]:
        """The rows of `data` (RowBinary) whose `column` (the `at`-th, a random key) the store lacks (looked
        for within the rows' days, and dates: the `date_at`-th column, when there is one)."""
        if not data:
            return data, 0
        try:
            rows = read_rows(data, types)
        except RowBinaryError as e:
            raise StoreError(f"a journaled record cannot be read back: {e}") from None
        have: set[str] = set()
        for i in range(0, len(rows), _CHECK_CHUNK):
            chunk = rows[i : i + _CHECK_CHUNK]
            days = [r[2][0] for r in chunk]
            params: dict[str, Any] = {"d_lo": min(days), "d_hi": max(days), "keys": [r[2][at].decode() for r in chunk]}
            cond = "day >= {d_lo:Date} AND day <= {d_hi:Date}"
            if date_at is not None:
                dates = [r[2][date_at] for r in chunk]
                params.update(t_lo=min(dates), t_hi=max(dates))
                cond += " AND date >= {t_lo:Int64} AND date <= {t_hi:Int64}"
            found = self.engine.execute(
                f"SELECT {column} FROM {table} WHERE {cond} AND has({{keys:Array(String)}}, {column})", params
            )
            have.update(str(k) for (k,) in found)
        kept = [(start, end) for start, end, values in rows if values[at].decode() not in have]
        if len(kept) < len(rows):
            log.info("journal: %d of %d rows of %s were stored already: left out", len(rows) - len(kept), len(rows), table)
        view = memoryview(data)
        return b"".join(view[a:b] for a, b in kept), len(kept)

    # --- reading ------------------------------------------------------------------------------------

    @staticmethod
    def _range(t_from: int, t_to: int, params: dict[str, Any]) -> str:
        params.update(t_from=t_from, t_to=t_to, d_from=_day(t_from), d_to=_day(t_to))
        return (
            "date >= {t_from:Int64} AND date < {t_to:Int64} AND day >= {d_from:Date} AND day <= {d_to:Date}"
        )

    def _keys(
        self, search: Search, t_from: int, t_to: int, cursor: tuple[int, str] | None, n: int
    ) -> list[tuple[int, str]]:
        """The (date, id) of up to `n` rows the SQL selects in [t_from, t_to) after `cursor`, newest first."""
        params = dict(search.where.params)
        cond = self._range(t_from, t_to, params)
        # (a window wholly older than the cursor needs no test of it, which would read every row's `id`)
        if cursor is not None and cursor[0] < t_to:
            params.update(c_date=cursor[0], c_id=cursor[1])
            cond += " AND (date < {c_date:Int64} OR (date = {c_date:Int64} AND id < {c_id:String}))"
        rows = self.engine.execute(
            f"SELECT date, id FROM {self.read_table} {_filter(search, cond)} ORDER BY date DESC, id DESC "
            f"LIMIT {int(n)}",
            params,
        )
        return [(int(d), str(i)) for d, i in rows]

    def _fetch(self, keys: list[tuple[int, str]]) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        """The rows at `keys`, in that order (one query): each as the `Hit` fields and as read (the result
        columns, its event without its context)."""
        if not keys:
            return []
        dates = [k[0] for k in keys]
        fetch = {"lo": min(dates), "hi": max(dates), "ids": [k[1] for k in keys]}
        fetch.update(d_lo=_day(fetch["lo"]), d_hi=_day(fetch["hi"]))
        rows = self.engine.execute(
            # PREWHERE: the event column is read for these rows only (18.16 does not move `has` there).
            f"SELECT {', '.join(tables.RESULT_COLUMNS)} FROM {self.read_table} PREWHERE date >= {{lo:Int64}} "
            "AND date <= {hi:Int64} AND has({ids:Array(String)}, id) WHERE day >= {d_lo:Date} AND day <= {d_hi:Date}",
            fetch,
        )
        by_key = {(r[1], r[0]): (w, r) for w, r in zip(self._whole(rows), rows, strict=True)}
        return [by_key[k] for k in keys if k in by_key]

    def _whole(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Rows of `tables.RESULT_COLUMNS` → the `Hit` fields, each event's text whole again (the contexts
        cut out of them: from the texts read before, else in one query)."""
        texts: dict[str, str] = {}
        missing = []
        for r in rows:
            if r[9]:
                key = str(r[9])
                text = self._texts.get(key)
                if text is None:
                    missing.append(r)
                else:
                    texts[key] = text
        if missing:
            days = [_day(int(r[1])) for r in missing]
            found = self.engine.execute(
                f"SELECT key, text FROM {self.contexts_table} PREWHERE has({{keys:Array(String)}}, key) "
                "WHERE day >= {d_lo:Date} AND day <= {d_hi:Date}",
                {"keys": sorted({str(r[9]) for r in missing}), "d_lo": min(days), "d_hi": max(days)},
            )
            for k, t in found:
                texts[str(k)] = str(t)
                if self._texts_size > _MAX_TEXTS_BYTES:
                    self._texts.clear()
                    self._parsed_texts.clear()
                    self._texts_size = 0
                self._texts[str(k)] = str(t)
                self._texts_size += len(t)
        out = []
        for r in rows:
            event = r[8]
            if r[9]:
                text = texts.get(str(r[9]))
                if text is None:
                    raise StoreError(f"the store lacks the process context {r[9]} of event {r[0]}")
                event = splice(event, int(r[10]), text)
            out.append((*r[:8], event))
        return out

    def _parsed(self, hit: Hit, row: tuple[Any, ...]) -> Any:
        """The JSON value of a fetched event (`hit`, `row` as read): with its context parsed once per key and
        shared by the events naming it (`contexts.parse_spliced`), else parsed whole; None when it is not JSON."""
        try:
            key = str(row[9]) if row[9] else ""
            text = self._texts.get(key) if key else None
            if text is not None:
                context = self._parsed_texts.get(key)
                if context is None:
                    context = self._parsed_texts[key] = parse_context(text)
                stored, at = row[8], int(row[10])
                if not stored.isascii():
                    stored = text_bytes(stored)
                event = parse_spliced(stored[:at], stored[at:], context)
                if event is not None:
                    return event
            return jsontext.loads(hit.event)
        except ValueError:  # (orjson's and json's errors)
            return None

    def scan(
        self, search: Search, t_from: int, t_to: int, cursor: tuple[int, str] | None = None,
        max_scan: int = MAX_SCAN, batch: int | None = None, state: dict[str, bool] | None = None,
    ) -> Iterator[tuple[Hit, bool]]:  # fmt: skip
        """Events the SQL selects, newest first, each with SECL's verdict; at most `max_scan` of them.
        `state["exhausted"]` tells afterwards whether the range's end was reached.

        Two steps: the positions first, on the small columns, through time windows growing backwards (an
        hour, then 4 times wider each time, or as wide as the matches seen so far say the page needs) so that a page of recent matches is found without sorting the
        whole range (windows are disjoint and descending, each ordered within); then the events of those
        positions only, in one query (a sort over the `event` column would read it for every row kept)."""
        self.flush()  # read-your-writes: everything acknowledged is in the engine
        exact = search.where.exact
        batch = batch or (_MIN_BATCH if exact else _MAX_BATCH // 4)
        scanned = 0
        if state is not None:
            state["exhausted"] = False
        bounds = self._bounds(t_from, t_to, cursor)
        hi: int | None = None
        if bounds is not None:
            t_from, hi = max(t_from, bounds[0]), bounds[1]
        span = _FIRST_WINDOW
        while hi is not None and scanned < max_scan:
            want = min(batch, max_scan - scanned)
            keys: list[tuple[int, str]] = []
            while hi is not None and len(keys) < want:
                lo = max(t_from, hi - span)
                got = self._keys(search, lo, hi, cursor, want - len(keys))
                if got:
                    keys += got
                    cursor = got[-1]
                if len(keys) == want:
                    break  # the window may hold more: go on in it
                if lo <= t_from:
                    hi = None
                else:
                    # Wider: 4 times, or as wide as this window's matches say the rest needs (and half more).
                    wider = span * 4
                    if got:
                        wider = max(wider, span * (want - len(keys)) * 3 // (2 * len(got)))
                    hi, span = lo, wider
            for whole, row in self._fetch(keys):
                hit = Hit(*whole)
                # SECL's evaluator decides on every event the SQL returns, even when the SQL is exact (its
                # columns hold SECL's values, see tests/backend/test_rows.py; the evaluator makes sure).
                yield hit, search.matches_every_event or _matches(search, self._parsed(hit, row))
            scanned += len(keys)
            batch = min(batch * 2, _MAX_BATCH)
        if hi is None and state is not None:
            state["exhausted"] = True

    def _bounds(self, t_from: int, t_to: int, cursor: tuple[int, str] | None) -> tuple[int, int] | None:
        """The oldest date in the range and just above the newest (before the cursor), or None when empty."""
        if cursor is None and t_from <= 0 and t_to >= _LAST_NS:
            # The whole store: no condition, which ClickHouse answers from its statistics of the parts.
            rows = self.engine.execute(f"SELECT count(), min(date), max(date) FROM {self.read_table}")
            if not rows or not rows[0][0]:
                return None
            if int(rows[0][1]) >= 0 and int(rows[0][2]) < t_to:
                return int(rows[0][1]), int(rows[0][2]) + 1
        params: dict[str, Any] = {}
        cond = self._range(t_from, t_to, params)
        if cursor is not None:
            params["c_date"] = cursor[0]
            cond += " AND date <= {c_date:Int64}"
        rows = self.engine.execute(
            f"SELECT count(), min(date), max(date) FROM {self.read_table} WHERE {cond}", params
        )
        if not rows or not rows[0][0]:
            return None
        return int(rows[0][1]), min(int(rows[0][2]) + 1, t_to)

    def search(
        self, search: Search, t_from: int, t_to: int, cursor: tuple[int, str] | None, limit: int,
        max_scan: int = MAX_SCAN,
    ) -> Page:  # fmt: skip
        """Up to `limit` matching events older than `cursor`; `next` is None at the end of the range. When
        `max_scan` events were looked at first, the page is shorter and `next` goes on from there."""
        hits: list[Hit] = []
        last: tuple[int, str] | None = None
        state: dict[str, bool] = {}
        batch = limit + 1 if search.where.exact else None
        for hit, ok in self.scan(search, t_from, t_to, cursor, max_scan, batch, state):
            if ok:
                if len(hits) == limit:
                    return Page(hits, (hits[-1].date, hits[-1].id))
                hits.append(hit)
            last = (hit.date, hit.id)
        return Page(hits, None if state.get("exhausted", True) else last)

    def get(self, event_id: str) -> Hit | None:
        self.flush()  # read-your-writes: everything acknowledged is in the engine
        rows = self.engine.execute(
            f"SELECT {', '.join(tables.RESULT_COLUMNS)} FROM {self.read_table} WHERE id = {{id:String}} LIMIT 1",
            {"id": event_id},
        )
        return Hit(*self._whole(rows)[0]) if rows else None

    def get_many(self, keys: Sequence[tuple[int, str]]) -> list[Hit]:
        """The events at these (date, id) positions, in that order, in one query (missing ones left out)."""
        self.flush()  # read-your-writes: everything acknowledged is in the engine
        return [Hit(*w) for w, _ in self._fetch(list(keys))]

    def sizes(self) -> dict[str, tuple[int, int, int]]:
        """Per local table, summed over the nodes: (rows, bytes on disk, bytes uncompressed) of its active parts."""
        self.flush()  # read-your-writes: everything acknowledged is in the engine
        out: dict[str, tuple[int, int, int]] = {}
        for node in self.nodes():
            for table, rows, disk, raw in node.execute(
                "SELECT table, sum(rows), sum(bytes_on_disk), sum(data_uncompressed_bytes) FROM system.parts "
                "WHERE database = {db:String} AND active GROUP BY table",
                {"db": self.database},
            ):
                r, d, u = out.get(str(table), (0, 0, 0))
                out[str(table)] = (r + int(rows), d + int(disk), u + int(raw))
        return out

    def count(self) -> int:
        self.flush()  # read-your-writes: everything acknowledged is in the engine
        return int(self.engine.execute(f"SELECT count() FROM {self.read_table}")[0][0])

    # --- aggregates ---------------------------------------------------------------------------------

    def facet(
        self, search: Search, field: str, t_from: int, t_to: int, limit: int, max_scan: int = MAX_SCAN
    ) -> tuple[list[tuple[Any, int]], bool]:
        """The top values of `field` among matching events, with counts; and whether every matching event
        was counted (an inexact filter counts at most `max_scan` events in Python)."""
        self.flush()  # read-your-writes: everything acknowledged is in the engine
        f = SEARCH_REGISTRY.get(field)
        if f is None:
            raise ValueError(f"unknown field {field!r}")
        col = FIELD_COLUMNS.get(f.canonical)
        if search.where.exact and col is not None:
            params = dict(search.where.params)
            expr = f"arrayJoin(arrayDistinct({col.name}))" if col.multi else col.name
            sql = (
                f"SELECT {expr} AS v, count() AS c FROM {self.read_table} "
                f"{_filter(search, self._range(t_from, t_to, params))} "
                f"GROUP BY v ORDER BY c DESC, v LIMIT {int(limit)}"
            )
            return [(v, int(c)) for v, c in self.engine.execute(sql, params)], True
        counts: Counter[Any] = Counter()
        scanned = 0
        for hit, ok in self.scan(search, t_from, t_to, None, max_scan):
            scanned += 1
            if ok:
                value = f.getter(event_from_json(hit.event))  # type: ignore[misc]
                if f.multi:
                    counts.update(set(value))
                else:
                    counts[value] += 1
        top = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:limit]
        return top, scanned < max_scan

    def timeseries(
        self, search: Search, t_from: int, t_to: int, step: int, max_scan: int = MAX_SCAN
    ) -> tuple[list[tuple[int, int]], bool]:
        """Counts of matching events per `step` nanoseconds (bucket start, count), oldest first."""
        self.flush()  # read-your-writes: everything acknowledged is in the engine
        if search.where.exact:
            params = dict(search.where.params)
            params["step"] = step
            sql = (
                f"SELECT intDiv(date, {{step:Int64}}) * {{step:Int64}} AS b, count() AS c FROM {self.read_table} "
                f"{_filter(search, self._range(t_from, t_to, params))} GROUP BY b ORDER BY b"
            )
            return [(int(b), int(c)) for b, c in self.engine.execute(sql, params)], True
        counts: Counter[int] = Counter()
        scanned = 0
        for hit, ok in self.scan(search, t_from, t_to, None, max_scan):
            scanned += 1
            if ok:
                counts[hit.date // step * step] += 1
        return sorted(counts.items()), scanned < max_scan

    # --- retention ----------------------------------------------------------------------------------

    def drop_before(self, day: datetime.date) -> list[str]:
        """Drop every partition (day) older than `day`, on every node; return the days dropped. The events of
        every node go first, then the contexts (a context is sharded by its key, its events by host: an event
        is never kept without its context). Then the store takes a new `serial`: the intake forgets which
        contexts it stored here (an old event arriving later stores its context again)."""
        self.flush()  # read-your-writes: everything acknowledged is in the engine
        dropped: set[str] = set()
        for table in (tables.LOCAL_TABLE, tables.CONTEXTS_LOCAL_TABLE):
            for node in self.nodes():
                rows = node.execute(
                    "SELECT DISTINCT partition_id FROM system.parts WHERE database = {db:String} "
                    "AND table = {t:String} AND active",
                    {"db": self.database, "t": table},
                )
                for (pid,) in rows:
                    pid = str(pid)
                    if len(pid) != 8 or not pid.isdigit():
                        continue
                    d = datetime.date(int(pid[:4]), int(pid[4:6]), int(pid[6:]))
                    if d < day:
                        # A date we parsed ourselves, never request text.
                        node.execute(
                            f"ALTER TABLE {self.database}.{table} DROP PARTITION '{d.isoformat()}'"
                        )
                        if table == tables.LOCAL_TABLE:
                            dropped.add(d.isoformat())
        if dropped:
            self.serial = next(_serials)
        return sorted(dropped)


_LAST_DAY = datetime.date(2105, 12, 31)  # ClickHouse's Date ends in 2106


_LAST_NS = (_LAST_DAY - datetime.date(1970, 1, 1)).days * 86_400 * 1_000_000_000


def _day(ns: int) -> datetime.date:
    return _LAST_DAY if ns >= _LAST_NS else day_of(max(ns, 0))


def _filter(search: Search, cond: str) -> str:
    """The search's condition and `cond` (SQL of ours) as a PREWHERE and WHERE clause: a search that has
    conditions on plain columns and on array columns reads the arrays only for rows the others keep."""
    w = search.where
    if w.plain:
        return f"PREWHERE ({w.plain}) AND {cond} WHERE {w.arrays}"
    return f"WHERE ({w.sql}) AND {cond}"


def _matches(search: Search, event: Any) -> bool:
    """SECL's verdict on an event's JSON value, read through a view (the fields the expression reads, not the
    whole event decoded into the model)."""
    if type(event) is not dict:
        return False
    try:
        return search.matches(event_view(event))
    except (DecodeError, ValueError, TypeError, AttributeError):  # (not a CWS event: none of its parts match)
        return False


__all__ = ["Hit", "Page", "Store", "StoreError"]
