"""`opencws detection check|test`: the shipped rules pass; a bad file or a failing case says where and exits 1
(2 for a malformed file under test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FAILING = """\
rules:
  - id: r
    title: t
    message: m
    severity: low
    condition: exec.file.path == "/bin/sh"
    threshold: {count: 2, window: 1m}
    tests:
      - name: one exec is enough
        events: [{event: {evt: {name: exec, category: Process Activity, outcome: Success},
                          process: {pid: 1, ppid: 0, uid: 0, gid: 0, executable: {path: /bin/sh, uid: 0, gid: 0}}}}]
        signals: 1
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opencws.cli.main", "detection", *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_the_shipped_rules_load_and_pass() -> None:
    out = cli("check")
    assert out.returncode == 0 and out.stdout.endswith(" detection rules loaded, 0 errors\n")
    out = cli("test")
    assert out.returncode == 0 and out.stdout.endswith(" passed, 0 failed\n") and "FAIL" not in out.stdout


def test_a_bad_file_is_reported_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(FAILING.replace("severity: low", "severity: loud"))
    out = cli("check", str(tmp_path))
    assert out.returncode == 1 and "bad.yaml:5: rule r `severity`: 'loud' is not a severity" in out.stderr
    assert cli("test", str(tmp_path / "bad.yaml")).returncode == 2


def test_a_failing_case_is_listed_with_its_reason(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text(FAILING)
    out = cli("test", str(f))
    assert out.returncode == 1
    assert f"FAIL {f}: r: one exec is enough: expected 1 signal(s), got 0: none" in out.stdout
    assert out.stdout.endswith("0 passed, 1 failed\n")
