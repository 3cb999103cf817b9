"""Rules an admin writes from the API: one file per rule, `DATA_DIR/detection-rules/ID.yaml`, loaded after
the shipped files and the `--detection-rules` directories. The text is checked by the same loader as every
rule file (errors located, SECL's caret); only rules written this way can be replaced or deleted from the API
(the others belong to files the operator manages: an admin disables them instead)."""

from __future__ import annotations

import os
from pathlib import Path

from opencws.backend.detection.rules import DetectionRule, RulesError, load_text

DIR_NAME = "detection-rules"
MAX_BYTES = 64 * 1024


def managed_dir(data_dir: str) -> Path:
    return Path(data_dir) / DIR_NAME


def rule_dirs(extra_dirs: list[str], data_dir: str) -> list[str]:
    """The directories the backend loads: the operator's, then the admins' (when it exists)."""
    d = managed_dir(data_dir)
    return [*extra_dirs, str(d)] if d.is_dir() else list(extra_dirs)


def parse(rule_id: str, text: str, data_dir: str) -> DetectionRule:
    """The one rule of `text`, which must have the id of its address; RulesError located in its future file."""
    path = managed_dir(data_dir) / f"{rule_id}.yaml"
    rules = load_text(text, str(path))
    if len(rules) != 1 or rules[0].id != rule_id:
        found = ", ".join(r.id for r in rules) or "none"
        raise RulesError(f"{path}: the file must hold exactly one rule, with id {rule_id} (found: {found})")
    return rules[0]


def write(rule_id: str, text: str, data_dir: str) -> Path:
    """Written whole or not at all (a temporary file renamed, fsynced)."""
    d = managed_dir(data_dir)
    d.mkdir(parents=True, exist_ok=True)
    path, tmp = d / f"{rule_id}.yaml", d / f".{rule_id}.yaml.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def is_managed(rule: DetectionRule, data_dir: str) -> bool:
    return Path(rule.source).parent == managed_dir(data_dir)


def remove(rule_id: str, data_dir: str) -> None:
    (managed_dir(data_dir) / f"{rule_id}.yaml").unlink(missing_ok=True)
