"""`opencws agent run --output http://...` as a real process reporting to a real backend process: events of real
system calls are searchable; a backend killed with -9 and restarted, or an agent restarted with batches in its
spool, leaves every event stored exactly once (each event is the open of a file whose path is its marker)."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from agent_process import AgentProcess
from backend_process import Backend, free_port

from opencws.schema.validation import event_validator


@pytest.fixture(scope="module")
def backend(tmp_path_factory) -> Backend:
    b = Backend(tmp_path_factory.mktemp("backend")).start()
    b.reader = b.key("read")
    yield b
    b.stop()


class Scenario:
    """A folder of marker files, a policy watching their opens, and an agent configuration sending to `url`."""

    def __init__(self, tmp_path: Path, url: str, key: str, compression: str | None = None):
        self.dir = tmp_path / "markers"
        self.dir.mkdir()
        self.spool = tmp_path / "spool"
        self.policy = tmp_path / "markers.policy"
        self.policy.write_text(f"rules:\n  - id: marker_opened\n    expression: 'open.file.path =~ \"{self.dir}/m-*\"'\n")
        self.config = tmp_path / "agent.yaml"
        self.config.write_text(
            f"outputs: ['{url}']\npolicies: ['{self.policy}']\napi_key: '{key}'\n"
            f"rate_limit: {{default: {{rate: 100000, burst: 100000}}}}\n"
            f"http: {{spool_dir: '{self.spool}', batch_max_wait: 0.2, batch_max_events: 100"
            + (f", compression: {compression}" if compression else "") + "}\n")
        self.opened = 0

    def agent(self, *args: str) -> AgentProcess:
        agent = AgentProcess("--config", str(self.config), *args)
        agent.wait_for("started", timeout=180)
        return agent

    def open_markers(self, n: int, per_second: float = 200.0) -> None:
        for _ in range(n):
            fd = os.open(self.dir / f"m-{self.opened}", os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
            self.opened += 1
            time.sleep(1 / per_second)

    def stored(self, b: Backend) -> Counter:
        hits = b.events(b.reader, q=f'open.file.path =~ "{self.dir}/m-*"')
        return Counter(h["event"]["file"]["path"] for h in hits)

    def wait_stored(self, b: Backend, agent: AgentProcess, timeout: float = 240.0) -> Counter:
        """Every marker opened so far, stored (or what was stored when the time ran out)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.stored(b)
            if len(found) >= self.opened or time.monotonic() > deadline:
                return found
            assert agent.proc.poll() is None, agent.self_events
            time.sleep(0.3)

    def expected(self) -> Counter:
        return Counter(str(self.dir / f"m-{i}") for i in range(self.opened))


@pytest.mark.kernel
def test_events_of_real_system_calls_are_stored_by_the_backend_and_found_by_a_search(
        require_kernel, backend, tmp_path):
    s = Scenario(tmp_path, backend.url, backend.key("ingest"))
    port = free_port()
    agent = s.agent("--metrics", f"127.0.0.1:{port}")
    try:
        s.open_markers(20)
        assert s.wait_stored(backend, agent) == s.expected()
        hits = backend.events(backend.reader, q=f'open.file.path == "{s.dir}/m-7"')
        assert len(hits) == 1
        assert hits[0]["rule_id"] == "marker_opened" and hits[0]["policy"] == "markers.policy"
        assert hits[0]["event"]["process"]["pid"] == os.getpid()
        assert not event_validator().issues(hits[0]["event"])
        time.sleep(1.5)  # a tick publishes the reporter's counts
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        assert f'opencws_reporter_sent_events_total{{reporter="{backend.url}"}} 20.0' in metrics
    finally:
        assert agent.stop() == 0
    assert agent.wait_for("stopped")["sent"]["open"] == 20


@pytest.mark.kernel
def test_a_backend_killed_and_restarted_while_the_agent_runs_loses_and_repeats_no_event(require_kernel, tmp_path):
    port = free_port()
    b = Backend(tmp_path / "data", ["--listen", f"127.0.0.1:{port}"]).start()
    b.reader = b.key("read")
    s = Scenario(tmp_path, b.url, b.key("ingest"))
    agent = s.agent()
    try:
        s.open_markers(300)
        b.stop(signal.SIGKILL)
        s.open_markers(300)
        restart = threading.Thread(target=b.start, kwargs={"timeout": 180})
        restart.start()  # markers go on while the backend starts again
        s.open_markers(300)
        restart.join()
        s.open_markers(100)
        found = s.wait_stored(b, agent)
    finally:
        code = agent.stop()
        b.stop()
    assert code == 0
    agent.wait_for("stopped")
    said = {e["agent_event"] for e in agent.self_events}
    assert {"reporter_error", "reporter_recovered"} <= said, "the agent did not say the backend was gone and back"
    assert sorted(found) == sorted(s.expected()), f"lost: {len(s.expected() - found)}"
    assert [p for p, n in found.items() if n > 1] == [], "stored twice"


@pytest.mark.kernel
@pytest.mark.parametrize(("compression", "magic"), [(None, b"\x28\xb5\x2f\xfd"), ("gzip", b"\x1f\x8b")])
def test_an_agent_restarted_with_batches_in_its_spool_replays_them_once(require_kernel, tmp_path, compression, magic):
    """The spool holds the bodies as posted: zstd by default, gzip with `compression: gzip`."""
    port = free_port()
    b = Backend(tmp_path / "data", ["--listen", f"127.0.0.1:{port}"])
    b.url = f"http://127.0.0.1:{port}"
    (tmp_path / "data").mkdir()
    ingest = b.key("ingest")
    s = Scenario(tmp_path, b.url, ingest, compression)
    first = s.agent()  # the backend is not there yet
    s.open_markers(50)
    deadline = time.monotonic() + 120
    while sum(int(p.name.split("-")[1]) for p in s.spool.glob("*.batch")) < 50:
        assert time.monotonic() < deadline, first.self_events
        time.sleep(0.1)
    assert first.stop() == 0
    assert first.wait_for("stopped")["sent"]["open"] == 50
    assert {p.read_bytes()[:len(magic)] for p in s.spool.glob("*.batch")} == {magic}
    b.start()
    b.reader = b.key("read")
    try:
        second = s.agent()
        replay = second.wait_for("spool_replay")
        assert replay["events"] == 50
        s.open_markers(10)
        found = s.wait_stored(b, second)
        assert second.stop() == 0
    finally:
        b.stop()
    assert found == s.expected()
    assert list(s.spool.glob("*.batch")) == []


def spool_config(tmp_path: Path) -> str:
    config = tmp_path / "agent.yaml"
    config.write_text(f"http: {{spool_dir: '{tmp_path / 'spool'}'}}\n")
    return str(config)


def test_a_key_the_backend_refuses_stops_the_agent_with_the_reason(backend, tmp_path):
    env = {**os.environ, "OPENCWS_API_KEY": "ocws_000000000000_nope"}
    agent = AgentProcess("--config", spool_config(tmp_path), "--output", backend.url, env=env, cwd=tmp_path)
    code = agent.proc.wait(timeout=60)
    err = agent.proc.stderr.read().decode()
    assert code == 1, err
    assert f"opencws agent: {backend.url}: the backend refused the API key (401 " in err
    assert "Traceback" not in err


def test_an_http_output_without_a_key_is_a_usage_error_saying_where_to_put_one(backend, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OPENCWS_API_KEY"}
    agent = AgentProcess("--config", spool_config(tmp_path), "--output", backend.url, env=env, cwd=tmp_path)
    code = agent.proc.wait(timeout=60)
    err = agent.proc.stderr.read().decode()
    assert code == 2, err
    assert (f"opencws agent: configuration: api_key: output {backend.url} needs the backend's API key: set api_key "
            "in the configuration file or the OPENCWS_API_KEY environment variable") in err
