"""The runc container fixture (tests/containers.py): what kernel and resolver tests rely on."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from containers import run_container


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_container_runs_its_command_in_its_own_root_and_cgroup(tmp_path):
    passwd = "root:x:0:0::/:/bin/sh\napp:x:1234:5678::/:/bin/sh\n"
    group = "root:x:0:\nappgroup:x:5678:\n"
    with run_container(tmp_path, command=["sh", "-c", "cat /etc/hostname; id; sleep 30"], passwd=passwd,
                       group=group, user=(1234, 5678)) as c:
        assert len(c.id) == 64 and int(c.id, 16) >= 0
        assert c.cgroup_path == f"/system.slice/docker-{c.id}.scope"
        wait_for(lambda: "uid=" in c.output())
        assert c.output() == "opencws-test\nuid=1234(app) gid=5678(appgroup)\n"
        assert f"0::{c.cgroup_path}" in Path(f"/proc/{c.pid}/cgroup").read_text().splitlines()
        assert os.stat(f"/proc/{c.pid}/root").st_ino == os.stat(c.rootfs).st_ino
        assert c.exec(["cat", "/etc/passwd"]).stdout == passwd
        pid = c.spawn(["sleep", "30"])
        assert Path(f"/proc/{pid}/cgroup").read_text() == Path(f"/proc/{c.pid}/cgroup").read_text()
    assert not Path(f"/proc/{c.pid}").exists() or "Z" in Path(f"/proc/{c.pid}/stat").read_text().split()[2]
    state = subprocess.run(["runc", "state", c.name], capture_output=True)
    assert state.returncode != 0  # deleted
    assert not Path(f"/sys/fs/cgroup/unified{c.cgroup_path}").exists()


def test_a_bind_mounted_gate_holds_the_init_until_the_test_opens_it(tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    script = "echo waiting; while [ ! -e /gate/go ]; do usleep 10000; done; echo done > /gate/out"
    with run_container(tmp_path, command=["sh", "-c", script], bind={str(gate): "/gate"}) as c:
        wait_for(lambda: "waiting" in c.output())
        assert not (gate / "out").exists()
        (gate / "go").touch()
        wait_for(lambda: (gate / "out").exists())
        assert (gate / "out").read_text() == "done\n"


def test_a_given_cgroup_path_and_id_are_used(tmp_path):
    cid = os.urandom(32).hex()
    with run_container(tmp_path, command=["sleep", "30"], container_id=cid,
                       cgroups_path=f"/machine.slice/libpod-{cid}.scope") as c:
        assert c.id == cid
        assert f"0::/machine.slice/libpod-{cid}.scope" in Path(f"/proc/{c.pid}/cgroup").read_text()
