"""`opencws run`, the main job (alias of `opencws agent run`): the agent with the default policy, printing
CWS events on standard output."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson

from opencws.schema.validation import event_validator


def test_the_main_job_prints_a_cws_event_for_a_shadow_read_with_the_default_policy(require_kernel, tmp_path):
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "opencws.cli.main", "run", "--duration", "6"],
                                stdout=out, stderr=err)
    try:
        deadline = time.monotonic() + 30
        while b'"agent_event":"started"' not in err_path.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, err_path.read_text()
            time.sleep(0.05)
        reader = subprocess.run(["cat", "/etc/shadow"], stdout=subprocess.DEVNULL, check=True)
        assert reader.returncode == 0
        assert proc.wait(timeout=30) == 0, err_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [orjson.loads(line) for line in out_path.read_bytes().splitlines()]
    shadow = [e for e in lines if e["rule_id"] == "credential_shadow_read"
              and e["event"]["process"]["executable"]["path"] == "/usr/bin/cat"]
    assert shadow, lines
    for e in lines:
        assert not event_validator().issues(e["event"]), e
    assert shadow[0]["event"]["file"]["path"] == "/etc/shadow"
    assert shadow[0]["event"]["process"]["ancestors"][0]["pid"] > 0
