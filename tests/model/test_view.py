"""Views of an event's JSON (the evaluator's fast path) against the decoded model (its slow twin): the same
field values and the same verdicts of every rule of the default policy."""

from __future__ import annotations

import orjson

from opencws.bench.secl_bench import realistic_mix
from opencws.model.codec import event_from_json, serialize
from opencws.model.view import event_view
from opencws.secl import RuleSet, load_policies
from opencws.secl.rulesuite import load_suite
from opencws.secl.sql import SEARCH_REGISTRY

POLICIES = "src/opencws/secl/policies"


def _events() -> list[dict]:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / POLICIES
    suite = load_suite(root / "default.tests.yaml")
    return [c.event_json for c in suite.cases] + [orjson.loads(serialize(e)) for e in realistic_mix(3000)]


def test_every_policy_rule_decides_alike_on_views_and_decoded_events() -> None:
    from pathlib import Path

    rules = RuleSet(load_policies([Path(__file__).resolve().parents[2] / POLICIES]).rules)
    fired = 0
    for d in _events():
        slow = event_from_json(d)
        want = rules.match_all(slow)
        assert rules.match(event_view(d)) == want, d
        assert rules.match_all(event_view(d)) == want
        fired += bool(want)
    assert fired > 100


def test_every_field_reads_alike() -> None:
    pairs = [(event_view(d), event_from_json(d)) for d in _events()[:400]]
    for name in list(SEARCH_REGISTRY.fields):
        f = SEARCH_REGISTRY.get(name)
        assert f is not None and f.getter is not None
        for view, slow in pairs:
            a, b = f.getter(view), f.getter(slow)
            assert (list(a) == list(b)) if f.multi else (a == b), name


def test_a_view_is_the_model_class_and_reads_missing_blocks_as_none() -> None:
    v = event_view({"evt": {"name": "exec"}})
    assert v.process is None and v.file is None and v.evt.name == "exec" and v.retval is None
