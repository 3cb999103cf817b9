"""Events, rows and rule files for the detection tests."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from opencws.backend.detection.rules import DetectionRule, load_file
from opencws.backend.store.rows import Envelope, row_of_dict
from opencws.model.codec import format_timestamp

T0 = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z
S = 1_000_000_000


# A threshold rule's keys (after its id): three nmap runs within a minute on a host.
SCANS = """\
title: scans on {host}
message: "{process.file.path} scanned"
severity: medium
condition: exec.file.name == "nmap"
group_by: [host]
threshold: {count: 3, window: 1m}
"""


def exec_event(path: str = "/usr/bin/nmap", seconds: float = 0, *, container: str | None = None,
               pid: int = 5100) -> dict[str, Any]:  # fmt: skip
    e: dict[str, Any] = {
        "evt": {"name": "exec", "category": "Process Activity", "outcome": "Success"},
        "date": format_timestamp(T0 + int(seconds * S)),
        "process": {"pid": pid, "ppid": 1, "uid": 1000, "gid": 1000, "comm": path.rsplit("/", 1)[-1],
                    "user": "alice", "executable": {"path": path, "name": path.rsplit("/", 1)[-1], "uid": 0, "gid": 0}},
    }  # fmt: skip
    if container:
        e["container"] = {"id": container}
    return e


def rows(events: list[dict[str, Any]], host: str = "web-1", rule_id: str = "") -> list[tuple[Any, ...]]:
    return [row_of_dict(e, Envelope(host=host, rule_id=rule_id), T0) for e in events]


def rule_file(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def one_rule(tmp_path: Path, body: str) -> DetectionRule:
    """A rule from the YAML of its keys (after `id`)."""
    text = "rules:\n  - id: r\n" + textwrap.indent(textwrap.dedent(body), "    ")
    rules, _ = load_file(rule_file(tmp_path, text, "one.yaml"))
    return rules[0]
