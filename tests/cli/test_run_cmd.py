"""`opencws run`, the whole product in one command: the backend (a child process) and the agent reporting to it
with an ingest key of its own; Ctrl-C stops the agent, then the backend; either one exiting stops the other."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from backend_process import Backend

from opencws.backend.keys import KeyStore
from opencws.cli.run_cmd import KEY_FILE, ingest_key
from opencws.schema.validation import event_validator

OPENCWS_RUN = [sys.executable, "-m", "opencws.cli.main", "run"]


class Product:
    """`opencws run` on a data directory of its own and a free port."""

    def __init__(self, tmp_path: Path, *args: str):
        self.data = tmp_path / "data"
        self.err_path = tmp_path / "stderr"
        with self.err_path.open("wb") as err:
            self.proc = subprocess.Popen([*OPENCWS_RUN, "--data-dir", str(self.data), "--listen", "127.0.0.1:0",
                                          *args], stdout=subprocess.DEVNULL, stderr=err)
        self.url = ""

    @property
    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_until_running(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while (m := re.search(r"web UI and API  (http://127\.0\.0\.1:\d+)/", self.err)) is None:
            assert self.proc.poll() is None and time.monotonic() < deadline, self.err
            time.sleep(0.1)
        self.url = m.group(1)
        return self.url

    def backend_pid(self) -> int:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        [pid] = [int(c) for c in children if "backend" in Path(f"/proc/{c}/cmdline").read_text()]
        return pid

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.kernel
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_one_command_runs_the_backend_and_the_agent_and_ctrl_c_stops_both_cleanly(require_kernel, tmp_path, stop):
    product = Product(tmp_path)
    try:
        url = product.wait_until_running()
        backend = product.backend_pid()
        assert "opencws backend users add NAME --role admin --data-dir" in product.err
        subprocess.run(["cat", "/etc/shadow"], stdout=subprocess.DEVNULL, check=True)
        keys = KeyStore(str(product.data))
        reader = keys.create("test", ("read",))[1]
        keys.close()
        found: list = []
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {reader}"}, timeout=30) as c:
            while not found and time.monotonic() < deadline:
                r = c.get("/api/v1/events", params={"q": 'open.file.path == "/etc/shadow"', "limit": 100})
                assert r.status_code == 200, r.text
                found = [h for h in r.json()["events"]
                         if h["event"]["process"]["executable"]["path"] == "/usr/bin/cat"]
                time.sleep(0.3)
        assert found, product.err
        assert found[0]["rule_id"] == "credential_shadow_read" and not event_validator().issues(found[0]["event"])
        subprocess.run(["cat", "/etc/shadow"], stdout=subprocess.DEVNULL, check=True)
        product.proc.send_signal(stop)  # at once: this read is still in the agent, not yet in the backend
        assert product.proc.wait(timeout=90) == 0, product.err
    finally:
        product.kill()
    assert gone(backend), "the backend outlived opencws run"
    again = Backend(product.data).start()  # the agent drained into the backend before the backend was stopped
    try:
        reads = [h for h in again.events(reader, q='open.file.path == "/etc/shadow"')
                 if h["event"]["process"]["executable"]["path"] == "/usr/bin/cat"
                 and h["rule_id"] == "credential_shadow_read"]
    finally:
        again.stop()
    assert len(reads) == 2, reads
    assert "the agent and the backend are stopped" in product.err
    assert '"agent_event":"stopped"' in product.err
    log = (product.data / "backend.log").read_text()
    assert "Finished server process" in log  # stopped by SIGTERM, not killed
    assert (product.data / KEY_FILE).stat().st_mode & 0o777 == 0o600


@pytest.mark.kernel
def test_a_backend_that_dies_is_said_and_stops_the_agent(require_kernel, tmp_path):
    product = Product(tmp_path)
    try:
        product.wait_until_running()
        os.kill(product.backend_pid(), signal.SIGKILL)
        assert product.proc.wait(timeout=90) == 1, product.err
    finally:
        product.kill()
    assert "opencws run: the backend exited (code -9); the agent was stopped" in product.err
    assert '"agent_event":"stopped"' in product.err


def test_an_agent_that_cannot_start_stops_the_backend_it_started(tmp_path):
    product = Product(tmp_path, "--output", f"file:{tmp_path}/no/such/dir/events.json")
    try:
        assert product.proc.wait(timeout=120) == 1, product.err
    finally:
        product.kill()
    assert f"cannot open {tmp_path}/no/such/dir/events.json" in product.err
    assert "opencws run: the agent stopped with code 1; the backend was stopped" in product.err
    assert "Finished server process" in (product.data / "backend.log").read_text()


def test_a_bad_agent_option_is_refused_before_anything_starts(tmp_path):
    product = Product(tmp_path, "--policy", str(tmp_path / "missing.policy"))
    assert product.proc.wait(timeout=60) == 2
    assert "no such policy file or directory" in product.err
    assert not (product.data / "backend.log").exists()


def test_the_agents_ingest_key_is_made_once_kept_private_and_replaced_when_revoked(tmp_path):
    key = ingest_key(tmp_path)
    assert ingest_key(tmp_path) == key
    assert (tmp_path / KEY_FILE).read_text() == key + "\n"
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
    keys = KeyStore(str(tmp_path))
    try:
        assert keys.check(key).scopes == ("ingest",)
        keys.revoke(key)
        fresh = ingest_key(tmp_path)
        assert fresh != key and keys.check(fresh) is not None
    finally:
        keys.close()
