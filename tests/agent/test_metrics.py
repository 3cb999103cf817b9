"""Agent metrics: counted where the pipeline counts them, monotonic from running totals, scraped over HTTP."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from opencws.agent.metrics import AgentMetrics
from opencws.probe.probe import Counters


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(m: AgentMetrics, name: str, **labels: str) -> float | None:
    for n, lab, v in m.samples():
        if n == name and lab == labels:
            return v
    return None


def test_per_batch_counts_are_scraped_over_http():
    m = AgentMetrics()
    m.add_seen("open", 10)
    m.add_seen("exec")
    m.add_filtered("open", 7)
    m.add_sent("open", 2)
    m.add_rate_limited("noisy_rule", 1)
    m.add_rule_match("noisy_rule", 3)
    m.add_decode_errors(2)
    m.add_reporter_error("file:/var/log/e.json")
    m.set_process_cache_size(1234)
    m.add_process_cache_evictions(5)
    m.add_discarders("inode", 4)
    m.add_discarders("pid")
    m.add_discarder_invalidations()
    m.add_discarders_not_learned("no_inode_identity", 3)
    m.set_rules_loaded(42)
    m.add_policy_reload(ok=False)
    with m.serve("127.0.0.1", 0) as server:
        assert server.port > 0
        got = scrape(server.url)
    expected = {
        ("opencws_events_seen_total", (("type", "open"),)): 10,
        ("opencws_events_seen_total", (("type", "exec"),)): 1,
        ("opencws_events_filtered_total", (("type", "open"),)): 7,
        ("opencws_events_sent_total", (("type", "open"),)): 2,
        ("opencws_events_rate_limited_total", (("rule", "noisy_rule"),)): 1,
        ("opencws_rule_matches_total", (("rule", "noisy_rule"),)): 3,
        ("opencws_decode_errors_total", ()): 2,
        ("opencws_reporter_errors_total", (("reporter", "file:/var/log/e.json"),)): 1,
        ("opencws_process_cache_size", ()): 1234,
        ("opencws_process_cache_evictions_total", ()): 5,
        ("opencws_discarders_total", (("kind", "inode"),)): 4,
        ("opencws_discarders_total", (("kind", "pid"),)): 1,
        ("opencws_discarder_invalidations_total", ()): 1,
        ("opencws_discarders_not_learned_total", (("reason", "no_inode_identity"),)): 3,
        ("opencws_rules_loaded", ()): 42,
        ("opencws_policy_reloads_total", (("outcome", "failed"),)): 1,
    }
    assert {k: got.get(k) for k in expected} == expected


def test_kernel_running_totals_become_counters_that_never_go_down():
    m = AgentMetrics()
    m.set_kernel_counters({"open": Counters(seen=100, filtered=60, sent=40, lost=0), "exec": (5, 0, 5, 1)})
    m.set_kernel_counters({"open": Counters(seen=150, filtered=80, sent=65, lost=5)})
    assert value(m, "opencws_kernel_events_seen_total", type="open") == 150
    assert value(m, "opencws_kernel_events_filtered_total", type="open") == 80
    assert value(m, "opencws_kernel_events_sent_total", type="open") == 65
    assert value(m, "opencws_events_lost_total", type="open") == 5
    assert value(m, "opencws_events_lost_total", type="exec") == 1
    # the probe was reloaded: its counters start again from zero; what was counted is carried over
    m.set_kernel_counters({"open": Counters(seen=10, filtered=4, sent=6, lost=0)})
    assert value(m, "opencws_kernel_events_seen_total", type="open") == 160
    assert value(m, "opencws_events_lost_total", type="open") == 5
    m.set_kernel_counters({"open": Counters(seen=30, filtered=4, sent=26, lost=2)})
    assert value(m, "opencws_kernel_events_seen_total", type="open") == 180
    assert value(m, "opencws_events_lost_total", type="open") == 7


def test_kernel_counters_are_scraped_with_their_type():
    m = AgentMetrics()
    m.set_kernel_counters({"open": (3, 1, 2, 0)})
    with m.serve("127.0.0.1", 0) as server:
        got = scrape(server.url)
    assert got[("opencws_kernel_events_seen_total", (("type", "open"),))] == 3
    assert got[("opencws_events_lost_total", (("type", "open"),))] == 0


def test_a_kernel_entry_with_the_wrong_number_of_counters_is_refused():
    with pytest.raises(ValueError):
        AgentMetrics().set_kernel_counters({"open": (1, 2, 3)})


def test_reporter_stats_give_the_backlog_and_the_lines_dropped():
    m = AgentMetrics()
    m.set_reporter_stats({"name": "stdout", "backlog_lines": 12, "dropped": 3})
    m.set_reporter_stats({"name": "stdout", "backlog_lines": 0, "dropped": 3})
    assert value(m, "opencws_reporter_backlog_lines", reporter="stdout") == 0
    assert value(m, "opencws_reporter_dropped_lines_total", reporter="stdout") == 3


def test_an_http_outputs_stats_give_sent_retried_spooled_rejected_and_dropped_counts_and_the_spool():
    m = AgentMetrics()
    url = "https://backend:8443"
    m.set_reporter_stats({"name": url, "sent": 900, "sent_batches": 9, "retries": 4, "spooled": 300,
                          "rejected": 2, "dropped": 50, "spool_batches": 3, "spool_bytes": 4096,
                          "backlog_lines": 300})
    for name, expected in (("opencws_reporter_sent_events_total", 900), ("opencws_reporter_sent_batches_total", 9),
                           ("opencws_reporter_retries_total", 4), ("opencws_reporter_spooled_events_total", 300),
                           ("opencws_reporter_rejected_events_total", 2), ("opencws_reporter_dropped_lines_total", 50),
                           ("opencws_reporter_spool_batches", 3), ("opencws_reporter_spool_bytes", 4096),
                           ("opencws_reporter_backlog_lines", 300)):
        assert value(m, name, reporter=url) == expected, name
    m.set_reporter_stats({"name": url, "sent": 10, "spool_batches": 0})  # the agent restarted its reporter
    assert value(m, "opencws_reporter_sent_events_total", reporter=url) == 910
    assert value(m, "opencws_reporter_spool_batches", reporter=url) == 0


def test_two_agents_metrics_do_not_share_a_registry_and_a_given_one_is_used():
    a, b = AgentMetrics(), AgentMetrics()
    a.add_seen("open", 3)
    assert value(b, "opencws_events_seen_total", type="open") is None
    registry = CollectorRegistry()
    c = AgentMetrics(registry)
    c.add_sent("open")
    assert registry.get_sample_value("opencws_events_sent_total", {"type": "open"}) == 1


def test_a_port_in_use_is_a_precise_error_and_a_closed_server_frees_its_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot serve metrics on 127.0.0.1:{taken}: Address already in use"):
            AgentMetrics().serve("127.0.0.1", taken)
    server = AgentMetrics().serve("127.0.0.1", 0)
    port = server.port
    server.close()
    server.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again
