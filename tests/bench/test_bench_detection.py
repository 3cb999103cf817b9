"""Detection's figures in `opencws bench backend`: printed with their baselines, on a small run (no timing
asserted)."""

from __future__ import annotations

from opencws.bench import detection_bench
from opencws.bench.secl_bench import realistic_mix
from opencws.model.codec import serialize


def test_detection_bench_prints_its_figures_with_baselines(capsys) -> None:  # type: ignore[no-untyped-def]
    pool = [serialize(e) for e in realistic_mix(300)]
    detection_bench.run(pool, 2000)
    out = capsys.readouterr().out
    assert "Detection over 2,000 stored events" in out
    for label in ("baseline: decoding each event into the model", "baseline: no rule",
                  "baseline: default rules, every event a rule meets parsed", "default detection rules, state written",
                  "every event from a credential rule"):  # fmt: skip
        assert label in out
    assert out.count("x baseline)") == 2
    # Every event carrying a credential rule id raises or joins a signal per host and program.
    assert "signals raised per run" in out


def test_the_benchmark_events_are_the_rows_the_intake_hands_to_detection() -> None:
    from opencws.backend.detection import engine

    pool = [serialize(e) for e in realistic_mix(50)]
    work = detection_bench.batches(pool, 120, "x")
    assert [len(r) for r in work] == [120]
    rows = work[0]
    assert all(r[engine.I_RULE] == "x" for r in rows) and len({r[engine.I_HOST] for r in rows}) == detection_bench.HOSTS
    assert rows[0][engine.I_DATE] < rows[-1][engine.I_DATE]
    assert any(r[engine.I_CONTEXT] for r in rows)  # cut as stored: detection puts the ancestors back
    assert engine._parsed_row(rows[0])["date"] != engine._parsed_row(rows[-1])["date"]
