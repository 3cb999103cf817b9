"""`opencws bench secl`: the event mix is what it claims to be and the command runs (no timing asserted)."""

from __future__ import annotations

from collections import Counter

import pytest

from opencws.bench.secl_bench import DEFAULT_POLICY, realistic_mix
from opencws.cli.main import main
from opencws.secl import RuleSet, load_policies


def test_mix_is_mostly_benign_exec_and_open_with_about_one_percent_matching() -> None:
    events = realistic_mix(5000, seed=3)
    ruleset = RuleSet(load_policies([DEFAULT_POLICY]).rules)
    kinds = Counter(e.evt.name for e in events if e.evt is not None)
    assert (kinds["open"] + kinds["exec"]) / len(events) > 0.85
    matched = [e for e in events if ruleset.match(e)]
    assert 0.004 < len(matched) / len(events) < 0.02
    assert all(e.process is not None and e.process.ancestors for e in events)
    paths = {e.file.path for e in events if e.evt is not None and e.evt.name == "open" and e.file is not None}
    assert len(paths) > 500, "paths should vary as on a real host"


def test_mix_is_deterministic() -> None:
    a = [(e.evt.name, e.process.pid) for e in realistic_mix(300, seed=5)]  # type: ignore[union-attr]
    b = [(e.evt.name, e.process.pid) for e in realistic_mix(300, seed=5)]  # type: ignore[union-attr]
    assert a == b


def test_bench_secl_prints_figures_and_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "secl", "--events", "2000", "--rounds", "1", "--profile"]) == 0
    out = capsys.readouterr().out
    assert "against a realistic mix of 2,000 events" in out
    assert "baseline: bare loop reading evt.name per event" in out
    assert "default policy: RuleSet.match" in out
    assert "x baseline)" in out
    assert "median" in out and "p99" in out
    assert "costliest rule closures" in out


@pytest.mark.parametrize("arg", ["--rounds", "--events"])
@pytest.mark.parametrize("value", ["0", "-3"])
def test_bench_secl_refuses_non_positive_counts(
    arg: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "secl", arg, value])
    assert exc.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_bench_secl_with_another_policy_does_not_call_it_the_default(tmp_path, capsys) -> None:
    p = tmp_path / "one.policy"
    p.write_text('rules:\n  - id: shadow\n    expression: open.file.path == "/etc/shadow"\n')
    assert main(["bench", "secl", "--events", "500", "--rounds", "1", "--policy", str(p)]) == 0
    out = capsys.readouterr().out
    assert "default policy" not in out
    assert "policy: RuleSet.match" in out


def test_mix_ancestor_chains_are_one_to_seven_long() -> None:
    lengths = {len(e.process.ancestors or []) for e in realistic_mix(3000, seed=1)}  # type: ignore[union-attr]
    assert min(lengths) == 1 and max(lengths) == 7
