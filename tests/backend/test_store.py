"""The store answers searches exactly as SECL's evaluator does, pages newest first, counts and expires."""

from __future__ import annotations

import datetime
from collections import Counter
from typing import Any

import orjson
import pytest
from backend_corpus import event_mix

from opencws.backend.intake import accept_body
from opencws.backend.store import Store, StoreError, tables
from opencws.backend.store.rows import Envelope, row_of_dict
from opencws.model import jsontext
from opencws.model.codec import event_from_json, format_timestamp, parse_timestamp
from opencws.secl.sql import SEARCH_REGISTRY, compile_search

EVENTS = event_mix(400)
ALL = (0, 2**62)
SEARCHES = [
    "",
    'open.file.path == "/etc/shadow"',
    'open.file.path =~ "/tmp/a_b*"',  # `_` and `%` in the value are not LIKE wildcards
    'open.file.path =~ "/tmp/x*"',  # a newline inside the value
    'process.file.path =~ r"^/tmp/evil.name$"',  # RE2's `.` does not match a newline
    'process.file.path =~ r"evil"',
    'process.ancestors.file.path == "/usr/sbin/sshd"',
    'process.ancestors.file.name =~ "ssh*"',
    'process.ancestors.file.path != "/usr/bin/bash"',
    'exec.file.name in ["curl", ~"wg*"]',
    'evt.name in ["rename", "unlink"]',
    'rename.file.destination.path == "/etc/passwd"',
    "process.uid >= 1000 && process.pid < 2500",
    'process.comm == "sh" && process.args =~ "*install*"',
    'process.comm == "sh" || process.args =~ "*install*"',
    '!(process.comm in ["sh", "bash"]) && container.id != ""',
    "open.flags & O_CREAT == 0",
    'process.parent.file.path == "/usr/bin/bash"',
    'process.user == "root"',
    'dd.trace_id == "18446744073709551615"',  # the prefilter's needle also finds the id with one more digit...
    'dd.trace_id == "1844674407370955161"',  # ...which the evaluator refuses
    'dd.trace_id == "42" && open.file.path == "/etc/shadow"',
    'dd.trace_id == ""',
]


def newest_first(events: list[dict]) -> list[dict]:
    return sorted(events, key=lambda e: parse_timestamp(e["date"]), reverse=True)


def ingest(store: Store, events: list[dict], host: Any = lambda i: f"h{i % 3}", cut: bool = True) -> None:
    """As the intake stores them: each event's ancestors apart, once (`Store.insert(rows, contexts)`)."""
    body = b"\n".join(jsontext.dumps({"host": host(i), "event": e}) for i, e in enumerate(events))
    out = accept_body(body, "application/x-ndjson", len(events), 32, store=store)
    assert not out.rejected and bool(out.contexts) == cut
    assert store.insert(out.rows, out.contexts) == len(events)
    out.stored()


@pytest.fixture
def filled(store: Store) -> Store:
    ingest(store, EVENTS)
    return store


@pytest.mark.parametrize("expr", SEARCHES)
def test_search_answers_as_the_secl_evaluator(filled: Store, expr: str) -> None:
    s = compile_search(expr)
    expected = [e for e in newest_first(EVENTS) if s.matches(event_from_json(e))]
    page = filled.search(s, *ALL, None, 1000)
    assert [h.event for h in page.hits] == [_json(e) for e in expected]
    assert page.next is None


@pytest.mark.parametrize("expr", ["", 'process.comm == "sh" && process.args =~ "*install*"'])
def test_cursor_pages_reach_every_match_once_in_order(filled: Store, expr: str) -> None:
    s = compile_search(expr)
    seen, cursor = [], None
    while True:
        page = filled.search(s, *ALL, cursor, 7)
        seen += [h.id for h in page.hits]
        # Events arriving meanwhile (older and newer) do not move the cursor.
        filled.insert([row_of_dict(EVENTS[len(seen) % 50], Envelope(), 0)] if len(seen) < 30 else [])
        if page.next is None:
            break
        cursor = page.next
    expected = [e for e in EVENTS if s.matches(event_from_json(e))]
    assert len(seen) == len(set(seen)) >= len(expected)


def test_pages_are_cut_at_max_scan_and_go_on_from_there(filled: Store) -> None:
    s = compile_search('process.comm == "sh" || process.args =~ "*install*"')
    expected = [e for e in newest_first(EVENTS) if s.matches(event_from_json(e))]
    got, cursor, pages = [], None, 0
    while True:
        page = filled.search(s, *ALL, cursor, 1000, max_scan=50)
        got += [h.event for h in page.hits]
        pages += 1
        if page.next is None:
            break
        cursor = page.next
    assert got == [_json(e) for e in expected]
    assert pages >= len(EVENTS) // 50


def test_time_range_is_from_inclusive_to_exclusive(filled: Store) -> None:
    dates = sorted(parse_timestamp(e["date"]) for e in EVENTS)
    page = filled.search(compile_search(""), dates[10], dates[20], None, 1000)
    assert sorted(h.date for h in page.hits) == dates[10:20]


@pytest.mark.parametrize("expr", ["", 'process.comm == "sh" || process.args =~ "*install*"'])
@pytest.mark.parametrize("field", ["process.comm", "process.ancestors.file.name", "process.args"])
def test_facets_count_matching_events_by_value(filled: Store, expr: str, field: str) -> None:
    s = compile_search(expr)
    getter = SEARCH_REGISTRY.get(field).getter
    multi = SEARCH_REGISTRY.get(field).multi
    counts: Counter = Counter()
    for e in EVENTS:
        ev = event_from_json(e)
        if s.matches(ev):
            v = getter(ev)
            counts.update(set(v)) if multi else counts.update([v])
    top, complete = filled.facet(s, field, *ALL, 3)
    assert complete
    assert top == sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]


@pytest.mark.parametrize("expr", ["", 'process.comm == "sh" || process.args =~ "*install*"'])
def test_timeseries_counts_matching_events_per_bucket(filled: Store, expr: str) -> None:
    s = compile_search(expr)
    step = 60 * 1_000_000_000
    counts = Counter(
        parse_timestamp(e["date"]) // step * step for e in EVENTS if s.matches(event_from_json(e))
    )
    series, complete = filled.timeseries(s, *ALL, step)
    assert complete and series == sorted(counts.items())


def test_retention_drops_whole_days_before_the_limit(store: Store) -> None:
    day = 86_400 * 1_000_000_000
    base = parse_timestamp("2026-11-20T12:00:00Z")
    old, new = event_mix(5, base_ns=base - 3 * day), event_mix(5, seed=8, base_ns=base)
    # Spread over several hosts, hence over both shards of the cluster; each day's ancestors stored with it.
    ingest(store, old + new, host=lambda i: f"h{i}")
    days = f"SELECT DISTINCT day FROM {store.contexts_table} ORDER BY day"
    store.flush()  # the engine itself is asked: the journal's rows into it first
    assert [str(d) for (d,) in store.engine.execute(days)] == ["2026-11-17", "2026-11-20"]
    assert store.drop_before(datetime.date(2026, 11, 19)) == ["2026-11-17"]
    assert store.count() == 5
    assert [str(d) for (d,) in store.engine.execute(days)] == ["2026-11-20"]
    assert len(store.search(compile_search(""), *ALL, None, 10).hits) == 5
    assert store.drop_before(datetime.date(2026, 11, 19)) == []
    # An agent's backlog sends events of the dropped day again: their ancestors are stored again with them
    # (the intake had stored them there before the drop), and they come back whole.
    ingest(store, old, host=lambda i: f"h{i}")
    store.flush()
    assert [str(d) for (d,) in store.engine.execute(days)] == ["2026-11-17", "2026-11-20"]
    hits = store.search(compile_search(""), *ALL, None, 20).hits
    assert sorted(h.event for h in hits) == sorted(jsontext.dumps(e).decode() for e in old + new)


def test_get_returns_one_event_by_id(filled: Store) -> None:
    hit = filled.search(compile_search(""), *ALL, None, 1).hits[0]
    assert filled.get(hit.id) == hit
    assert filled.get("nope' OR 1=1") is None


def test_get_many_returns_events_by_position_in_the_order_asked(filled: Store) -> None:
    hits = filled.search(compile_search(""), *ALL, None, 50).hits[::7]
    asked = [(h.date, h.id) for h in reversed(hits)]
    assert filled.get_many([*asked, (hits[0].date, "0" * 24)]) == list(reversed(hits))
    assert filled.get_many([]) == []


def _json(e: dict) -> str:

    return orjson.dumps(e).decode()


def test_cluster_spreads_events_over_both_shards(cluster_store: Store) -> None:
    cluster_store.insert([row_of_dict(e, Envelope(host=f"host-{i}"), 0) for i, e in enumerate(EVENTS)])
    cluster_store.flush()
    per_shard = [
        node.execute(f"SELECT count() FROM {cluster_store.database}.events_local")[0][0]
        for node in cluster_store.nodes()
    ]
    assert len(per_shard) == 2 and all(n > 0 for n in per_shard) and sum(per_shard) == len(EVENTS)
    assert cluster_store.count() == len(EVENTS)


@pytest.mark.parametrize(
    "value",
    ["it's", "a\\b", "tab\there", "new\nline", "\\N", "{p0:String}", "' OR 1=1 --", "é\0x", ""],
)
def test_parameters_reach_the_engine_unchanged(store: Store, value: str) -> None:
    row = store.engine.execute("SELECT {s:String}, {a:Array(String)}", {"s": value, "a": [value, "x"]})
    assert row == [(value, [value, "x"])]


def test_fsync_flushes_every_insert_where_the_engine_can(store: Store) -> None:
    """Modern ClickHouse (chdb) flushes when asked; 18.16 cannot, and says so rather than pretend."""
    if store.cluster is None:
        store.create(fsync=True)
        ddl = store.engine.execute(f"SHOW CREATE TABLE {store.database}.events_local")[0][0]
        assert "fsync_after_insert = 1" in ddl
        store.create(fsync=False)
        assert (
            "fsync_after_insert = 0"
            in store.engine.execute(f"SHOW CREATE TABLE {store.database}.events_local")[0][0]
        )
    else:
        with pytest.raises(StoreError, match="cannot flush inserts to disk"):
            store.create(fsync=True)
        store.create(fsync=False)


def test_pages_over_many_days_cross_the_time_windows_in_order(store: Store) -> None:
    """Searches walk time windows backwards (an hour, then wider): pages that straddle them keep the order."""
    events = event_mix(300, seed=11)
    base = parse_timestamp("2026-11-01T00:00:00Z")
    for i, e in enumerate(events):
        # Irregular gaps from seconds to two days: most windows hold a few events, some none.
        e["date"] = format_timestamp(
            base + sum((j * 7919) % 97 for j in range(i)) * 1_800_000_000_000 // 97 + i
        )
    store.insert([row_of_dict(e, Envelope(host=f"h{i % 4}"), 0) for i, e in enumerate(events)])
    for expr in ["", 'process.comm == "sh"', 'process.comm == "sh" || process.args =~ "*install*"']:
        s = compile_search(expr)
        expected = [_json(e) for e in newest_first(events) if s.matches(event_from_json(e))]
        got, cursor = [], None
        while True:
            page = store.search(s, *ALL, cursor, 9)
            got += [h.event for h in page.hits]
            if page.next is None:
                break
            cursor = page.next
        assert got == expected, expr
        lo, hi = parse_timestamp(events[40]["date"]), parse_timestamp(events[200]["date"])
        window = [
            _json(e)
            for e in newest_first(events)
            if lo <= parse_timestamp(e["date"]) < hi and s.matches(event_from_json(e))
        ]
        assert [h.event for h in store.search(s, lo, hi, None, 1000).hits] == window


def test_rows_with_hostile_strings_come_back_unchanged(store: Store) -> None:
    nasty = "a\tb\nc\\d'e\"f\0g\\N é {p0:String} %_*"
    e = event_mix(1, seed=5)[0]
    e["process"]["comm"] = nasty
    e["process"]["executable"]["path"] = "/" + nasty
    env = Envelope(rule_id=nasty, host=nasty, tags=[nasty, "", "x'y"], policy="\\")
    store.insert([row_of_dict(e, env, 0)])
    (hit,) = store.search(compile_search(""), *ALL, None, 10).hits
    assert (hit.rule_id, hit.host, hit.tags, hit.policy) == (nasty, nasty, [nasty, "", "x'y"], "\\")
    assert hit.event == _json(e)
    found = store.facet(compile_search(""), "process.comm", *ALL, 5)[0]
    assert found == [(nasty, 1)]


def test_the_evaluator_has_the_last_word_even_on_an_exact_prefilter(store: Store) -> None:
    e = next(e for e in EVENTS if e["process"]["executable"]["path"] == "/usr/bin/curl")
    honest = row_of_dict(e, Envelope(), 0)
    forged = list(row_of_dict(e, Envelope(), 0))
    forged[tables.COLUMN_NAMES.index("process_file_path")] = "/usr/bin/wget"  # the column lies about the event
    store.insert([honest, tuple(forged)])
    s = compile_search('process.file.path == "/usr/bin/wget"')
    assert s.where.exact
    assert store.search(s, *ALL, None, 10).hits == []
    assert len(store.search(compile_search('process.file.path == "/usr/bin/curl"'), *ALL, None, 10).hits) == 1


def test_names_that_are_not_utf8_are_searched_and_counted_as_secl_reads_them(store: Store) -> None:
    e = event_mix(1, seed=8)[0]
    e["process"]["comm"] = "caf\udce9"  # the byte 0xE9 of a name that is not UTF-8
    store.insert([row_of_dict(e, Envelope(), 0), row_of_dict(event_mix(1, seed=9)[0], Envelope(), 0)])
    (hit,) = store.search(compile_search('process.comm == "caf\udce9"'), *ALL, None, 10).hits
    assert event_from_json(hit.event).process.comm == "caf\udce9"
    assert ("caf\udce9", 1) in store.facet(compile_search(""), "process.comm", *ALL, 5)[0]


def test_events_stored_without_their_ancestors_come_back_as_sent(store: Store) -> None:
    """Byte for byte, whatever precedes the ancestors in the event: UTF-8 beyond ASCII, escapes of bytes
    that are not UTF-8, another `"ancestors":` key; and events of a later batch name the stored copy."""
    from opencws.bench.secl_bench import realistic_mix
    from opencws.model.codec import serialize

    mix = [orjson.loads(serialize(e)) for e in realistic_mix(50)]
    base = [e for e in mix if e.get("file") and e["process"].get("credentials")][:3]
    odd = [dict(e) for e in base]
    odd[0]["file"] = dict(odd[0]["file"], path="/srv/caf\u00e9/\u65e5\u672c.txt")
    p = odd[1]["process"]
    creds = dict(p["credentials"], destination={"ancestors": [1]})  # before the process's own
    odd[1]["process"] = {"credentials": creds, **{k: v for k, v in p.items() if k != "credentials"}}
    odd[2]["file"] = dict(odd[2]["file"], path="/tmp/caf\udce9")
    ingest(store, base[:2])
    ingest(store, base + odd[:2])
    ingest(store, odd[2:], cut=False)  # escapes of lone surrogates: the slow path, which cuts nothing
    count = "SELECT count() FROM {} WHERE {}"
    store.flush()
    assert store.engine.execute(count.format(store.read_table, "context != ''"))[0][0] == 7
    assert store.engine.execute(count.format(store.contexts_table, "1"))[0][0] < 7
    hits = store.search(compile_search(""), *ALL, None, 100).hits
    sent = [jsontext.dumps(e).decode() for e in base[:2] + base + odd]
    assert sorted(h.event for h in hits) == sorted(sent)
    for h in hits:
        assert store.get(h.id) == h
    assert store.get_many([(h.date, h.id) for h in hits]) == hits


def test_a_store_made_before_the_contexts_gains_their_columns(chdb_store: Store) -> None:
    db, table = chdb_store.database, f"{chdb_store.database}.{tables.LOCAL_TABLE}"
    chdb_store.engine.execute(f"DROP TABLE {table}")
    chdb_store.engine.execute(
        tables.create_local_table(db).replace("  context String,\n  context_at Int64,\n", "")
    )
    date = parse_timestamp("2025-01-01T00:00:00Z")
    chdb_store.engine.execute(f"INSERT INTO {table} (day, date, id, event) VALUES ('2025-01-01', {date}, 'a', '{{}}')")
    chdb_store.create()
    ingest(chdb_store, EVENTS[:20])
    hits = chdb_store.search(compile_search(""), *ALL, None, 100).hits
    assert [h.event for h in hits][-1] == "{}" and len(hits) == 21


def test_an_event_whose_context_is_gone_is_an_error_not_a_broken_event(chdb_store: Store) -> None:
    ingest(chdb_store, EVENTS[:10])
    hit = chdb_store.search(compile_search(""), *ALL, None, 1).hits[0]
    other = Store(chdb_store.engine, chdb_store.database)  # texts not read yet
    chdb_store.engine.execute(f"TRUNCATE TABLE {chdb_store.contexts_table}")
    assert chdb_store.get(hit.id) == hit  # read before: kept by key
    with pytest.raises(StoreError, match="lacks the process context"):
        other.get(hit.id)


def test_search_results_cut_at_a_copy_of_their_context_are_judged_as_sent(store: Store) -> None:
    """A copy of a process's parent and ancestors earlier in its event (in free-form credentials) takes the
    cut; the check of search results then reads that event whole. Its sibling, cut where its process's own
    parent and ancestors are, is judged with them put back: both as the evaluator judges the events sent."""
    import copy

    from opencws.bench.secl_bench import realistic_mix
    from opencws.model.codec import serialize

    mix = [orjson.loads(serialize(e)) for e in realistic_mix(200)]
    e = copy.deepcopy(next(x for x in mix if x["process"].get("parent") and x["process"].get("credentials")))
    p = e["process"]
    creds = dict(p["credentials"], destination={"parent": p["parent"], "ancestors": p["ancestors"]})
    e["process"] = {"credentials": creds, **{k: v for k, v in p.items() if k != "credentials"}}
    sibling = copy.deepcopy(e)
    sibling["process"]["pid"] += 1
    del sibling["process"]["credentials"]["destination"]
    ingest(store, [e, sibling])
    store.flush()
    stored = store.engine.execute(f"SELECT event FROM {store.read_table} WHERE process_pid = {p['pid']}")[0][0]
    assert '"ancestors":[{' in stored  # the process's own ancestors stayed: the copy was cut
    first = p["ancestors"][0]["executable"]
    for expr in (
        f'process.ancestors.file.path == "{first["path"]}"',
        f'process.parent.file.name == "{p["parent"]["executable"]["name"]}"',
        f"process.pid == {p['pid']}",
        f'process.ancestors.file.path == "{first["path"]}" && process.pid != {p["pid"]}',
    ):
        s = compile_search(expr)
        expected = [_json(x) for x in (e, sibling) if s.matches(event_from_json(x))]  # (one date: any order)
        assert expected
        assert sorted(h.event for h in store.search(s, *ALL, None, 10).hits) == sorted(expected)
