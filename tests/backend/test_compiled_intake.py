"""The compiled intake pass (`opencws.backend.compiled_intake`, C) against the Python hot path
(`intake._accept_plain`): on what it accepts, the same rows byte for byte in RowBinary (the random ids and
context keys aside) and the same contexts; on anything else it says None and `accept_body` answers as the
Python paths do. It never crashes on mangled input."""

from __future__ import annotations

import copy
import os
import sys
import threading
import types
from typing import Any

import orjson
import pytest
from backend_corpus import event_mix
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opencws.backend import bodies, intake
from opencws.backend.intake import _accept_plain, accept_body
from opencws.backend.lineages import Lineages
from opencws.backend.store import tables
from opencws.backend.store.rowbinary import Cut, row_binary
from opencws.bench.secl_bench import realistic_mix
from opencws.model.codec import serialize

compiled_intake = pytest.importorskip("opencws.backend.compiled_intake")
if compiled_intake._intake is None:
    pytest.skip("the C extension is not built (setup.py build_ext --inplace)", allow_module_level=True)
CompiledIntake = compiled_intake.CompiledIntake

NOW = 1_800_000_000_000_000_000
TYPES = [t for _, t in tables.COLUMNS]
ID = tables.COLUMN_NAMES.index("id")
CONTEXT = tables.COLUMN_NAMES.index("context")
EVENT = tables.COLUMN_NAMES.index("event")
JSONL = "application/x-ndjson"

CORPUS = event_mix(300, seed=11)
REALISTIC = [orjson.loads(serialize(e)) for e in realistic_mix(400)]


def envelope(e: dict[str, Any], i: int) -> dict[str, Any]:
    """Envelopes of every form `_FastEnvelope` takes: rule_version a string or an integer, nulls, tags."""
    forms: list[dict[str, Any]] = [
        {"rule_id": f"r{i}", "rule_version": "1.0.0", "tags": ["a:b", "ç:é"], "policy": "p", "host": "h"},
        {"rule_id": "r", "rule_version": i - 3, "tags": [], "host": "hôte", "agent_version": "7.1"},
        {"rule_version": None, "tags": None, "policy": None},
        {},
    ]
    return {**forms[i % len(forms)], "event": e}


def python_path(body: bytes, content_type: str, serial: int, lineages: Lineages) -> intake.Outcome | None:
    raws = bodies.raw_documents(body, content_type, 5000)
    return None if raws is None else _accept_plain(raws, 32, NOW, serial, lineages)


def compiled_path(
    body: bytes, content_type: str, serial: int, c: Any, max_depth: int = 32
) -> tuple[list[Any], bytes, list[Any], list[Any]] | None:
    return c.accept(body, bodies.json_lines(content_type), 5000, max_depth, NOW, serial)


def same(got: tuple[list[Any], bytes, list[Any], list[Any]], want: intake.Outcome) -> None:
    """The compiled rows are the Python rows, and their RowBinary is the Python rows' with the compiled ids and
    keys; the contexts are the same texts, days and keys (as the rows name them)."""
    rows, encoded, contexts, new = got
    assert len(rows) == len(want.rows)
    keys: dict[str, str] = {}  # compiled key -> Python key
    relabelled = []
    for r, w in zip(rows, want.rows, strict=True):
        r, w = tuple(r), list(w)
        if r[CONTEXT] or w[CONTEXT]:
            assert keys.setdefault(r[CONTEXT], w[CONTEXT]) == w[CONTEXT]
        plain = [v for i, v in enumerate(r) if i not in (ID, CONTEXT, EVENT)]
        assert plain == [v for i, v in enumerate(w) if i not in (ID, CONTEXT, EVENT)]
        assert type(r[EVENT]) is type(w[EVENT]) or not isinstance(w[EVENT], Cut)
        if isinstance(w[EVENT], Cut):
            assert (bytes(r[EVENT].text), r[EVENT].at, r[EVENT].size) == (
                bytes(w[EVENT].text), w[EVENT].at, w[EVENT].size,
            )  # fmt: skip
        else:
            assert bytes(r[EVENT]) == bytes(w[EVENT])
        w[ID], w[CONTEXT] = r[ID], r[CONTEXT]
        relabelled.append(w)
    assert encoded == bytes(row_binary(relabelled, TYPES))
    assert [(d, keys[k], t) for d, k, t in contexts] == [(d, k, bytes(t)) for d, k, t in want.contexts]
    assert [(w, keys[k]) for _, w, k in new] == [(w, k) for _, w, k in want._new]


def both(body: bytes, content_type: str = JSONL, serial: int = 5) -> bool:
    """Whether the compiled pass took the body; when it did, what it made is the Python path's."""
    got = compiled_path(body, content_type, serial, CompiledIntake(Lineages()))
    want = python_path(body, content_type, serial, Lineages())
    if got is None:
        return False
    assert want is not None, "the compiled pass took a body the Python hot path does not"
    same(got, want)
    return True


def lines(events: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(e) for e in events)


@pytest.mark.parametrize("serial", [0, 5, -1])
@pytest.mark.parametrize("wrapped", [False, True])
def test_the_realistic_mix_gives_the_same_rows_and_contexts(serial: int, wrapped: bool) -> None:
    events = [envelope(e, i) if wrapped else e for i, e in enumerate(REALISTIC)]
    assert both(lines(events), serial=serial)


@pytest.mark.parametrize("serial", [0, 5])
@pytest.mark.parametrize("wrapped", [False, True])
def test_the_backend_corpus_gives_the_same_rows_line_by_line(serial: int, wrapped: bool) -> None:
    """Line by line: the corpus holds what the compiled pass leaves to Python (paths with escapes, trace ids
    past Int64); most lines it takes."""
    taken = 0
    for i, e in enumerate(CORPUS):
        taken += both(orjson.dumps(envelope(e, i) if wrapped else e), serial=serial)
    assert taken > len(CORPUS) // 2


def test_one_object_bodies_and_the_whitespace_around_them_are_stored_as_received() -> None:
    for i, e in enumerate(REALISTIC[:40]):
        text = orjson.dumps(envelope(e, i) if i % 2 else e)
        assert both(b" \r\n" + text + b" \n\t", "application/json")
        assert both(b"\n\n  " + text + b"\r\n\n", JSONL)


def test_json_written_loosely_is_read_alike() -> None:
    """Spaces between every token (the ancestors' key too: then they are cut no more), keys out of the
    schema's order."""
    for i, e in enumerate(REALISTIC[:30]):
        loose = orjson.dumps(envelope(e, i), option=orjson.OPT_INDENT_2).replace(b"\n", b" ")
        assert both(loose)
        backwards = {k: e[k] for k in reversed(list(e))}
        if "process" in backwards:
            backwards["process"] = {k: e["process"][k] for k in reversed(list(e["process"]))}
        assert both(orjson.dumps(backwards))


def test_a_body_of_blank_lines_has_no_rows() -> None:
    c = CompiledIntake(Lineages())
    got = compiled_path(b"\n \r\n\t\n", JSONL, 5, c)
    assert got is not None and got[0] == [] and got[1] == b""


def test_rows_read_like_tuples_and_serve_detection() -> None:
    out = accept_body(lines(REALISTIC[:20]), JSONL, 5000, 32, NOW, store=types.SimpleNamespace(serial=3))
    assert out.encoded is not None
    assert bytes(row_binary(out.rows, TYPES)) == out.encoded  # read whole, as an engine without RowBinary does
    for row in out.rows:
        t = tuple(row)
        assert len(row) == len(t) == len(tables.COLUMNS)
        assert row[:-1] == t[:-1] and list(row)[:-1] == list(t[:-1]) and row[1:4] == t[1:4] and row[-2] == t[-2]
        text = row[EVENT].text if isinstance(row[EVENT], Cut) else row[EVENT]
        assert orjson.loads(bytes(text))["evt"]["name"] == row[tables.COLUMN_NAMES.index("evt_name")]
        with pytest.raises(IndexError):
            row[len(t)]


def test_ancestors_are_learned_once_and_relearned_for_a_looser_depth_limit() -> None:
    c = CompiledIntake(Lineages())
    body = lines(REALISTIC[:50])
    assert compiled_path(body, JSONL, 5, c) is not None
    known = c.parser.registered()
    assert known[0] > 0
    assert compiled_path(body, JSONL, 5, c) is not None
    assert c.parser.registered() == known
    loose = compiled_path(body, JSONL, 5, c, max_depth=1)  # checked again against 1 (by Python)
    if loose is not None:
        want = python_path(body, JSONL, 5, Lineages())
        assert want is not None and len(want.rows) == len(loose[0])
    c.parser.clear()
    assert c.parser.registered() == (0, 0, 0, 0)
    assert compiled_path(body, JSONL, 5, c) is not None


def _with(e: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    e = copy.deepcopy(e)
    *parents, last = path.split(".")
    at = e
    for p in parents:
        at = at.setdefault(p, {})
    at[last] = value
    return e


BASE = next(e for e in REALISTIC if "ancestors" in e.get("process", {}) and "file" in e)
BASE_LINE = orjson.dumps(BASE)
ENV_LINE = orjson.dumps(envelope(BASE, 0))


def _deep(n: int) -> Any:
    v: Any = 1
    for _ in range(n):
        v = [v]
    return v


NOT_PLAIN: dict[str, bytes] = {
    "escape in a column": orjson.dumps(_with(BASE, "file.path", 'a"b')),
    "escape in a key": BASE_LINE.replace(b'"evt"', b'"\\u0065vt"', 1),
    "escape in an envelope field": orjson.dumps({**envelope(BASE, 0), "host": "a\nb"}),
    "float": orjson.dumps(_with(BASE, "process.pid", 1.5)),
    "integer written as a float": orjson.dumps(_with(BASE, "process.pid", 1.0)),
    "big integer": orjson.dumps(_with(BASE, "process.pid", 2**63)),
    "unknown field": orjson.dumps(_with(BASE, "process.nope", 1)),
    "unknown envelope field": orjson.dumps({**envelope(BASE, 0), "nope": "x"}),
    "duplicate key": b'{"evt":{},' + BASE_LINE[1:],
    "duplicate envelope key": ENV_LINE.replace(b'{"rule_id":', b'{"host":"a","host":"b","rule_id":', 1),
    "null in a typed field": orjson.dumps(_with(BASE, "process.comm", None)),
    "bad date": orjson.dumps(_with(BASE, "date", "2026-02-29T00:00:00Z")),
    "leap second": orjson.dumps(_with(BASE, "date", "2026-01-01T23:59:60Z")),
    "lower-case t": orjson.dumps(_with(BASE, "date", "2026-01-01t00:00:00Z")),
    "date before 1970": orjson.dumps(_with(BASE, "date", "1969-12-31T23:59:59Z")),
    "date after 2149": orjson.dumps(_with(BASE, "date", "2150-01-01T00:00:00Z")),
    "date past an Int64 of nanoseconds": orjson.dumps(_with(BASE, "date", "9999-12-31T23:59:59.999999999-23:59")),
    "invalid UTF-8": BASE_LINE.replace(b'"evt":{"name":"', b'"evt":{"name":"\xff', 1),
    "surrogate in UTF-8": BASE_LINE.replace(b'"evt":{"name":"', b'"evt":{"name":"\xed\xa0\x80', 1),
    "control character": BASE_LINE.replace(b'"evt":{"name":"', b'"evt":{"name":"\x01', 1),
    "free-form too deep": orjson.dumps(_with(BASE, "process.credentials.destination", _deep(40))),
    "missing required field": orjson.dumps(_with(BASE, "process.credentials", {"uid": 1})),
    "envelope field too long": orjson.dumps({**envelope(BASE, 0), "host": "é" * 1025}),
    "too many tags": orjson.dumps({**envelope(BASE, 0), "tags": ["t"] * 257}),
    "tag too long": orjson.dumps({**envelope(BASE, 0), "tags": ["x" * 1025]}),
    "wrong type": orjson.dumps(_with(BASE, "process.pid", "1")),
    "wrong type in an array": orjson.dumps(_with(BASE, "process.args", [1])),
    "event not an object": orjson.dumps({**envelope(BASE, 0), "event": [1]}),
    "mixed envelope and event": orjson.dumps({**envelope(BASE, 0), "evt": {}}),
    "envelope without event": orjson.dumps({"host": "h"}),
    "truncated line": BASE_LINE[: len(BASE_LINE) // 2],
    "trailing garbage": BASE_LINE + b"x",
    "two objects on a line": BASE_LINE + b" {}",
    "garbage": b"\x00\x01garbage{",
    "a bare array": b"[1, 2]",
    "form feed": b"\x0c" + BASE_LINE,
    "ancestors not an array": orjson.dumps(_with(BASE, "process.ancestors", {})),
    "ancestors' free-form too deep": orjson.dumps(
        _with(BASE, "process.ancestors", [_with(BASE["process"]["ancestors"][0], "credentials.destination", _deep(40))])
    ),
    "invalid ancestors": orjson.dumps(_with(BASE, "process.ancestors", [{"uid": "x", "gid": 0}])),
}


@pytest.mark.parametrize("kind", sorted(NOT_PLAIN))
def test_what_is_not_plainly_valid_is_left_to_the_python_paths(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    line = NOT_PLAIN[kind]
    body = lines(REALISTIC[:5]) + b"\n" + line + b"\n" + lines(REALISTIC[5:10])
    assert compiled_path(body, JSONL, 5, CompiledIntake(Lineages())) is None
    store = types.SimpleNamespace(serial=5)
    with_c = accept_body(body, JSONL, 5000, 32, NOW, store=store)
    monkeypatch.setattr(intake, "compiled", lambda: None)
    without = accept_body(body, JSONL, 5000, 32, NOW, store=store)
    assert with_c.encoded is None and with_c.rejected == without.rejected
    masked = [[v for i, v in enumerate(r) if i not in (ID, CONTEXT, EVENT)] for r in with_c.rows]
    assert masked == [[v for i, v in enumerate(r) if i not in (ID, CONTEXT, EVENT)] for r in without.rows]


def test_more_documents_than_allowed_are_left_to_the_python_paths() -> None:
    c = CompiledIntake(Lineages())
    body = lines(REALISTIC[:3])
    assert c.accept(body, True, 2, 32, NOW, 5) is None
    assert c.accept(body, True, 3, 32, NOW, 5) is not None
    with pytest.raises(bodies.BodyError):
        accept_body(body, JSONL, 2, 32, NOW)


SEEDS = [BASE_LINE, ENV_LINE, orjson.dumps(envelope(REALISTIC[1], 1)), orjson.dumps(REALISTIC[2])]
_SHARED = CompiledIntake(Lineages())


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    line = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(line) - 1)))
        if op == "set" and line:
            line[at] = draw(st.sampled_from(b'"\\{}[],:0-9.eE \x00\x7f\xc3\xa9\xffnulltrfa'))
        elif op == "insert":
            line[at:at] = draw(st.sampled_from([b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"1", b"-", b"\xc3", b"null"]))
        elif op == "delete" and line:
            del line[at]
        else:
            del line[at:]
    return bytes(line)


@settings(max_examples=int(os.environ.get("INTAKE_EXAMPLES", "300")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled(), st.sampled_from([0, 5]))
def test_mangled_lines_are_taken_alike_or_left_to_python(line: bytes, serial: int) -> None:
    body = lines(REALISTIC[:2]) + b"\n" + line
    got = compiled_path(body, JSONL, serial, _SHARED)
    if got is not None:
        want = python_path(body, JSONL, serial, Lineages())
        assert want is not None, "the compiled pass took a body the Python hot path does not"
        same(got, want)
    for content_type in ("application/json", JSONL):
        compiled_path(line, content_type, serial, _SHARED)  # never crashes


def test_a_known_object_is_checked_again_against_a_tighter_depth_limit() -> None:
    """Credentials (kept once checked) whose free-form part nests 5 deep: taken under a limit of 32, not
    under 3, though the text is known."""
    c = CompiledIntake(Lineages())
    line = orjson.dumps(_with(BASE, "process.credentials.destination", _deep(5)))
    body = line + b"\n" + line
    assert compiled_path(body, JSONL, 5, c) is not None
    assert c.parser.registered()[2] > 0
    assert compiled_path(body, JSONL, 5, c, max_depth=3) is None
    assert python_path(body, JSONL, 5, Lineages()) is not None


def test_known_objects_put_back_the_values_the_row_needs() -> None:
    """Parents and credentials met again (their texts known): the same rows as the first time they were
    read, in other events."""
    c = CompiledIntake(Lineages())
    first = compiled_path(lines(REALISTIC), JSONL, 0, c)
    again = compiled_path(lines(REALISTIC[::-1]), JSONL, 0, c)
    assert first is not None and again is not None
    masked = [[v for i, v in enumerate(r) if i not in (ID, EVENT)] for r in first[0]]
    assert [[v for i, v in enumerate(r) if i not in (ID, EVENT)] for r in again[0]] == masked[::-1]


@pytest.mark.parametrize(
    "date",
    [
        "2026-03-01T05:06:07Z", "2026-03-01T05:06:07.1Z", "2026-12-31T23:59:59.123456789Z",
        "2026-03-01T05:06:07.5+05:30", "2026-03-01T00:00:00-11:45", "1970-01-01T00:30:00+00:00",
        "1969-12-31T23:30:00-01:00", "2100-02-28T12:00:00.000001-00:00",
    ],
)  # fmt: skip
def test_dates_with_fractions_and_offsets_give_the_python_paths_instants(date: str) -> None:
    assert both(orjson.dumps(_with(BASE, "date", date)))
    assert both(orjson.dumps(envelope(_with(BASE, "date", date), 1)), serial=0)


def test_events_without_a_date_are_dated_when_received() -> None:
    e = {k: v for k, v in BASE.items() if k != "date"}
    assert both(orjson.dumps(e))


def test_threads_sharing_the_pass_get_their_own_rows() -> None:
    """Python callbacks (new ancestors, context keys) let other threads in mid-body: each body still gets the
    Python path's rows, while the registry fills under it and Python's cache drops its oldest texts."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    c = CompiledIntake(Lineages(max_bytes=200_000))
    failures: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for k in range(6):
                events = []
                for i, e in enumerate(REALISTIC[seed * 7 : seed * 7 + 40]):
                    e = copy.deepcopy(e)
                    for a in e.get("process", {}).get("ancestors", [])[:1]:
                        a["pid"] = seed * 1000 + k * 100 + i % 3  # new texts: learned while others run
                    events.append(e)
                body = lines(events)
                got = compiled_path(body, JSONL, 5, c)
                want = python_path(body, JSONL, 5, Lineages())
                assert got is not None and want is not None
                same(got, want)
        except BaseException as e:  # reported below
            failures.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not failures, failures[0]


def test_the_module_refuses_what_would_make_it_read_out_of_bounds() -> None:
    """An uninitialized Parser, tables with a cycle or a kind out of range, with two ancestors fields or one
    inside a cached object, rows made from Python."""
    k = compiled_intake._intake
    with pytest.raises(RuntimeError):
        k.Parser.__new__(k.Parser).accept(b"{}", True, 5, 5, 1, False, print)
    with pytest.raises(TypeError):
        k.Row()
    with pytest.raises(ValueError):
        k.Parser([[(b"a", 99, 0, 0, False, -1, False)]], print, Cut)
    with pytest.raises(ValueError):
        k.Parser([[(b"a", k.K_OBJECT, 0, 0, False, -1, False)]], print, Cut)  # a cycle
    with pytest.raises(ValueError):
        k.Parser([[(b'a"', k.K_STRING, 0, 0, False, -1, False)]], print, Cut)
    with pytest.raises(ValueError):  # two ancestors fields: one registry entry per document
        k.Parser([[(b"a", k.K_ANCESTORS, 0, 0, False, -1, False), (b"b", k.K_ANCESTORS, 0, 0, False, -1, False)]], print, Cut)
    with pytest.raises(ValueError):  # ancestors inside a cached object: a known text needs no callback
        k.Parser([[(b"a", k.K_OBJECT, 0, 1, False, -1, True)], [(b"b", k.K_ANCESTORS, 0, 0, False, -1, False)]], print, Cut)
    with pytest.raises(RuntimeError):  # initialized once: its tables never change under a batch
        CompiledIntake(Lineages()).parser.__init__([[]], print, Cut)
    with pytest.raises(ValueError):  # a schema without the values the row needs: no compiled pass
        compiled_intake.schema_nodes({"properties": {}})


def test_a_schema_the_pass_cannot_follow_leaves_the_intake_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled_intake, "event_schema", lambda: {"properties": {}})
    lineages = Lineages()
    assert compiled_intake.compiled(lineages) is None
    assert compiled_intake.compiled(lineages) is None  # said once, remembered


@pytest.mark.parametrize("pre_encoded", [True, False])
def test_the_compiled_rows_are_stored_and_read_back_as_sent(store: Any, pre_encoded: bool) -> None:
    """Into the embedded store (which takes the RowBinary as it is, or encodes the lazy rows) and into two
    ClickHouse shards (whose driver reads the lazy rows): every event comes back as it was sent, the
    envelope's host with it."""
    from opencws.secl.sql import compile_search

    events = REALISTIC[:150]
    body = lines([{"host": f"h{i % 4}", "rule_id": "r", "event": e} for i, e in enumerate(events)])
    out = accept_body(body, JSONL, 5000, 32, NOW, store=store)
    assert out.encoded is not None and out.contexts
    assert store.insert(out.rows, out.contexts, out.encoded if pre_encoded else None) == len(events)
    out.stored()
    page = store.search(compile_search(""), 0, 2**62, None, 1000)
    got = sorted((h.host, orjson.dumps(orjson.loads(h.event), option=orjson.OPT_SORT_KEYS)) for h in page.hits)
    sent = sorted(
        (f"h{i % 4}", orjson.dumps(e, option=orjson.OPT_SORT_KEYS)) for i, e in enumerate(events)
    )
    assert got == sent


def test_detection_raises_the_same_signals_from_the_compiled_rows(tmp_path: Any) -> None:
    """The detection engine reads a few columns of the rows and parses their event: the compiled rows raise
    what the Python rows raise."""
    from opencws.backend.detection.db import Database
    from opencws.backend.detection.engine import Detector
    from opencws.backend.detection.rules import load_file

    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(
        "rules:\n  - id: r\n    title: runs on {host}\n    message: \"{process.file.path} ran\"\n"
        "    severity: low\n    condition: evt.name == \"exec\" || evt.name == \"open\"\n    group_by: [host]\n"
        "    threshold: {count: 2, window: 1h}\n"
    )
    rules, _ = load_file(rules_file)
    body = lines([{"host": f"h{i % 3}", "rule_id": "x", "event": e} for i, e in enumerate(REALISTIC[:120])])
    got = compiled_path(body, JSONL, 5, CompiledIntake(Lineages()))
    want = python_path(body, JSONL, 5, Lineages())
    assert got is not None and want is not None
    signals = []
    for name, rows in (("c", got[0]), ("py", want.rows)):
        d = Detector(rules, Database(str(tmp_path / name)))
        signals.append(
            sorted((s.title, s.message, s.count, s.first_seen, s.last_seen) for s in d.observe(rows))
        )
    assert signals[0] == signals[1] and signals[0]


def test_the_cut_is_placed_as_the_python_path_places_it_when_the_ancestors_hold_an_ancestors_key() -> None:
    """The ancestors' own text holds an `"ancestors":` key (a free-form destination), the process's key is
    written with a space, and a copy of the ancestors follows a later `"ancestors":` key: `_offset` finds the
    first raw key (inside the ancestors), not followed by them, so it cuts their first occurrence; the pass
    once cut the copy (another `context_at`, another stored text)."""
    e = copy.deepcopy(next(e for e in REALISTIC if "credentials" in e.get("process", {}).get("ancestors", [{}])[0]))
    p = e["process"]
    ancestors = p.pop("ancestors")
    ancestors[0]["credentials"]["destination"] = {"ancestors": 1}
    creds = p.pop("credentials", None) or copy.deepcopy(ancestors[0]["credentials"])
    p["ancestors"] = ancestors
    p["credentials"] = {**creds, "destination": {"ancestors": ancestors}}
    line = orjson.dumps(e).replace(b'"ancestors":[', b'"ancestors" :[', 1)
    assert both(line)


def test_many_short_ancestors_texts_do_not_make_the_pass_forget_the_long_ones() -> None:
    """Short texts (`[ ]`, `[  ]`...: as many as a client likes) once cleared the whole registry, the long
    lineages with them (each then checked again by Python); only the short ones go now."""
    c = CompiledIntake(Lineages())
    assert compiled_path(lines(REALISTIC[:50]), JSONL, 5, c) is not None
    long_bytes = c.parser.registered()[1]  # (texts, bytes) of the ancestors registry
    assert long_bytes > 1000
    for n in range(100):
        short = _with(BASE, "process.ancestors", [])
        line = orjson.dumps(short).replace(b'"ancestors":[]', b'"ancestors":[' + b" " * (n % 20) + b"\t" * (n // 20) + b"]")
        assert both(line)
        assert compiled_path(line, JSONL, 5, c) is not None
    assert c.parser.registered()[1] >= long_bytes


@pytest.mark.parametrize("year", ["2028", "2000", "2148"])
def test_february_29_of_a_leap_year_is_taken_as_python_takes_it(year: str) -> None:
    """In the event's date and in an ancestor's exec_time (there for as long as the process runs)."""
    text = f"{year}-02-29T23:59:59.5+01:00"
    assert both(orjson.dumps(_with(BASE, "date", text)))
    ancestors = copy.deepcopy(BASE["process"]["ancestors"])
    ancestors[-1]["exec_time"] = text
    assert both(orjson.dumps(_with(BASE, "process.ancestors", ancestors)))


@pytest.mark.parametrize("year", ["2027", "2100"])
def test_february_29_of_other_years_is_left_to_the_python_paths(year: str) -> None:
    line = orjson.dumps(_with(BASE, "date", f"{year}-02-29T00:00:00Z"))
    assert compiled_path(line, JSONL, 5, CompiledIntake(Lineages())) is None


def test_an_ancestors_text_relearned_within_a_batch_gets_one_context() -> None:
    """The pass forgets a text (its bucket full) that `Lineages` forgot too (its bytes full): learned again in
    the same batch, it comes back as another Lineage; the batch stored two contexts of the one text and day,
    where the Python path stores one."""
    ancestors = BASE["process"]["ancestors"]
    events = [BASE]
    for n in range(9):  # the same first 32 bytes, other texts: one hash bucket (8 kept)
        other = copy.deepcopy(ancestors)
        other[-1]["pid"] = 1_000_000 + n
        events.append(_with(BASE, "process.ancestors", other))
    events.append(BASE)
    body = lines(events)
    got = compiled_path(body, JSONL, 5, CompiledIntake(Lineages(max_bytes=1)))
    want = python_path(body, JSONL, 5, Lineages())
    assert got is not None and want is not None
    same(got, want)


def test_a_parent_cut_with_its_ancestors_is_cut_the_same_way() -> None:
    """Parents right before their ancestors (cut with them), after them, or away from them; a copy of the two
    earlier in the event; one ancestors text with several parents."""
    events = []
    for i, e in enumerate(e for e in REALISTIC if {"parent", "ancestors"} <= e.get("process", {}).keys()):
        e = copy.deepcopy(e)
        p = e["process"]
        if i % 4 == 1:
            p["parent"] = p.pop("parent")
        elif i % 4 == 2 and isinstance(p.get("credentials"), dict):
            p["credentials"]["destination"] = {"parent": p["parent"], "ancestors": p["ancestors"]}
        elif i % 4 == 3:
            p["parent"]["pid"] = i % 3  # (a few: past 16 parents of one lineage, Python takes the body)
        events.append(e)
    assert both(lines(events), serial=5)


def test_a_lineage_with_many_parents_in_one_batch_is_left_to_python() -> None:
    """Past 16 parents of one ancestors text and day in a batch, the pass leaves the body to the Python path,
    which makes the same rows."""
    e = next(e for e in REALISTIC if {"parent", "ancestors"} <= e.get("process", {}).keys())
    events = []
    for pid in range(20):
        events.append(copy.deepcopy(e))
        events[-1]["process"]["parent"]["pid"] = pid
    c = CompiledIntake(Lineages())
    assert compiled_path(lines(events[:16]), JSONL, 5, c) is not None
    assert compiled_path(lines(events), JSONL, 5, c) is None
    assert not intake.accept_body(lines(events), JSONL, 5000, 32, NOW, store=types.SimpleNamespace(serial=5)).rejected
