"""`opencws rules eval --expr` takes search expressions: naming no event type (applies to every event), one
(false on other types) or several."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opencws.cli.main import main

EVENT = {
    "evt": {"name": "open", "category": "File Activity", "outcome": "Success"},
    "file": {"path": "/etc/shadow", "name": "shadow", "uid": 0, "gid": 0},
    "process": {
        "pid": 4242, "uid": 0, "gid": 0, "comm": "curl",
        "executable": {"path": "/usr/bin/curl", "name": "curl", "uid": 0, "gid": 0},
    },
    "date": "2026-11-21T17:55:02.123456789Z",
}  # fmt: skip


@pytest.mark.parametrize(
    ("expr", "printed"),
    [
        ('process.file.name == "curl" && process.uid == 0', "true"),
        ('process.file.name == "wget"', "false"),
        ('exec.file.path != ""', "false"),  # another event type
        ('open.file.path == "/etc/shadow" || exec.file.name == "curl"', "true"),
    ],
)
def test_rules_eval_takes_search_expressions(tmp_path: Path, capsys, expr: str, printed: str):
    f = tmp_path / "event.json"
    f.write_text(json.dumps(EVENT))
    assert main(["rules", "eval", "--expr", expr, "--event", str(f)]) == 0
    assert capsys.readouterr().out.strip() == printed


def test_rules_eval_prints_the_expression_s_warnings(tmp_path: Path, capsys):
    f = tmp_path / "event.json"
    f.write_text(json.dumps(EVENT))
    assert main(["rules", "eval", "--expr", "open.retval == -EACCES", "--event", str(f)]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == "false" and "warning: " in out.err and "'-EACCES' is 13" in out.err
