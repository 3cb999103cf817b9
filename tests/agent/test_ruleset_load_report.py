"""The agent's `ruleset_loaded` self-event says which rules were skipped (by reason) and which actions do not run."""

from __future__ import annotations

from pathlib import Path

from opencws.agent.runner import _load_report
from opencws.secl import load_policies


def test_the_load_report_counts_skipped_rules_by_reason_and_lists_actions_not_executed(tmp_path: Path):
    p = tmp_path / "p.policy"
    p.write_text("""\
rules:
  - id: dns_rule
    expression: dns.question.name == "x.example"
  - id: windows_rule
    expression: exec.file.name == "cmd.exe"
    filters: ['os == "windows"']
  - id: miner
    expression: exec.file.name == "xmrig"
    actions:
      - kill: {signal: SIGKILL}
""")
    report = _load_report(load_policies([p]))
    assert report == {
        "skipped": {"event type not supported": {"dns": 1}, "filter": {'os == "windows"': 1}},
        "actions_not_executed": {"kill": ["miner"]},
    }
