"""Loading detection rule files: every mistake reported with its file, line, rule and key (and SECL's caret);
files added and replaced by a rules directory; templates that never crash."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from detection_helpers import SCANS, exec_event, one_rule, rule_file

from opencws.backend.detection.rules import DEFAULT_DIR, RulesError, load_rules
from opencws.model.view import event_view

GOOD = "rules:\n  - id: scans\n" + textwrap.indent(SCANS, "    ")


def errors(tmp_path: Path, text: str) -> str:
    (tmp_path / "d").mkdir()
    rule_file(tmp_path / "d", text)
    with pytest.raises(RulesError) as e:
        load_rules([tmp_path / "d"], with_defaults=False)
    return str(e.value)


def test_a_bad_secl_condition_is_located_with_its_caret(tmp_path: Path) -> None:
    msg = errors(tmp_path, GOOD.replace('exec.file.name == "nmap"', 'exec.file.nme == "nmap"'))
    assert "rules.yaml:6: rule scans `condition`: unknown field 'exec.file.nme'" in msg
    assert 'exec.file.nme == "nmap"\n    ^^^^^^^^^^^^^' in msg


def test_a_condition_on_a_later_line_of_a_block_points_at_that_line(tmp_path: Path) -> None:
    text = GOOD.replace('    condition: exec.file.name == "nmap"\n',
                        '    condition: |\n      exec.file.name == "nmap" &&\n      process.uid == "x"\n')  # fmt: skip
    msg = errors(tmp_path, text)
    assert "rules.yaml:8: rule scans `condition`:" in msg and '    process.uid == "x"\n    ' in msg


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("severity: medium", "severity: urgent"), "rules.yaml:5: rule scans `severity`: 'urgent' is not a severity"),
        (("group_by: [host]", "group_by: [proces.pid]"), "rules.yaml:7: rule scans `group_by`: unknown field 'proces.pid'"),
        (("group_by: [host]", "group_by: [process.ancestors.file.path]"), "has several values per event"),
        (("{count: 3, window: 1m}", "{count: 0, window: 1m}"), "rules.yaml:8: rule scans `threshold`: count: expected an integer"),
        (("{count: 3, window: 1m}", "{count: 10001, window: 1m}"), "count: expected an integer from 1 to 10000, got 10001"),
        (("{count: 3, window: 1m}", "{count: true, window: 1m}"), "count: expected an integer from 1 to 10000, got True"),
        (("{count: 3, window: 1m}", "{count: 3, window: 1 minute}"), "window: expected a duration such as 30s"),
        (("{count: 3, window: 1m}", "{count: 3, windw: 1m}"), "`threshold`: unknown key `windw`"),
        (("threshold: {count: 3, window: 1m}", "new_value: {learning: 1d}"), "`new_value`: field: expected a field name"),
        (("threshold: {count: 3, window: 1m}\n", ""), "rule scans `threshold`: give either `threshold`"),
        (('"{process.file.path} scanned"', '"{process.file.pth} scanned"'), "rules.yaml:4: rule scans `message`: '{process.file.pth}': unknown field"),
        (('"{process.file.path} scanned"', '"{process.file.path!r} scanned"'), "formats and conversions are not supported"),
        (('"{process.file.path} scanned"', '"{process.file.path scanned"'), "`message`: expected '}'"),
        (("    title: scans on {host}\n", ""), "rules.yaml:2: rule scans `title`: missing"),
        (("id: scans", "id: scans-1"), "rules.yaml:2: `id`: invalid rule id 'scans-1'"),
        (("    severity: medium\n", "    severity: medium\n    sevrity: low\n"), "rule scans `sevrity`: unknown key"),
        (('condition: exec.file.name == "nmap"', "condition: {rule_ids: [x]}"), "`condition`: unknown key `rule_ids`"),
        (("rules:", "rules: ["), "rules.yaml:2: invalid YAML"),
        (('condition: exec.file.name == "nmap"', "condition: {}"), "`condition`: give `expression` (SECL) and/or `rule_id`"),
        (('condition: exec.file.name == "nmap"', "condition: [a, b]"), "`condition`: expected a SECL expression or a mapping"),
    ],
)  # fmt: skip
def test_each_mistake_is_reported_with_its_place(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    assert change[0] in GOOD
    assert expected in errors(tmp_path, GOOD.replace(*change, 1))


def test_the_largest_threshold_loads(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    rule_file(tmp_path / "d", GOOD.replace("count: 3", "count: 10000"))
    (r,) = load_rules([tmp_path / "d"], with_defaults=False)
    assert r.count == 10000 and r.window_ns == 60 * 10**9
    assert r.describe()["threshold"] == {"count": 10000, "window": "1m"}
    for text, shown in (("90s", "90s"), ("120s", "2m"), ("48h", "2d"), ("25h", "25h"), ("60m", "1h")):
        rule_file(tmp_path / "d", GOOD.replace("window: 1m", f"window: {text}"))
        assert load_rules([tmp_path / "d"], with_defaults=False)[0].describe()["window"] == shown


def test_every_error_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    rule_file(tmp_path / "d", GOOD.replace("medium", "urgent"), "a.yaml")
    rule_file(tmp_path / "d", GOOD.replace("scans", "other").replace("1m}", "1 m}"), "b.yaml")
    with pytest.raises(RulesError) as e:
        load_rules([tmp_path / "d"], with_defaults=False)
    assert str(e.value).startswith("2 errors in the detection rules:\n")
    assert "a.yaml:5" in str(e.value) and "b.yaml:8" in str(e.value)


def test_a_duplicate_rule_id_names_both_places(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    rule_file(tmp_path / "d", GOOD, "a.yaml")
    rule_file(tmp_path / "d", GOOD, "b.yaml")
    with pytest.raises(
        RulesError, match=r"b.yaml:2: rule scans: duplicate rule id \(first defined at .*a.yaml:2\)"
    ):
        load_rules([tmp_path / "d"], with_defaults=False)


def test_a_directory_adds_files_and_a_same_named_file_replaces_a_shipped_one(tmp_path: Path) -> None:
    shipped = load_rules()
    files = {p.name for p in DEFAULT_DIR.glob("*.yaml")}
    assert files and {r.id for r in shipped} and all(Path(r.source).parent == DEFAULT_DIR for r in shipped)
    rule_file(tmp_path, GOOD, "mine.yaml")
    rule_file(tmp_path, GOOD.replace("scans", "replacement"), "behaviour.yaml")
    loaded = {r.id: r for r in load_rules([tmp_path])}
    assert "scans" in loaded and "replacement" in loaded
    assert "new_executable_in_container" not in loaded  # behaviour.yaml replaced
    assert "agent_credential_access" in loaded
    with pytest.raises(RulesError, match="no such detection rules directory"):
        load_rules([tmp_path / "missing"])


def test_a_missing_field_renders_visibly(tmp_path: Path) -> None:
    r = one_rule(tmp_path, """\
        title: t
        message: "{process.file.path} in {container.id} as {process.user} on {host} pid {process.pid} {{literal}}"
        severity: low
        condition: exec.file.path != ""
        threshold: {count: 1, window: 1m}
    """)  # fmt: skip
    e = exec_event("/usr/bin/nc")
    del e["process"]["user"]
    text = r.message.render(event_view(e), {"host": "", "rule_id": ""})
    assert (
        text
        == "/usr/bin/nc in <container.id: missing> as <process.user: missing> on <host: missing> pid 5100 {literal}"
    )
    del e["process"]
    assert r.message.render(event_view(e), {"host": "h"}).startswith("<process.file.path: missing> in")


def test_the_shipped_rules_load(tmp_path: Path) -> None:
    rules = load_rules()
    assert len(rules) >= 8
    assert {r.kind for r in rules} == {"threshold", "new_value"}
    assert all(r.tests for r in rules), [r.id for r in rules if not r.tests]
    by_id = {r.id: r for r in rules}
    assert by_id["new_executable_in_container"].description.startswith(
        "Containers run what their image holds"
    )
    assert by_id["agent_credential_access"].tags == {"tactic": "TA0006"}
