"""The evaluator: stored events in, signals out, as they arrive.

Rules are compiled once and dispatched by (event type, agent rule id): an event meets only the rules that can
apply to it; those its row's typed columns rule out are skipped before the event is parsed (`prefilter.py`),
and SECL conditions run on a view of the event's JSON (`opencws.model.view`). Then per kind:

- threshold (`count` N, `window` W): per group, the matching events of the last W (event time, half-open:
  an event counts until its date + W) are counted; the N-th opens a signal holding them. Events of the group
  dated before the N-th event's date + W join that signal; after it, counting starts afresh.
- new value (`field`, `learning` L, `window` W): per group, values seen in the L after the group's first
  matching event are learned silently; afterwards a value never seen opens a signal (then it is learned).
  Events with that value in the W after it join the signal.

State (windows, open signals, learning starts, learned values) is kept in memory and written with the
batch's new and updated signals in one SQLite transaction, before the intake answers; it is read back at
start-up, so a restart neither forgets a window nor relearns a value.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import orjson

from opencws.backend.detection.db import Database
from opencws.backend.detection.prefilter import RowTest, row_test
from opencws.backend.detection.rules import MAX_THRESHOLD, DetectionRule
from opencws.backend.detection.signals import MAX_SAMPLES, Signal, SignalStore, new_signal_id
from opencws.backend.store import tables
from opencws.backend.store.contexts import parse_context, parse_spliced
from opencws.backend.store.rowbinary import Cut
from opencws.model.event import Event
from opencws.model.view import event_view

log = logging.getLogger("opencws.backend.detection")

_COL = {name: i for i, name in enumerate(tables.COLUMN_NAMES)}
I_DATE, I_ID, I_EVT, I_HOST, I_RULE, I_CONTEXT, I_EVENT = (
    _COL[n] for n in ("date", "id", "evt_name", "host", "rule_id", "context", "event")
)
_date = itemgetter(I_DATE)


def _parsed(text: Any) -> dict[str, Any]:
    """A row's event JSON: str or bytes, or the intake's `msgspec.Raw` or `rowbinary.Cut` (whose `text` is the
    whole event), read through their buffer, not copied."""
    if type(text) is Cut:
        return orjson.loads(text.text)
    return orjson.loads(text if isinstance(text, str | bytes) else memoryview(text))


_CONTEXTS: dict[str, Any] = {}  # context key → its text parsed (a key always names the same text)
_MAX_CONTEXTS = 4096


def _parsed_row(row: Sequence[Any]) -> dict[str, Any]:
    """`_parsed` of a row's event. When the intake cut the event's `process.ancestors` out into a context (three
    quarters of its bytes, the same in every event of a lineage), with its `process.parent` when that came
    right before them, they are parsed once per context and shared (read-only, like the rest of the event) by
    every event naming it (`contexts.parse_spliced`)."""
    text, key = row[I_EVENT], row[I_CONTEXT]
    if type(text) is not Cut or not key:
        return _parsed(text)
    whole, at, end = text.text, text.at, text.at + text.size
    context = _CONTEXTS.get(key)
    if context is None:
        if len(_CONTEXTS) >= _MAX_CONTEXTS:
            _CONTEXTS.clear()
        context = _CONTEXTS[key] = parse_context(whole[at:end])
    event = parse_spliced(whole[:at], whole[end:], context)
    return _parsed(text) if event is None else event


MAX_VALUES_PER_GROUP = 100_000  # learned values of one group of a new-value rule
GC_SECONDS = 30.0
_SEP = "\x1f"


@dataclass
class Window:
    """A group's state for one rule: recent matching events (threshold) and the signal taking events."""

    times: list[tuple[int, str]] = field(default_factory=list)  # (date, event id), sorted
    signal: Signal | None = None
    until: int = 0  # the open signal takes events dated before this
    touched: float = field(default_factory=time.time)  # when an event last came (wall clock, not persisted)

    def dump(self) -> str:
        s = self.signal
        sig = None if s is None else [s.id, s.count, s.first_seen, s.last_seen, s.samples]
        return orjson.dumps({"times": self.times, "signal": sig, "until": self.until}).decode()

    @classmethod
    def load(cls, text: str) -> Window:
        d = orjson.loads(text)
        w = cls([tuple(t) for t in d["times"]], None, d["until"])  # type: ignore[misc]
        if d["signal"]:
            sid, count, first, last, samples = d["signal"]
            w.signal = Signal(sid, "", "", "", "", {}, first, last, count, samples)
        return w


@dataclass
class _Batch:
    new: list[Signal] = field(default_factory=list)
    new_ids: set[str] = field(default_factory=set)
    updated: dict[str, Signal] = field(default_factory=dict)
    windows: dict[tuple[str, str], Window] = field(default_factory=dict)
    learning: list[tuple[str, str, int]] = field(default_factory=list)
    learned: list[tuple[str, str, str]] = field(default_factory=list)
    wall: float = field(default_factory=time.time)


class Detector:
    def __init__(self, rules: Sequence[DetectionRule], db: Database, *, webhook: bool = False,
                 metrics: Any = None, prefilter: bool = True) -> None:  # fmt: skip
        """`prefilter`: rules are first decided on each row's typed columns (`prefilter.row_test`); off, every
        event a rule meets is parsed (the benchmark's baseline)."""
        self.rules = list(rules)
        self.db = db
        self.webhook = webhook
        self.metrics = metrics
        self.prefilter = prefilter
        self.lock = threading.Lock()
        self._dispatch: dict[tuple[str, str], tuple[tuple[DetectionRule, RowTest | None], ...]] = {}
        self._tests: dict[tuple[str, str], RowTest | None] = {}  # (rule id, event type) → its row test
        self.disabled: frozenset[str] = frozenset()  # rule ids an admin turned off (`set_disabled`)
        self.windows: dict[tuple[str, str], Window] = {}
        self.learning: dict[tuple[str, str], int] = {}
        self.learned: dict[tuple[str, str], set[str]] = {}
        self.latest = 0  # the newest event date seen (the clock of garbage collection)
        self._last_gc = time.monotonic()
        self.on_new_signals: Any = None  # called with the new signals after they are written
        self._load()

    # --- state ---------------------------------------------------------------------------------------

    def _load(self) -> None:
        ids = {r.id for r in self.rules}
        with self.db.lock:
            c = self.db.conn
            for rid, grp, data in c.execute("SELECT rule_id, grp, data FROM windows"):
                if rid in ids:
                    self.windows[(rid, grp)] = Window.load(data)
            for rid, grp, start in c.execute("SELECT rule_id, grp, start FROM learning"):
                if rid in ids:
                    self.learning[(rid, grp)] = start
            for rid, grp, value in c.execute("SELECT rule_id, grp, value FROM learned"):
                if rid in ids:
                    self.learned.setdefault((rid, grp), set()).add(value)
        for w in self.windows.values():
            self.latest = max(self.latest, w.until, w.times[-1][0] if w.times else 0)

    def _save(self, b: _Batch) -> None:
        gone: set[tuple[str, str]] = set()
        if time.monotonic() - self._last_gc > GC_SECONDS:
            gone = self._collect()
            self._last_gc = time.monotonic()
        if not (b.new or b.updated or b.windows or b.learning or b.learned or gone):
            return
        with self.db.transaction() as conn:
            SignalStore.write(conn, b.new, list(b.updated.values()), self.webhook)
            conn.executemany(
                "INSERT OR REPLACE INTO windows VALUES (?, ?, ?)",
                [(k[0], k[1], w.dump()) for k, w in b.windows.items() if k not in gone],
            )
            conn.executemany("INSERT OR IGNORE INTO learning VALUES (?, ?, ?)", b.learning)
            conn.executemany("INSERT OR IGNORE INTO learned VALUES (?, ?, ?)", b.learned)
            conn.executemany("DELETE FROM windows WHERE rule_id = ? AND grp = ?", sorted(gone))

    def _collect(self) -> set[tuple[str, str]]:
        """Windows with nothing left to count nor an open signal, by the newest event date seen (but no later
        than the wall clock: an event dated in the future must not expire every window), and that no event
        reached for as long as their window (late events, from an agent that was cut off, still add up)."""
        wall = time.time()
        now = min(self.latest, int(wall * 1e9))
        spans = {r.id: r.window_ns for r in self.rules}
        gone = set()
        for k, w in self.windows.items():
            span = spans.get(k[0], 0)
            if (w.until <= now and (not w.times or w.times[-1][0] + span <= now)
                    and w.touched + span / 1e9 <= wall):  # fmt: skip
                gone.add(k)
        for k in gone:
            del self.windows[k]
        return gone

    # --- evaluation ----------------------------------------------------------------------------------

    def candidates(self, event_type: str, rule_id: str) -> tuple[tuple[DetectionRule, RowTest | None], ...]:
        """The rules an event of this type and agent rule id meets, each with its test on the event's row
        (`prefilter.row_test`: None when the row's columns decide nothing for it)."""
        key = (event_type, rule_id)
        found = self._dispatch.get(key)
        if found is None:
            found = tuple(
                (r, self._row_test(r, event_type))
                for r in self.rules
                if r.id not in self.disabled
                and (r.compiled is None or r.compiled.event_types is None or event_type in r.compiled.event_types)
                and (not r.rule_ids or (rule_id and r.matches_rule_id(rule_id)))
            )  # fmt: skip
            if len(self._dispatch) < 100_000:
                self._dispatch[key] = found
        return found

    def _row_test(self, r: DetectionRule, event_type: str) -> RowTest | None:
        """`prefilter.row_test` of a rule on an event type: one per rule and type, whatever the agent rule ids
        (its memory is bounded by the rules, not by what agents send)."""
        if r.compiled is None or not self.prefilter:
            return None
        key = (r.id, event_type)
        if key not in self._tests:
            self._tests[key] = row_test(r.compiled, event_type)
        return self._tests[key]

    def set_disabled(self, rule_ids: frozenset[str]) -> None:
        """Rules that meet no event from the next batch on (their windows and learned values are kept)."""
        with self.lock:
            self.disabled = rule_ids
            self._dispatch.clear()

    def replace_rules(self, rules: Sequence[DetectionRule], reset: str) -> None:
        """A new rule set from the next batch on; the rule `reset` (replaced or deleted) starts afresh: its
        windows, learning starts and learned values are dropped, here and on disk."""
        with self.lock:
            self.rules = list(rules)
            self._dispatch.clear()
            self._tests.clear()
            for state in (self.windows, self.learning, self.learned):
                for k in [k for k in state if k[0] == reset]:
                    del state[k]  # type: ignore[attr-defined]
            with self.db.transaction() as conn:
                for table in ("windows", "learning", "learned"):
                    conn.execute(f"DELETE FROM {table} WHERE rule_id = ?", (reset,))

    def observe(
        self, rows: Sequence[Sequence[Any]], events: Sequence[dict[str, Any]] | None = None
    ) -> list[Signal]:
        """Evaluate stored events (rows of the events table, with their parsed JSON when the intake has it);
        returns the new signals, written with the state before returning."""
        start = time.perf_counter()
        b = _Batch()
        errors = 0
        with self.lock:
            dispatch = self._dispatch
            for i, row in enumerate(rows):
                key = (row[I_EVT], row[I_RULE])
                met = dispatch.get(key)
                if met is None:
                    met = self.candidates(*key)
                if not met:
                    continue
                try:
                    cands = [r for r, test in met if test is None or test(row)]
                    if not cands:
                        continue  # (the event is not parsed)
                    event = events[i] if events is not None else _parsed_row(row)
                    self._event(cands, row, event, b)
                except Exception:  # one bad event must not stop the others, nor the intake
                    errors += 1
                    if errors == 1:
                        log.exception("detection failed on event %s", row[I_ID])
            if rows:
                self.latest = max(self.latest, max(map(_date, rows)))
            self._save(b)
        if self.metrics is not None:
            self.metrics.observed(len(rows), b.new, errors, time.perf_counter() - start)
        if b.new and self.on_new_signals is not None:
            self.on_new_signals(b.new)
        return b.new

    def _event(
        self, cands: list[DetectionRule], row: Sequence[Any], event: dict[str, Any], b: _Batch
    ) -> None:
        view: Event | None = None
        env = {"host": row[I_HOST], "rule_id": row[I_RULE]}
        for r in cands:
            c = r.compiled
            if c is not None:
                if view is None:
                    view = event_view(event)
                if not c.fn(view):
                    continue
            if view is None and (r.group_by or r.value is not None):
                view = event_view(event)
            group = [g.value(view, env) for g in r.group_by]  # type: ignore[arg-type]
            gkey = orjson.dumps(group).decode()
            if r.kind == "threshold":
                self._threshold(r, gkey, group, row, view, env, event, b)
            else:
                self._new_value(r, gkey, group, row, view, env, event, b)

    def _join(self, w: Window, date: int, eid: str, b: _Batch) -> bool:
        s = w.signal
        if s is None or date >= w.until:
            return False
        s.add(date, eid)
        if s.id not in b.new_ids:
            b.updated[s.id] = s
        return True

    def _threshold(self, r: DetectionRule, gkey: str, group: list[Any], row: Sequence[Any], view: Any,
                   env: dict[str, str], event: dict[str, Any], b: _Batch) -> None:  # fmt: skip
        key = (r.id, gkey)
        w = self.windows.get(key)
        if w is None:
            w = self.windows[key] = Window()
        b.windows[key] = w
        w.touched = b.wall
        date, eid = row[I_DATE], row[I_ID]
        if self._join(w, date, eid, b):
            return
        w.signal = None
        times = w.times
        bisect.insort(times, (date, eid))
        cutoff = times[-1][0] - r.window_ns
        drop = 0
        while times[drop][0] <= cutoff:
            drop += 1
        if drop or len(times) > MAX_THRESHOLD:
            del times[: max(drop, len(times) - MAX_THRESHOLD)]
        if len(times) < r.count:
            return
        s = self._raise(r, group, view, env, event, times[0][0], times[-1][0], len(times),
                        [list(t) for t in times[:MAX_SAMPLES]], b)  # fmt: skip
        w.signal, w.until, w.times = s, times[-1][0] + r.window_ns, []

    def _new_value(self, r: DetectionRule, gkey: str, group: list[Any], row: Sequence[Any], view: Any,
                   env: dict[str, str], event: dict[str, Any], b: _Batch) -> None:  # fmt: skip
        assert r.value is not None
        if not r.value.present(view, env):
            return
        value = str(r.value.value(view, env))
        date, eid = row[I_DATE], row[I_ID]
        key = (r.id, gkey)
        okey = (r.id, gkey + _SEP + value)
        w = self.windows.get(okey)
        if w is not None and self._join(w, date, eid, b):
            b.windows[okey] = w
            w.touched = b.wall
            return
        start = self.learning.get(key)
        if start is None:
            start = self.learning[key] = date
            b.learning.append((r.id, gkey, date))
        known = self.learned.setdefault(key, set())
        if value in known or len(known) >= MAX_VALUES_PER_GROUP:
            return
        known.add(value)
        b.learned.append((r.id, gkey, value))
        if date < start + r.learning_ns:
            return
        s = self._raise(r, [*group, value], view, env, event, date, date, 1, [[date, eid]], b)
        self.windows[okey] = b.windows[okey] = Window([], s, date + r.window_ns)

    def _raise(self, r: DetectionRule, group: list[Any], view: Any, env: dict[str, str], event: dict[str, Any],
               first: int, last: int, count: int, samples: list[list[Any]], b: _Batch) -> Signal:  # fmt: skip
        if view is None:
            view = event_view(event)
        names = [g.name for g in r.group_by] + ([r.value.name] if r.value is not None else [])
        s = Signal(
            new_signal_id(), r.id, r.title.render(view, env), r.message.render(view, env), r.severity,
            dict(zip(names, group, strict=True)), first, last, count, samples,
            webhook={"state": "pending", "attempts": 0, "last_error": None} if self.webhook else None,
        )  # fmt: skip
        b.new.append(s)
        b.new_ids.add(s.id)
        return s
