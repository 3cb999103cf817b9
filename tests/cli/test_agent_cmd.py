"""`opencws agent run` as a real process: events out, SIGHUP reloads (a bad policy keeps the old rules),
SIGTERM drains and exits 0, metrics served on 127.0.0.1, bad settings refused with a precise error."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from agent_process import OPENCWS, AgentProcess
from backend_process import free_port

from opencws.schema.validation import event_validator


def policy(path: Path, expression: str) -> Path:
    path.write_text(f"rules:\n  - id: watched\n    expression: '{expression}'\n")
    return path


@pytest.mark.kernel
def test_the_agent_reports_reloads_on_sighup_keeps_its_rules_on_a_bad_policy_and_drains_on_sigterm(
        require_kernel, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text("1")
    second.write_text("2")
    pol = policy(tmp_path / "p.policy", f'open.file.path == "{first}"')
    out = tmp_path / "events.jsonl"
    port = free_port()
    agent = AgentProcess("--policy", str(pol), "--output", f"file:{out}", "--output", "stdout",
                         "--metrics", f"127.0.0.1:{port}")
    printed: list[bytes] = []
    reader = threading.Thread(target=lambda: printed.extend(agent.proc.stdout.read().splitlines()), daemon=True)
    reader.start()
    try:
        agent.wait_for("started")
        subprocess.run(["cat", str(first)], check=True, stdout=subprocess.DEVNULL)
        pol.write_text(pol.read_text().replace(str(first), str(second)))
        agent.proc.send_signal(signal.SIGHUP)
        agent.wait_for("ruleset_loaded")
        subprocess.run(["cat", str(second)], check=True, stdout=subprocess.DEVNULL)
        pol.write_text("rules:\n  - id: broken\n    expression: 'open.file.path =='\n")
        agent.proc.send_signal(signal.SIGHUP)
        refused = agent.wait_for("ruleset_reload_refused")
        assert "broken" in str(refused["errors"])
        subprocess.run(["cat", str(second)], check=True, stdout=subprocess.DEVNULL)
        time.sleep(1.5)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert 'opencws_events_seen_total{type="open"}' in metrics
    finally:
        code = agent.stop()
    assert code == 0
    stopped = agent.wait_for("stopped")
    assert stopped["sent"]["open"] == 3
    assert stopped["longest_stall_ms"] > 0
    assert not [e for e in agent.self_events if e["agent_event"] == "reporter_error"]  # (stdout: nothing to reopen)
    reader.join(10)
    assert len(printed) == 3
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [e["event"]["file"]["path"] for e in lines] == [str(first), str(second), str(second)]
    for e in lines:
        assert e["rule_id"] == "watched" and not event_validator().issues(e["event"])


def test_a_bad_config_file_is_refused_with_where_and_why(tmp_path):
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("outputs: [stdout]\nno_such_setting: 1\n")
    done = subprocess.run([*OPENCWS, "agent", "run", "--config", str(cfg)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "no_such_setting" in done.stderr and str(cfg) in done.stderr


def test_a_bad_output_is_refused(tmp_path):
    done = subprocess.run([*OPENCWS, "agent", "run", "--output", "carrier-pigeon:x"], capture_output=True,
                          text=True)
    assert done.returncode == 2 and "carrier-pigeon" in done.stderr
