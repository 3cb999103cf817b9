"""The default policy's rules, run as searches over stored events, find exactly the events RuleSet matches,
on both engines: the SQL prefilter and the evaluator together are SECL's meaning."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import orjson
import pytest

from opencws.backend.store import Store
from opencws.backend.store.rows import Envelope, row_of_dict
from opencws.backend.store.server_engine import ServerAddress, ServerEngine
from opencws.bench.clickhouse_cluster import CLUSTER
from opencws.bench.secl_bench import realistic_mix
from opencws.model.codec import event_from_json, serialize
from opencws.secl import RuleSet, load_policies
from opencws.secl.policies import DEFAULT_POLICY
from opencws.secl.sql import compile_search

POLICY = load_policies([DEFAULT_POLICY])
RULES = [r for r in POLICY.rules if not r.disabled]
EVENTS = [orjson.loads(serialize(e)) for e in realistic_mix(3000, matching=0.3, seed=21)]
_n = itertools.count()


@pytest.fixture(scope="module", params=["chdb", "clickhouse-cluster"])
def policy_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "chdb":
        store = Store(request.getfixturevalue("chdb_engine"), database=f"policy{next(_n)}")
    else:
        cluster = request.getfixturevalue("clickhouse_cluster")
        address = ServerAddress("127.0.0.1", cluster.ports[0], http_port=cluster.http_ports[0])
        engine = ServerEngine(address, {"insert_distributed_sync": 1})
        store = Store(engine, database=f"policy{next(_n)}", cluster=CLUSTER)
    store.create()
    store.insert([row_of_dict(e, Envelope(host=f"h{i % 5}"), i) for i, e in enumerate(EVENTS)])
    yield store


@pytest.fixture(scope="module")
def expected() -> dict[str, list[int]]:
    ruleset = RuleSet(RULES)
    out: dict[str, list[int]] = {r.id: [] for r in RULES}
    for i, e in enumerate(EVENTS):
        for rid in ruleset.match_all(event_from_json(e)):
            out[rid].append(i)
    return out


def test_the_mix_fires_many_rules(expected: dict[str, list[int]]) -> None:
    assert sum(1 for v in expected.values() if v) >= 20


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_as_a_search_finds_what_ruleset_matches(policy_store: Store, expected: dict, rule) -> None:
    search = compile_search(rule.expression, macros=POLICY.macros)
    page = policy_store.search(search, 0, 2**62, None, 10_000)
    assert page.next is None
    # The mix repeats some events: compare the stored JSON, as many times as it occurs.
    assert sorted(h.event for h in page.hits) == sorted(
        orjson.dumps(EVENTS[i]).decode() for i in expected[rule.id]
    ), rule.expression
