"""A differential fuzzer of the compiled intake pass (`opencws.backend._intake`, C).

Bodies are made from valid agent lines (the bench's realistic mix serialized by `opencws.model.codec`, and
the backend corpus), mutated in their structure (edge values at random places: escapes, unicode, Int64
edges, date-times at their edges, envelope fields near the 1024-character limit, duplicate and escaped
keys, an `event` key inside the event...), in their text (whitespace, CRLF, BOM, blank lines, no last
newline) and in their bytes. For each body, the compiled pass either says None or:

- its rows and RowBinary are the Python hot path's (`intake._accept_plain`, ids and keys masked), and
- the slow twin (`intake.accept`: orjson and the exact validator of `opencws.schema.validation`) accepts
  every document of it, with the same column values (the stored event text aside, which it re-serializes).

One `CompiledIntake` serves a whole run (its registries of known texts then see the same texts in other
places and under other depth limits). `test_compiled_intake_fuzz.py` runs a few seconds of it; for a long run:

    PYTHONPATH=src:tests/backend .venv/bin/python tests/backend/intake_fuzz.py --seconds 600 [--seed N]
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from opencws.backend import bodies, intake
from opencws.backend.compiled_intake import CompiledIntake
from opencws.backend.lineages import Lineages
from opencws.backend.store import tables
from opencws.backend.store.rowbinary import Cut, row_binary
from opencws.model import jsontext

NOW = 1_800_000_000_000_000_000
TYPES = [t for _, t in tables.COLUMNS]
ID = tables.COLUMN_NAMES.index("id")
CONTEXT = tables.COLUMN_NAMES.index("context")
CONTEXT_AT = tables.COLUMN_NAMES.index("context_at")
EVENT = tables.COLUMN_NAMES.index("event")
JSONL = "application/x-ndjson"
SENTINEL = "\u0001FUZZ\u0001"
KEY_SENTINEL = "\u0002FUZZ\u0002"


def seed_events() -> list[dict[str, Any]]:
    from backend_corpus import event_mix

    from opencws.bench.secl_bench import realistic_mix
    from opencws.model.codec import serialize

    return [orjson.loads(serialize(e)) for e in realistic_mix(120)] + event_mix(60, seed=3)


STRINGS: list[str] = [
    "", "a", "é", "😀", "\u2028", "\u007f", "a\"b", "a\\b", "a/b", "\n", "x" * 1024, "x" * 1025, "é" * 1024,
    "é" * 1025, "😀" * 1024, "😀" * 1025, "/usr/bin/x", "/", "ancestors", '"ancestors":', "\"ancestors\":[1]",
    "\ufeff", "\x00", "\u0085",
]  # fmt: skip
INTS: list[int] = [0, 1, -1, 2**31, 2**63 - 1, -(2**63), 2**63, 2**64 - 1]
DATES: list[str] = [
    "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2023-02-28T24:00:00Z", "2023-12-31T23:59:60Z",
    "2023-06-01T12:00:00+23:59", "2023-06-01T12:00:00-23:59", "2023-06-01T12:00:00.1234567890Z",
    "2023-06-01T12:00:00.123456789Z", "2023-06-01T12:00:00.Z", "2023-06-01t12:00:00z", "2023-06-01T12:00:00",
    "2149-06-06T23:59:59.999999999Z", "2149-06-07T00:00:00Z", "2149-06-06T23:59:59-00:01", "1970-01-01T00:00:00Z",
    "1970-01-01T00:00:00+00:01", "1969-12-31T23:59:59Z", "1969-12-31T23:59:59-00:01", "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999999-23:59", "2023-06-01T12:00:00+24:00", "2023-06-01T12:00:00+0100",
    "2023-06-01 12:00:00Z", "2023-04-31T00:00:00Z", "2023-13-01T00:00:00Z", "2023-06-01T12:00:00.000000000+00:00",
    "\uff12023-06-01T12:00:00Z", "2023-06-01T12:00:00Z\n",
]  # fmt: skip
# raw JSON texts put where a value is
TOKENS: list[bytes] = [
    b"-0", b"01", b"-01", b"1.0", b"1e2", b"1E2", b"-", b"0.5", b"9223372036854775807", b"-9223372036854775808",
    b"9223372036854775808", b"-9223372036854775809", b"18446744073709551615", b"00", b"+1", b"NaN", b"Infinity",
    b'"\\u0000"', b'"\\ud800"', b'"\\udc80"', b'"\\uD83D\\uDE00"', b'"\\/"', b'"\\u00e9"', b'"\\u0041"', b'"\xff"',
    b'"\xc0\x80"', b'"\xed\xa0\x80"', b'"\xf4\x90\x80\x80"', b'"\xef\xbb\xbf"', b'"\x7f"', b'"\xe2\x80\xa8"',
    b'"a\\"b"', b'"\\\\"', b'"\\x"', b'"\\u12"', b'"\t"', b"true", b"false", b"null", b"nul", b"tru", b"{}",
    b"[]", b"[null]", b'[""]', b"[[[[[[[[[[[[]]]]]]]]]]]]", b'{"a":{"a":{"a":{"a":{"a":{}}}}}}', b"{ }", b"[ ]",
    b'{"ancestors":[]}', b'{"a":1,"a":2}', b'"2023-06-01T12:00:00Z"', b'"\\u0032023-06-01T12:00:00Z"',
]  # fmt: skip
KEYS_RAW: list[bytes] = [
    b'"\\u0065vt"', b'"event"', b'"ancestors"', b'"date"', b'"process"', b'"pid"', b'"uid"', b'"name"', b'"path"',
    b'"host"', b'"tags"', b'"rule_id"', b'"rule_version"', b'"x"', b'""', b'"\\u0000"', b'"evt\xc3\xa9"',
    b'"credentials"', b'"destination"', b'"parent"',
]  # fmt: skip
ENVELOPE_VALUES: list[Any] = [None, "", "1.0", 0, -0, 2**63 - 1, 2**63, -(2**63), 1.5, True, [], ["a"], *STRINGS[:16]]


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:4]):
            out += _paths(v, (*at, i))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        value = value[p]
    return value


def _edge_value(rnd: random.Random, old: Any) -> Any:
    pick = rnd.random()
    if isinstance(old, str) and "T" in old and old[:1].isdigit() and pick < 0.6:
        return rnd.choice(DATES)
    if isinstance(old, int) and not isinstance(old, bool) and pick < 0.5:
        return rnd.choice(INTS)
    if isinstance(old, str) and pick < 0.5:
        s = rnd.choice(STRINGS)
        return s if rnd.random() < 0.5 else old + s
    if isinstance(old, list) and old and pick < 0.4:
        return [*old, copy.deepcopy(rnd.choice(old))] if rnd.random() < 0.5 else old[1:]
    return rnd.choice([*STRINGS[:6], *INTS[:6], *DATES[:4], None, True, False, {}, [], [1], {"a": 1}, SENTINEL])


def _ancestors_keys(rnd: random.Random, e: dict[str, Any]) -> None:
    """`"ancestors":` keys and copies of the ancestors' text elsewhere in the event (where the cut goes)."""
    p = e.get("process")
    if not isinstance(p, dict) or not isinstance(p.get("ancestors"), list) or not p["ancestors"]:
        return
    ancestors = p["ancestors"]
    first = ancestors[0]
    if isinstance(first, dict) and isinstance(first.get("credentials"), dict) and rnd.random() < 0.5:
        first["credentials"]["destination"] = {"ancestors": rnd.choice([1, [], copy.deepcopy(ancestors[1:])])}
    creds = p.get("credentials")
    if isinstance(creds, dict) and rnd.random() < 0.7:
        creds["destination"] = rnd.choice([{"ancestors": copy.deepcopy(ancestors)}, copy.deepcopy(ancestors)])
        if rnd.random() < 0.5:  # after the ancestors
            p["credentials"] = p.pop("credentials")


def _parent_places(rnd: random.Random, e: dict[str, Any]) -> None:
    """The parent's text right before the ancestors' (then both are cut), or not, and copies of the two
    elsewhere in the event."""
    p = e.get("process")
    if not isinstance(p, dict) or "parent" not in p or "ancestors" not in p:
        return
    r = rnd.random()
    creds = p.get("credentials")
    if r < 0.35 and isinstance(creds, dict):  # a copy of the two, before them or after
        creds["destination"] = {"parent": copy.deepcopy(p["parent"]), "ancestors": copy.deepcopy(p["ancestors"])}
        if rnd.random() < 0.3:
            p["credentials"] = p.pop("credentials")
    elif r < 0.55:  # the parent after the ancestors
        p["parent"] = p.pop("parent")
    elif r < 0.75:  # another property between them
        items = [(k, v) for k, v in p.items() if k != "ancestors"]
        i = [k for k, _ in items].index("parent")
        items.insert(min(i + 2, len(items)), ("ancestors", p["ancestors"]))
        p.clear()
        p.update(items)
    elif isinstance(p["parent"], dict):  # a parent that is not the first ancestor
        p["parent"]["pid"] = rnd.choice([0, 1, 2**31])


def mutate_event(rnd: random.Random, event: dict[str, Any], pool: list[dict[str, Any]]) -> dict[str, Any]:
    e = copy.deepcopy(event)
    if rnd.random() < 0.3:
        _ancestors_keys(rnd, e)
    if rnd.random() < 0.3:
        _parent_places(rnd, e)
    for _ in range(rnd.choice([0, 1, 1, 1, 2, 3])):
        paths = _paths(e)
        path = rnd.choice(paths[1:]) if len(paths) > 1 else ()
        if not path:
            continue
        parent, last = _get(e, path[:-1]), path[-1]
        op = rnd.random()
        if op < 0.45:
            parent[last] = _edge_value(rnd, parent[last])
        elif op < 0.55:
            parent[last] = SENTINEL
        elif op < 0.65 and isinstance(parent, dict):
            del parent[last]
        elif op < 0.75 and isinstance(parent, dict):
            parent[KEY_SENTINEL] = rnd.choice([1, "x", {}, [], None])
        elif op < 0.85 and isinstance(parent, dict):  # a part of another event, in this place or another
            other = rnd.choice(pool)
            opaths = [p for p in _paths(other)[1:] if isinstance(_get(other, p), dict | list)]
            if opaths:
                parent[last] = copy.deepcopy(_get(other, rnd.choice(opaths)))
        elif isinstance(parent, dict):
            parent["event"] = rnd.choice([{}, 1, copy.deepcopy(e.get("evt", {}))])
    return e


def envelope(rnd: random.Random, event: Any) -> dict[str, Any]:
    env: dict[str, Any] = {}
    for k in ("rule_id", "rule_version", "policy", "host", "agent_version"):
        if rnd.random() < 0.6:
            env[k] = rnd.choice(ENVELOPE_VALUES) if rnd.random() < 0.3 else f"{k}-{rnd.randrange(9)}"
    if rnd.random() < 0.5:
        env["tags"] = rnd.choice([None, [], ["a:b"], ["é" * 1024], ["x"] * 256, ["x"] * 257, [1], [None], "t"])
    items = list(env.items())
    items.insert(rnd.randrange(len(items) + 1), ("event", event))
    return dict(items)


def _replace_sentinels(rnd: random.Random, text: bytes) -> bytes:
    sentinel = orjson.dumps(SENTINEL)
    while sentinel in text:
        text = text.replace(sentinel, rnd.choice(TOKENS), 1)
    key = orjson.dumps(KEY_SENTINEL)
    while key in text:
        text = text.replace(key, rnd.choice(KEYS_RAW), 1)
    return text


def _loosen(rnd: random.Random, text: bytes) -> bytes:
    """Whitespace between tokens (outside strings), as a writer may put it."""
    out, in_string, escaped = bytearray(), False, False
    ws = [b" ", b"\t", b"\r", b"  ", b"\r\n"[:1]]
    for c in text:
        out.append(c)
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:
                escaped = True
            elif c == 0x22:
                in_string = False
                if rnd.random() < 0.2:  # (before a key's colon too)
                    out += rnd.choice(ws)
        elif c == 0x22:
            in_string = True
        elif c in b",:{[" and rnd.random() < 0.3:
            out += rnd.choice(ws)
    return bytes(out)


def serialize_line(rnd: random.Random, doc: Any) -> bytes:
    text = orjson.dumps(doc)
    r = rnd.random()
    if r < 0.1:
        text = orjson.dumps(doc, option=orjson.OPT_INDENT_2).replace(b"\n", b" ")
    elif r < 0.2:
        text = _loosen(rnd, text)
    if rnd.random() < 0.25:  # the ancestors' key as a writer may put it (then no `"ancestors":` marks them)
        text = text.replace(b'"ancestors":', rnd.choice([b'"ancestors" :', b'"\\u0061ncestors":']), 1)
    return _replace_sentinels(rnd, text)


def mutate_bytes(rnd: random.Random, line: bytes) -> bytes:
    b = bytearray(line)
    for _ in range(rnd.randrange(1, 4)):
        at = rnd.randrange(len(b) + 1)
        op = rnd.random()
        if op < 0.3 and b:
            b[min(at, len(b) - 1)] = rnd.choice(b'"\\{}[],:0123456789.eE- \t\r\x00\x7f\xc3\xa9\xff\xedntrfalsu')
        elif op < 0.55:
            b[at:at] = rnd.choice([b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"1", b"-", b"\xc3", b"null",
                                   b"\\u0000", b"\\ud800", b" ", b"\r", b"\xef\xbb\xbf", b'"ancestors":'])  # fmt: skip
        elif op < 0.75 and b:
            del b[at : at + rnd.randrange(1, 8)]
        elif op < 0.9 and b:  # a slice of itself elsewhere (duplicate keys, values)
            lo = rnd.randrange(len(b))
            b[at:at] = b[lo : lo + rnd.randrange(1, 64)]
        else:
            del b[at:]
    return bytes(b)


def make_body(rnd: random.Random, pool: list[dict[str, Any]]) -> tuple[bytes, str]:
    lines = []
    base = rnd.choice(pool)
    for _ in range(rnd.choice([1, 1, 2, 3, 5])):
        e = base if rnd.random() < 0.5 else rnd.choice(pool)  # the same texts again: the registries
        if rnd.random() < 0.4:
            e = mutate_event(rnd, e, pool)
        doc = envelope(rnd, e) if rnd.random() < 0.4 else e
        line = serialize_line(rnd, doc)
        if rnd.random() < 0.08:
            line = mutate_bytes(rnd, line)
        lines.append(line)
    ends = [b"\n", b"\n", b"\r\n", b"\n\n", b"\n \t\n", b"\n\x0c\n"]
    body = b"".join(line + rnd.choice(ends) for line in lines)
    r = rnd.random()
    if r < 0.2:
        body = body.rstrip(b"\n")
    elif r < 0.25:
        body = b"\xef\xbb\xbf" + body
    elif r < 0.3:
        body = b"\n  " + body
    if len(lines) == 1 and rnd.random() < 0.3:
        return body, "application/json"
    return body, JSONL


def _text(value: Any) -> bytes:
    return bytes(value.text) if isinstance(value, Cut) else bytes(value)


def check(c: CompiledIntake, body: bytes, content_type: str, serial: int, max_depth: int) -> bool:
    """Whether the compiled pass took the body; raises AssertionError when what it made is wrong."""
    got = c.accept(body, bodies.json_lines(content_type), 5000, max_depth, NOW, serial)
    if got is None:
        return False
    rows, encoded, contexts, new = got
    raws = bodies.raw_documents(body, content_type, 5000)
    assert raws is not None, "raw_documents refuses a body the compiled pass took"
    want = intake._accept_plain(raws, max_depth, NOW, serial, Lineages())
    assert want is not None, "the compiled pass took a body the Python hot path does not"
    assert len(rows) == len(want.rows)
    keys: dict[str, str] = {}
    relabelled = []
    for r, w in zip(rows, want.rows, strict=True):
        r, w = tuple(r), list(w)
        if r[CONTEXT] or w[CONTEXT]:
            assert keys.setdefault(r[CONTEXT], w[CONTEXT]) == w[CONTEXT]
        assert [v for i, v in enumerate(r) if i not in (ID, CONTEXT, EVENT)] == [
            v for i, v in enumerate(w) if i not in (ID, CONTEXT, EVENT)
        ]
        assert _text(r[EVENT]) == _text(w[EVENT])
        if isinstance(w[EVENT], Cut) or isinstance(r[EVENT], Cut):
            assert isinstance(r[EVENT], Cut) and isinstance(w[EVENT], Cut)
            assert (r[EVENT].at, r[EVENT].size) == (w[EVENT].at, w[EVENT].size)
        w[ID], w[CONTEXT] = r[ID], r[CONTEXT]
        relabelled.append(w)
    assert encoded == bytes(row_binary(relabelled, TYPES)), "RowBinary differs"
    assert [(d, keys[k], bytes(t)) for d, k, t in contexts] == [(d, k, bytes(t)) for d, k, t in want.contexts]
    assert [(w, keys[k]) for _, w, k in new] == [(w, k) for _, w, k in want._new]
    # the exact validator (the slow twin) accepts each document, with the same columns
    slow = intake.accept(bodies.documents(body, content_type, 5000), max_depth, NOW)
    assert not slow.rejected, f"the exact validator rejects what the compiled pass took: {slow.rejected}"
    assert len(slow.rows) == len(rows)
    skip = (ID, CONTEXT, CONTEXT_AT, EVENT)
    for r, s in zip(rows, slow.rows, strict=True):
        r = tuple(r)
        assert [v for i, v in enumerate(r) if i not in skip] == [v for i, v in enumerate(s) if i not in skip]
        assert jsontext.loads(_text(r[EVENT])) == jsontext.loads(_text(s[EVENT]))
    return True


def run(seconds: float, seed: int, out_dir: Path | None = None, log: Any = None) -> tuple[int, int]:
    """Fuzzes for `seconds`; returns (bodies tried, bodies the compiled pass took). Raises on a failure (the
    body is written to `out_dir` first)."""
    rnd = random.Random(seed)
    pool = seed_events()
    c = CompiledIntake(Lineages())
    tried = taken = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body, content_type = make_body(rnd, pool)
        serial = rnd.choice([0, 5, 5, -1])
        max_depth = rnd.choice([32, 32, 32, 3, 2, 1, 300, 1000])
        try:
            taken += check(c, body, content_type, serial, max_depth)
        except Exception:
            if out_dir is not None:
                out_dir.mkdir(parents=True, exist_ok=True)
                name = out_dir / f"fail-{seed}-{tried}.bin"
                name.write_bytes(body)
                print(f"FAIL {name} content_type={content_type} serial={serial} max_depth={max_depth}", file=sys.stderr)
            raise
        tried += 1
        if rnd.random() < 0.002:
            c.parser.clear()
        if log and tried % 2000 == 0:
            print(f"{tried} bodies, {taken} taken", file=log, flush=True)
    return tried, taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/intake_fuzz"))
    parser.add_argument("--keep-going", action="store_true", help="on a failure, go on with the next seed")
    a = parser.parse_args()
    seed, end = a.seed, time.monotonic() + a.seconds
    total = [0, 0]
    while (left := end - time.monotonic()) > 0:
        try:
            tried, taken = run(left, seed, a.out, sys.stderr)
            total[0] += tried
            total[1] += taken
        except Exception as e:
            print(f"seed {seed}: {type(e).__name__}: {str(e)[:2000]}", file=sys.stderr)
            if not a.keep_going:
                raise
        seed += 1
    print(f"{total[0]} bodies, {total[1]} taken by the compiled pass, seeds {a.seed}..{seed - 1}")


if __name__ == "__main__":
    main()
