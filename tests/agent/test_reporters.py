"""Output specs, and JSON lines on streams: buffering, a reader that goes away, the backlog of refused lines."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import select
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from opencws.agent.reporters import (
    FileReporter,
    ReporterError,
    StdoutReporter,
    StreamReporter,
    open_reporter,
    parse_reporter_spec,
)


def read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def pipe():
    r, w = os.pipe()
    stream = os.fdopen(w, "wb")
    yield r, stream
    for closing in (lambda: os.close(r), stream.close):
        with contextlib.suppress(OSError):
            closing()


def test_lines_on_a_stream_wait_for_flush_then_come_out_whole_and_in_order(pipe):
    r, stream = pipe
    rep = StreamReporter(stream, "pipe", buffer_bytes=1 << 20)
    for i in range(100):
        rep.write(json.dumps({"n": i}).encode())
    assert read_all(r) == b""
    rep.flush()
    assert read_all(r).splitlines() == [json.dumps({"n": i}).encode() for i in range(100)]
    assert rep.stats()["lines_written"] == 100 and rep.stats()["backlog_lines"] == 0


def test_a_full_buffer_is_written_without_waiting_for_flush(pipe):
    r, stream = pipe
    rep = StreamReporter(stream, "pipe", buffer_bytes=100)
    rep.write(b"x" * 60)
    assert read_all(r) == b""
    rep.write(b"y" * 60)
    assert read_all(r) == b"x" * 60 + b"\n" + b"y" * 60 + b"\n"


def test_a_reader_that_went_away_is_a_reporter_error_and_lines_are_kept_then_counted_as_dropped(pipe):
    r, stream = pipe
    os.close(r)
    rep = StreamReporter(stream, "pipe", backlog=3, buffer_bytes=0)
    errors = []
    for i in range(5):
        with pytest.raises(ReporterError) as info:
            rep.write(b'{"n":%d}' % i)
        errors.append(info.value)
    assert all(e.errno == errno.EPIPE and e.reporter == "pipe" for e in errors)
    assert "Broken pipe (EPIPE) writing; 1 lines kept in the backlog" in str(errors[0])
    assert str(errors[0]).startswith("pipe: ")
    assert "backlog full (3 lines): line dropped (2 dropped so far)" in str(errors[4])
    stats = rep.stats()
    assert stats["backlog_lines"] == 3 and stats["dropped"] == 2 and stats["failed_writes"] == 5
    assert stats["last_error"] == "Broken pipe (EPIPE)"


def test_stdout_closed_by_its_reader_is_reported_not_a_traceback():
    program = textwrap.dedent("""
        import sys
        from opencws.agent.reporters import ReporterError, StdoutReporter
        rep = StdoutReporter()
        for i in range(200000):
            try:
                rep.write(b'{"n":%d}' % i)
                rep.flush()
            except ReporterError as e:
                print("reported:", e, file=sys.stderr)
                break
        print("still running", file=sys.stderr)
    """)
    with subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        first = p.stdout.readline()
        p.stdout.close()  # the reader goes away, as `| head -1` does
        err = p.stderr.read().decode()
        assert p.wait() == 0
    assert json.loads(first) == {"n": 0}
    assert "reported: stdout: Broken pipe (EPIPE) writing" in err
    assert "still running" in err and "Traceback" not in err and "Exception ignored" not in err


def test_on_a_terminal_each_line_is_written_at_once():
    controller, terminal = os.openpty()
    try:
        with os.fdopen(terminal, "wb", closefd=False) as stream:
            rep = StreamReporter(stream, "tty")
            rep.write(b"{}")  # no flush
            assert select.select([controller], [], [], 10)[0], "nothing reached the terminal"
            assert os.read(controller, 100) == b"{}\r\n"  # the terminal adds its \r
    finally:
        os.close(controller)
        os.close(terminal)


def test_a_stream_without_a_file_descriptor_is_written_through_its_methods():
    buf = io.BytesIO()
    rep = StreamReporter(buf, "memory")
    rep.write(b"{}")
    rep.flush()
    assert buf.getvalue() == b"{}\n"


def test_stdout_reporter_defaults_to_the_process_stdout(capfd):
    rep = StdoutReporter()
    assert rep.name == "stdout"
    rep.write(b'{"a":1}')
    rep.flush()
    assert capfd.readouterr().out == '{"a":1}\n'


# ---------------------------------------------------------------------- specs


@pytest.mark.parametrize(("spec", "kind", "path", "options"), [
    ("stdout", "stdout", None, {}),
    ("stderr", "stderr", None, {}),
    ("file:/var/log/e.json", "file", Path("/var/log/e.json"), {}),
    ("file:rel/e.json?max_bytes=10M&keep=3", "file", Path("rel/e.json"), {"max_bytes": 10 * 2**20, "keep": 3}),
    ("file:/x?max_bytes=4096&backlog=50&keep=0", "file", Path("/x"), {"max_bytes": 4096, "backlog": 50, "keep": 0}),
    ("file:/x?max_bytes=1GiB", "file", Path("/x"), {"max_bytes": 2**30}),
    ("file:/x?max_bytes=64k", "file", Path("/x"), {"max_bytes": 64 * 2**10}),
])
def test_good_specs_parse(spec, kind, path, options):
    parsed = parse_reporter_spec(spec)
    assert (parsed.kind, parsed.path, parsed.options) == (kind, path, options)


@pytest.mark.parametrize("spec", ["http://127.0.0.1:8080", "https://backend.example", "https://[::1]:8443/opencws"])
def test_a_backend_url_is_an_http_output(spec):
    parsed = parse_reporter_spec(spec)
    assert (parsed.kind, parsed.url, parsed.path) == ("http", spec, None)


@pytest.mark.parametrize(("spec", "message"), [
    ("", "unknown output: expected stdout, stderr, file:PATH[?max_bytes=SIZE&keep=N&backlog=N] or "
         "http(s)://HOST:PORT"),
    ("syslog", "unknown output"),
    ("tcp://backend:1", "unknown output"),
    ("http://", "no host: expected http://HOST:PORT"),
    ("https://host:99999", "not a valid URL: Port out of range"),
    ("https://user:secret@host", "no credentials in the URL: the API key goes in api_key or OPENCWS_API_KEY"),
    ("http://host:1?key=x", "no query or fragment"),
    ("file:", "file: needs a path"),
    ("file:?keep=2", "file: needs a path"),
    ("file:/x?keep=two", "option keep='two': expected an integer"),
    ("file:/x?max_bytes=10Q", "option max_bytes='10Q': expected a size such as 100M"),
    ("file:/x?max_bytes=0", "option max_bytes='0': must be >= 1"),
    ("file:/x?keep=-1", "option keep='-1': must be >= 0"),
    ("file:/x?keep=1&keep=2", "option 'keep' given twice"),
    ("file:/x?rotate=daily", "unknown option 'rotate': expected one of max_bytes, keep, backlog"),
    ("file:/x?keep", "bad options 'keep': expected NAME=VALUE"),
])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ValueError) as info:
        parse_reporter_spec(spec)
    assert message in str(info.value) and repr(spec) in str(info.value)


def test_open_reporter_builds_a_file_reporter_with_its_options(tmp_path):
    rep = open_reporter(f"file:{tmp_path}/e.json?max_bytes=1K&keep=2&backlog=7")
    try:
        assert isinstance(rep, FileReporter)
        assert (rep.max_bytes, rep.keep, rep.backlog) == (1024, 2, 7)
        assert rep.name == f"file:{tmp_path}/e.json"
    finally:
        rep.close()


def test_an_http_output_without_a_key_is_refused_before_anything_is_opened(tmp_path):
    with pytest.raises(ValueError, match="needs an API key"):
        open_reporter("http://127.0.0.1:1", http={"spool_dir": tmp_path / "s"})
    assert not (tmp_path / "s").exists()


def test_open_reporter_names_stdout_and_stderr():
    assert open_reporter("stdout").name == "stdout"
    assert open_reporter("stderr").name == "stderr"


@pytest.mark.parametrize(("where", "code"), [("missing/dir/e.json", errno.ENOENT), (".", errno.EISDIR)])
def test_a_file_that_cannot_be_opened_is_a_precise_error_at_start(tmp_path, where, code):
    with pytest.raises(ReporterError) as info:
        open_reporter(f"file:{tmp_path / where}")
    assert info.value.errno == code
    assert f"cannot open {tmp_path / where}" in str(info.value)
