"""`opencws validate`: per-event diagnostics, a summary line, exit codes, bounded memory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from opencws.cli.main import main
from opencws.model.codec import serialize
from opencws.model.examples import exec_event, open_event

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "events"
    path.write_bytes(data)
    return str(path)


def test_valid_events_exit_zero_with_the_summary(tmp_path, capsys):
    data = serialize(exec_event()) + b"\n" + serialize(open_event()) + b"\n"
    assert main(["validate", _write(tmp_path, data)]) == 0
    assert capsys.readouterr().out == "2 valid, 0 invalid\n"


def test_each_invalid_event_is_reported_with_its_line_pointer_and_reason(tmp_path, capsys):
    bad = orjson.loads(serialize(open_event()))
    bad["file"]["uid"] = "root"
    bad["process"]["ancestors"][1]["unknown"] = True
    data = b"\n".join([serialize(exec_event()), orjson.dumps(bad), b'{"date": "soon"}', b'{"evt": '])
    assert main(["validate", _write(tmp_path, data)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "line 2: /file/uid: expected integer, got string 'root'",
        "line 2: /process/ancestors/1/unknown: unknown property 'unknown' (not allowed by the schema)",
        "line 3: /date: 'soon' is not an RFC 3339 date-time",
        "line 4: malformed JSON: unexpected end of data: line 1 column 9 (char 8) (truncated last line?)",
        "1 valid, 3 invalid",
    ]


def test_a_json_array_from_standard_input_is_reported_by_index(monkeypatch, capsys):
    import io

    data = b"[" + serialize(exec_event()) + b', {"evt": {"name": 3}}]'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["validate", "-"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "index 1: /evt/name: expected string, got integer 3",
        "1 valid, 1 invalid",
    ]


def test_legacy_validation_refuses_the_newer_blocks(tmp_path, capsys):
    event = orjson.loads(serialize(exec_event()))
    event["dd"] = {"span_id": 1, "trace_id": 2}
    path = _write(tmp_path, orjson.dumps(event))
    assert main(["validate", path]) == 0
    assert main(["validate", "--legacy", path]) == 1
    assert "line 1: /dd: unknown property 'dd'" in capsys.readouterr().out


def test_a_missing_file_is_a_usage_error(capsys):
    assert main(["validate", "/nonexistent/events.json"]) == 2
    assert "cannot read /nonexistent/events.json: No such file or directory" in capsys.readouterr().err


def test_unknown_options_are_usage_errors(capsys):
    try:
        main(["validate", "--bogus"])
    except SystemExit as e:
        assert e.code == 2
    else:
        raise AssertionError("argparse should exit")


def test_a_100_mb_input_is_validated_in_bounded_memory(tmp_path):
    """100 MB of JSON lines, with a 40 MB single line in the middle: memory stays far below the input."""
    line = serialize(exec_event()) + b"\n"
    path = tmp_path / "big.jsonl"
    with path.open("wb") as f:
        for _ in range(35 * 1024 * 1024 // len(line)):
            f.write(line)
        f.write(b'{"evt": "' + b"x" * (40 * 1024 * 1024) + b'"}\n')
        for _ in range(35 * 1024 * 1024 // len(line)):
            f.write(line)
    assert path.stat().st_size > 100 * 1024 * 1024
    code = (
        "import re, sys; from opencws.cli.main import main; rc = main(['validate', '-q', sys.argv[1]]); "
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1]); sys.exit(rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=False, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    summary, max_rss_kb = out.stdout.splitlines()  # VmHWM: this process's peak, not inherited
    count = 2 * (35 * 1024 * 1024 // len(line))
    assert summary == f"{count} valid, 1 invalid"
    assert int(max_rss_kb) < 80 * 1024, f"peak memory {int(max_rss_kb) // 1024} MiB"


def test_a_non_positive_event_size_limit_is_a_usage_error(tmp_path, capsys):
    path = _write(tmp_path, serialize(open_event()))
    for bad in ("-1", "0", "ten"):
        try:
            main(["validate", "--max-event-bytes", bad, path])
        except SystemExit as e:
            assert e.code == 2
        else:
            raise AssertionError("a bad limit must be a usage error")
    assert "--max-event-bytes" in capsys.readouterr().err


def test_a_closed_output_pipe_is_not_reported_as_success(tmp_path):
    bad = b'{"evt": 1}\n' * 200_000
    path = _write(tmp_path, bad)
    script = f"set -o pipefail; {sys.executable} -m opencws.cli.main validate {path} | head -1"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=REPO, check=False)
    assert out.stdout == "line 1: /evt: expected object, got integer 1\n"
    assert out.returncode == 141
    assert "Traceback" not in out.stderr and "BrokenPipeError" not in out.stderr
