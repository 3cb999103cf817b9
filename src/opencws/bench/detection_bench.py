"""Detection's evaluation rate, for `opencws bench backend`: the stored events of the realistic mix (as the
intake hands them over: its rows, each event's JSON still to parse; batches of 5000) through the default
detection rules, state written to SQLite as the backend does. In-run baselines: the same batches through no
rule (dispatch and bookkeeping alone), through the rules with every event a rule meets parsed (no decision on
the rows' typed columns first), and decoding each event into the model (the floor of evaluating on decoded
events, which the views avoid). CPU time of this thread, best of three."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import orjson

from opencws.backend.detection.db import Database
from opencws.backend.detection.engine import Detector
from opencws.backend.detection.rules import DetectionRule, load_rules
from opencws.backend.intake import accept_body
from opencws.bench.timing import line
from opencws.model.codec import event_from_json, format_timestamp
from opencws.secl import RuleSet, load_policies
from opencws.secl.policy import Rule

BATCH = 5000
HOSTS = 20
START_NS = 1_764_460_800 * 1_000_000_000
DAY_NS = 86_400 * 1_000_000_000


def _agent_rule_ids(events: list[dict[str, Any]]) -> list[str]:
    """The envelope's rule id: the first rule of the agent's default policy the event matches, else none."""
    from pathlib import Path

    import opencws.secl.policies as policies

    rules: list[Rule] = load_policies([Path(policies.__file__).parent]).rules
    rs = RuleSet(rules)
    return [next(iter(rs.match(event_from_json(e))), "") for e in events]


def batches(pool: Sequence[bytes], n: int, rule_id: str | None = None) -> list[list[Any]]:
    """`n` events cycling over `pool` (JSON), dated over 24 hours, from `HOSTS` hosts, in the agent's envelope
    with the agent rule each matches (or `rule_id` when given): the rows the intake hands to detection (the
    compiled pass's when it is built; each event's JSON still to be parsed, its ancestors cut out)."""
    parsed = [orjson.loads(p) for p in pool]
    rule_ids = _agent_rule_ids(parsed) if rule_id is None else [rule_id] * len(parsed)
    store = SimpleNamespace(serial=1)  # rows made for a store: their ancestors are cut out, as stored
    out = []
    step = DAY_NS // n
    for start in range(0, n, BATCH):
        lines = []
        for i in range(start, min(n, start + BATCH)):
            k = i % len(parsed)
            doc = {"host": f"host-{i % HOSTS}", "event": {**parsed[k], "date": format_timestamp(START_NS + i * step)}}
            if rule_ids[k]:
                doc["rule_id"] = rule_ids[k]
            lines.append(orjson.dumps(doc))
        accepted = accept_body(b"\n".join(lines), "application/x-ndjson", BATCH, 64, store=store)
        if accepted.rejected:
            raise RuntimeError(f"the bench's events were refused: {accepted.rejected[:1]}")
        out.append(accepted.rows)
    return out


def _evaluate(rules: list[DetectionRule], work: list[list[Any]], prefilter: bool = True) -> tuple[float, int]:
    tmp = tempfile.mkdtemp(prefix="opencws-detection-bench-")
    try:
        db = Database(tmp)
        d = Detector(rules, db, prefilter=prefilter)
        start = time.thread_time()
        raised = sum(len(d.observe(rows)) for rows in work)
        spent = time.thread_time() - start
        db.close()
        return spent, raised
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(pool: Sequence[bytes], n: int) -> None:
    """Print the figures (events/s of CPU time)."""
    work = batches(pool, n)
    rules = load_rules()
    print(f"Detection over {n:,} stored events ({len(rules)} default detection rules, batches of {BATCH}, "
          f"{HOSTS} hosts; CPU time, best of 3)")  # fmt: skip
    sample = [orjson.loads(p) for p in pool][:5000]
    a = time.thread_time()
    for e in sample:
        event_from_json(e)
    decode = len(sample) / max(time.thread_time() - a, 1e-9)
    floor = n / min(_evaluate([], work)[0] for _ in range(3))
    unfiltered = n / min(_evaluate(rules, work, prefilter=False)[0] for _ in range(3))
    results = [_evaluate(rules, work) for _ in range(3)]
    rate = n / min(r[0] for r in results)
    print(line("baseline: decoding each event into the model", decode))
    print(line("baseline: no rule (dispatch, batches, state)", floor))
    print(line("baseline: default rules, every event a rule meets parsed", unfiltered))
    print(line("default detection rules, state written (target 50,000)", rate, unfiltered))
    print(f"  {results[0][1]} signals raised per run; {rate / floor:.2f} of the no-rule rate; rules first decided "
          "on the rows' typed columns, events parsed only for the rules they could still match")  # fmt: skip
    worst = batches(pool, n, "credential_shadow_read")
    spent, raised = min(_evaluate(rules, worst) for _ in range(3))
    print(line("every event from a credential rule (all raise or join signals)", n / spent, unfiltered))
    print(f"  {raised} signals raised per run")
