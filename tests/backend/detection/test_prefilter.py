"""A rule is first decided on a stored row's typed columns: a row is parsed only when the rule could still match
its event, and the rule never misses an event because of it."""

from __future__ import annotations

import types
from pathlib import Path

import orjson
import pytest
from backend_corpus import event_mix
from detection_helpers import exec_event, one_rule, rows

from opencws.backend.compiled_intake import compiled
from opencws.backend.detection import engine
from opencws.backend.detection.db import Database
from opencws.backend.detection.engine import Detector
from opencws.backend.detection.prefilter import _Memo, column_fields, row_test
from opencws.backend.intake import accept_body
from opencws.backend.store.rows import Envelope, row_of_dict
from opencws.model.view import event_view
from opencws.secl import compile_search
from opencws.secl.sql import SEARCH_REGISTRY

STORE = types.SimpleNamespace(serial=-7)  # rows made for a store, as the intake hands them to detection

EXPRESSIONS = [
    'exec.file.path != "" && container.id != ""',
    "setuid.uid == 0 && process.uid != 0",
    'unlink.file.path != ""',
    'open.file.path == "/etc/shadow" || exec.file.name == "cat"',  # two event types
    '!(open.file.path == "") || exec.file.name == "zzz"',  # true on every exec: open's path is not the row's
    'process.file.name in ["bash", "sh", "cat"] && open.file.path =~ "/etc/*"',
    '!(process.file.path =~ "/usr/bin/*")',
    'process.user == "root" || process.uid == 0',
    "process.pid > 1000 && process.ppid != 1",
    'process.parent.file.path =~ "/usr/*"',
    'process.ancestors.file.name == "systemd"',  # an array column: left to the event
    'evt.name == "open" && process.comm != "cat"',
    'container.id == "" && process.file.name not in ["sshd", "cron"]',
    'open.file.name == "shadow" && open.flags & O_RDWR > 0',  # a field without a column
    'process.file.path =~ r"^/usr/(s?bin)/.*"',
]


def _compiled(expr: str):  # type: ignore[no-untyped-def]
    return compile_search(expr, registry=SEARCH_REGISTRY)


def _row_sets() -> list[tuple[list, list[dict]]]:
    """The rows of 600 events as the intake makes them (one body each: the compiled pass takes most, and leaves
    to Python the bodies it does not handle), and as the Python path makes them."""
    events = event_mix(600, seed=5)
    intake_rows = []
    for e in events:
        accepted = accept_body(orjson.dumps(e), "application/x-ndjson", 10, 32, store=STORE)
        assert not accepted.rejected
        intake_rows += accepted.rows
    if compiled() is not None:
        assert sum(type(r) is not tuple for r in intake_rows) > 300  # the compiled pass's rows (374 of 600)
    python_rows = [row_of_dict(e, Envelope(host="h"), 0) for e in events]
    return [(intake_rows, events), (python_rows, events)]


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_a_row_ruled_out_by_its_columns_is_an_event_the_rule_does_not_match(expr: str) -> None:
    rule = _compiled(expr)
    for row_set, events in _row_sets():
        for row, event in zip(row_set, events, strict=True):
            etype = row[engine.I_EVT]
            if rule.event_types is not None and etype not in rule.event_types:
                continue
            test = row_test(rule, etype)
            if test is not None and not test(row):
                assert not rule.evaluate(event_view(event)), (expr, event)


def test_a_rule_the_columns_decide_parses_only_the_events_it_matches() -> None:
    rows_, events = _row_sets()[0]
    for expr in ['exec.file.name == "nmap" && container.id != ""', 'open.file.path == "/etc/shadow"']:
        rule = _compiled(expr)
        (etype,) = rule.event_types
        test = row_test(rule, etype)
        assert test is not None
        met = [(r, e) for r, e in zip(rows_, events, strict=True) if r[engine.I_EVT] == etype]
        kept = [e for r, e in met if test(r)]
        assert len(met) > 100 and len(kept) < len(met) / 2, (expr, len(met), len(kept))
        assert kept == [e for _, e in met if rule.evaluate(event_view(e))]


def test_rules_the_columns_cannot_decide_parse_every_row() -> None:
    assert row_test(_compiled('process.ancestors.file.name == "systemd"'), "exec") is None  # array column
    assert row_test(_compiled("open.flags & O_RDWR > 0"), "open") is None  # no column
    assert row_test(_compiled('process.file.name == "x" || open.flags & O_RDWR > 0'), "open") is not None


def test_the_fields_of_another_event_type_are_not_read_from_the_shared_columns() -> None:
    fields = column_fields("unlink")
    assert "unlink.file.path" in fields and "process.file.path" in fields and "container.id" in fields
    assert "open.file.path" not in fields and "exec.file.path" not in fields  # `file_path` is the unlink's here


def test_detection_raises_the_same_signals_with_and_without_the_prefilter(tmp_path: Path) -> None:
    rule = one_rule(tmp_path, """\
        title: new program in {container.id}
        message: "{exec.file.path}"
        severity: low
        condition: exec.file.path != "" && container.id != ""
        group_by: [container.id]
        new_value: {field: exec.file.path, learning: 1m, window: 1h}
    """)  # fmt: skip
    events = [exec_event(f"/usr/bin/p{i % 7}", seconds=i * 20, container="c1" if i % 3 else None) for i in range(60)]
    found = []
    for prefilter in (True, False):
        d = tmp_path / str(prefilter)
        d.mkdir()
        db = Database(str(d))
        signals = Detector([rule], db, prefilter=prefilter).observe(rows(events))
        found.append(sorted((s.group["exec.file.path"], s.count) for s in signals))
        db.close()
    # p1 and p2 are learned in the first minute; the five others are new afterwards (host events do not count)
    assert found[0] == found[1] and [p for p, _ in found[0]] == [f"/usr/bin/p{i}" for i in (0, 3, 4, 5, 6)]


def test_a_condition_on_values_that_rarely_repeat_stops_remembering_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Memo, "MAX", 64)
    rule = _compiled('unlink.file.path =~ "/tmp/*"')
    test = row_test(rule, "unlink")
    assert isinstance(test, _Memo)
    place = column_fields("unlink")["unlink.file.path"]

    def row(path: str) -> list:
        r: list = [None] * (place + 1)
        r[place] = path
        return r

    for _ in range(3):  # the same few paths: remembered
        assert [test(row(f"/tmp/{i}")) for i in range(10)] == [True] * 10
    assert test.seen is not None and len(test.seen) == 10
    verdicts = [test(row(f"/{d}/{i}")) for i in range(200) for d in ("tmp", "var")]  # each path once
    assert verdicts == [True, False] * 200  # still exact
    assert test.seen is None  # a full table that served fewer lookups than it held: nothing kept any more
