"""The evaluator: threshold and new-value semantics at their edges, deduplication, and state that survives
reopening the data directory (a restart)."""

from __future__ import annotations

import time
from pathlib import Path

from detection_helpers import SCANS, T0, S, exec_event, one_rule, rows

from opencws.backend.detection.db import Database
from opencws.backend.detection.engine import Detector
from opencws.backend.detection.signals import SignalStore

THRESHOLD = SCANS

NEW_VALUE = """\
title: new program on {host}
message: "{exec.file.path} is new"
severity: low
condition: exec.file.path != ""
group_by: [host]
new_value: {field: exec.file.path, learning: 1h, window: 10m}
"""


def detector(tmp_path: Path, body: str) -> Detector:
    return Detector([one_rule(tmp_path, body)], Database(str(tmp_path / "data")))


def test_exactly_n_events_within_the_window_raise_a_signal(tmp_path: Path) -> None:
    d = detector(tmp_path, THRESHOLD)
    assert d.observe(rows([exec_event(seconds=0), exec_event(seconds=30)])) == []
    new = d.observe(rows([exec_event(seconds=59)]))
    assert len(new) == 1
    s = new[0]
    assert (s.count, s.group, s.rule_id, s.title) == (3, {"host": "web-1"}, "r", "scans on web-1")
    assert s.last_seen - s.first_seen == 59 * S and len(s.event_ids) == 3
    assert s.webhook is None  # no webhook configured: nothing to deliver


def test_an_event_a_full_window_later_no_longer_counts(tmp_path: Path) -> None:
    d = detector(tmp_path, THRESHOLD)
    # 0 s and 30 s, then 60 s: the first has left the window (half-open: it counted until 60 s exclusive).
    assert d.observe(rows([exec_event(seconds=s) for s in (0, 30, 60)])) == []
    assert len(d.observe(rows([exec_event(seconds=61)]))) == 1


def test_events_after_the_signal_join_it_within_its_window_then_count_afresh(tmp_path: Path) -> None:
    d = detector(tmp_path, THRESHOLD)
    (s,) = d.observe(rows([exec_event(seconds=s) for s in (0, 1, 2)]))
    assert (
        d.observe(rows([exec_event(seconds=s) for s in (10, 61)])) == []
    )  # joined: raised at 2 s, until 62 s
    store = SignalStore(d.db)
    assert store.get(s.id).count == 5
    # 62 s onwards: a new count; two events are not enough, the third raises a second signal.
    assert d.observe(rows([exec_event(seconds=62), exec_event(seconds=63)])) == []
    (s2,) = d.observe(rows([exec_event(seconds=64)]))
    assert s2.id != s.id and s2.count == 3 and store.count() == 2


def test_events_no_rule_can_match_do_not_stop_the_batch(tmp_path: Path) -> None:
    d = detector(tmp_path, THRESHOLD)
    other = {
        "evt": {"name": "open", "category": "File Activity", "outcome": "Success"},
        "date": "2026-01-01T00:00:00Z",
    }
    batch = rows(
        [
            other,
            exec_event(seconds=0),
            other,
            exec_event(seconds=1),
            exec_event("/usr/bin/ls"),
            exec_event(seconds=2),
        ]
    )
    (s,) = d.observe(batch)
    assert s.count == 3 and s.event_ids == [batch[i][2] for i in (1, 3, 5)]


def test_a_condition_on_one_event_type_never_reads_another_type(tmp_path: Path) -> None:
    d = detector(tmp_path, """\
        title: t
        message: m
        severity: low
        condition: unlink.file.path != ""
        threshold: {count: 1, window: 1m}
    """)  # fmt: skip
    opened = {"evt": {"name": "open", "category": "File Activity", "outcome": "Success"},
              "file": {"path": "/srv/a", "uid": 0, "gid": 0}, "date": "2026-01-01T00:00:00Z"}  # fmt: skip
    assert d.observe(rows([opened])) == []  # its file.path is set, but it is not an unlink
    unlinked = {**opened, "evt": {**opened["evt"], "name": "unlink"}}
    assert len(d.observe(rows([unlinked]))) == 1


def test_without_learning_the_first_value_raises(tmp_path: Path) -> None:
    d = detector(tmp_path, NEW_VALUE.replace("learning: 1h", "learning: 0"))
    (s,) = d.observe(rows([exec_event("/usr/bin/git", 0), exec_event("/usr/bin/git", 1)]))
    assert s.count == 2 and s.group["exec.file.path"] == "/usr/bin/git"


def test_groups_count_apart(tmp_path: Path) -> None:
    d = detector(tmp_path, THRESHOLD)
    both = rows([exec_event(seconds=0), exec_event(seconds=1)], host="a") + rows(
        [exec_event(seconds=0), exec_event(seconds=1)], host="b"
    )
    assert d.observe(both) == []
    (s,) = d.observe(rows([exec_event(seconds=2)], host="b"))
    assert s.group == {"host": "b"}


def test_events_that_do_not_match_are_not_counted(tmp_path: Path) -> None:
    d = detector(tmp_path, THRESHOLD)
    assert d.observe(rows([exec_event("/usr/bin/ls", seconds=s) for s in range(5)])) == []
    assert d.observe(rows([exec_event(seconds=s) for s in range(2)])) == []


def test_a_restart_keeps_the_window(tmp_path: Path) -> None:
    d = detector(tmp_path, THRESHOLD)
    d.observe(rows([exec_event(seconds=0), exec_event(seconds=1)]))
    d.db.close()
    d = detector(tmp_path, THRESHOLD)
    (s,) = d.observe(rows([exec_event(seconds=2)]))
    assert s.count == 3
    d.db.close()
    d = detector(tmp_path, THRESHOLD)  # and the open signal: a later event joins it
    assert d.observe(rows([exec_event(seconds=3)])) == []
    assert SignalStore(d.db).get(s.id).count == 4


def test_values_seen_while_learning_raise_nothing_and_a_new_one_after_does(tmp_path: Path) -> None:
    d = detector(tmp_path, NEW_VALUE)
    learning = [exec_event("/usr/bin/git", 0), exec_event("/usr/bin/ls", 3599)]
    assert d.observe(rows(learning)) == []
    # Exactly at the end of the learning hour, a known value stays quiet and a new one raises.
    assert d.observe(rows([exec_event("/usr/bin/git", 3600)])) == []
    (s,) = d.observe(rows([exec_event("/usr/bin/nc", 3600)]))
    assert s.group == {"host": "web-1", "exec.file.path": "/usr/bin/nc"} and s.message == "/usr/bin/nc is new"
    # Seen again within its window: joins; after: learned, quiet.
    assert d.observe(rows([exec_event("/usr/bin/nc", 3700), exec_event("/usr/bin/nc", 9000)])) == []
    assert SignalStore(d.db).get(s.id).count == 2


def test_learning_is_per_group(tmp_path: Path) -> None:
    d = detector(tmp_path, NEW_VALUE)
    d.observe(rows([exec_event("/usr/bin/git", 0)], host="old"))
    # A host first seen later learns for its own hour.
    assert d.observe(rows([exec_event("/usr/bin/nc", 7200)], host="new")) == []
    assert len(d.observe(rows([exec_event("/usr/bin/nc", 7200)], host="old"))) == 1


def test_a_restart_keeps_learned_values_and_the_learning_start(tmp_path: Path) -> None:
    d = detector(tmp_path, NEW_VALUE)
    d.observe(rows([exec_event("/usr/bin/git", 0)]))
    d.db.close()
    d = detector(tmp_path, NEW_VALUE)
    assert d.observe(rows([exec_event("/usr/bin/git", 7200)])) == []  # learned before the restart
    assert len(d.observe(rows([exec_event("/usr/bin/nc", 7200)]))) == 1  # learning ended 1 h after the first


def test_an_event_that_breaks_evaluation_is_skipped_and_the_others_evaluated(tmp_path: Path) -> None:
    d = detector(tmp_path, THRESHOLD)
    good = rows([exec_event(seconds=s) for s in (0, 1, 2)])
    events = [exec_event(seconds=s) for s in (0, 1, 2)]
    bad = list(good[0])
    assert len(d.observe([tuple(bad), *good], [{"process": "not an object"}, *events])) == 1


def test_finished_windows_are_forgotten_but_not_by_an_event_from_the_future(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("opencws.backend.detection.engine.GC_SECONDS", 0.0)
    d = detector(tmp_path, THRESHOLD)
    now = (time.time_ns() - T0) // S  # seconds from T0 to now
    d.observe(rows([exec_event(seconds=now)], host="live"))
    # An event dated ten years ahead moves the clock to the wall clock, not beyond: "live" (its minute still
    # running) is kept.
    d.observe(rows([exec_event(seconds=now + 10 * 365 * 86400)], host="future"))
    assert {k[1] for k in d.windows} == {'["live"]', '["future"]'}
    # A window whose minute is over by that clock, and that no event reached for a minute, is forgotten, in
    # memory and on disk.
    d.observe(rows([exec_event(seconds=now - 600)], host="old"))
    assert ("r", '["old"]') in d.windows  # it just received an event (late events still add up)
    d.windows[("r", '["old"]')].touched -= 61
    d.observe(rows([exec_event("/usr/bin/ls", seconds=now)], host="x"))
    assert {k[1] for k in d.windows} == {'["live"]', '["future"]'}
    with d.db.lock:
        stored = {g for (g,) in d.db.conn.execute("SELECT grp FROM windows")}
    assert stored == {'["live"]', '["future"]'}
