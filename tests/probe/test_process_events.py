"""Process life cycle and credential changes, checked against /proc and os.stat."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import probe_sysc as sysc
import pytest

from opencws.probe import events as ev
from opencws.probe.statx import mount_id

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]

CAP_CHOWN, CAP_NET_RAW, CAP_SYS_ADMIN = 0, 13, 21


def test_an_exec_reports_the_executable_args_env_and_credentials(watch, tmp_path):
    exe = Path("/bin/true").resolve()
    proc = subprocess.run([str(exe), "one", "two words"], env={"OPENCWS_MARK": "42", "PATH": "/bin"})
    assert proc.returncode == 0
    execs = watch.mine(ev.ExecEvent, lambda e: e.argv[1:] == ["one", "two words"])
    assert len(execs) == 1
    e = execs[0]
    st = os.stat(exe)
    assert e.file.path == str(exe)
    assert (e.file.inode, e.file.mode, e.file.device) == (st.st_ino, st.st_mode, st.st_dev)
    assert e.file.mount_id == mount_id(exe)
    assert e.args == ["one", "two words"] and not e.argv_truncated
    assert e.interpreter is None  # a binary
    assert e.envp == ["OPENCWS_MARK=42", "PATH=/bin"] and not e.envp_truncated
    assert e.ppid == os.getpid()
    assert e.comm == exe.name[:15]
    assert e.credentials.uid == os.getuid() and e.credentials.euid == os.geteuid()
    with open("/proc/self/status") as f:
        status = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    assert e.credentials.cap_effective == int(status["CapEff"], 16)
    assert e.cgroup_id != 0


def test_long_argv_is_truncated_and_flagged(watch):
    args = ["x" * 200 for _ in range(30)]  # 6 KiB of arguments
    subprocess.run(["/bin/true", *args], check=True)
    e = watch.one(ev.ExecEvent, lambda e: e.argv[1:2] == [args[0]])
    assert e.argv_truncated
    assert e.argv[1:-1] == args[: len(e.argv) - 2]  # all complete args are right; the last may be cut
    assert args[len(e.argv) - 2].startswith(e.argv[-1])


def test_fork_and_exit_report_the_child_and_its_exit_code(watch):
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    _, status = os.waitpid(pid, 0)
    fork = watch.one(ev.ForkEvent, lambda e: e.child_pid == pid)
    assert fork.pid == os.getpid() and fork.child_tid == pid
    assert fork.credentials.uid == os.getuid()
    exits = watch.mine(ev.ExitEvent, lambda e: e.pid == pid)
    assert len(exits) == 1
    assert exits[0].exit_code == 3 and exits[0].status == status


def test_a_thread_is_not_reported_as_a_fork(watch):
    import threading

    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
    assert not watch.mine(ev.ForkEvent, lambda e: e.pid == os.getpid())


def test_a_process_killed_by_a_signal_reports_it(watch):
    proc = subprocess.Popen([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    proc.wait()
    e = watch.one(ev.ExitEvent, lambda e: e.pid == proc.pid)
    assert e.signal == 9


def _in_child(fn) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return pid


def test_setuid_and_setgid_report_credentials_before_and_after(watch):
    def drop():
        os.setgid(1234)
        os.setuid(4321)

    pid = _in_child(drop)
    g = watch.one(ev.SetgidEvent, lambda e: e.pid == pid)
    assert g.syscall == "setgid" and g.retval == 0
    assert (g.before.gid, g.after.gid, g.after.egid, g.after.sgid) == (0, 1234, 1234, 1234)
    u = watch.one(ev.SetuidEvent, lambda e: e.pid == pid)
    assert (u.before.uid, u.before.euid) == (0, 0)
    assert (u.after.uid, u.after.euid, u.after.suid, u.after.fsuid) == (4321, 4321, 4321, 4321)
    assert u.before.cap_effective and u.after.cap_effective == 0  # dropping root clears the capabilities


def test_a_refused_setuid_reports_the_error(watch):
    def refused():
        os.setuid(1000)
        try:
            os.setuid(0)
        except PermissionError:
            return

    pid = _in_child(refused)
    got = watch.mine(ev.SetuidEvent, lambda e: e.pid == pid)
    assert [e.retval for e in got] == [0, -1]
    assert got[1].outcome == "Refused" and got[1].after.uid == 1000


def test_capset_reports_the_capability_sets_before_and_after(watch):
    def drop_caps():
        eff, perm, _ = sysc.capget()
        keep = (1 << CAP_CHOWN) | (1 << CAP_NET_RAW)
        assert sysc.capset(eff & keep, perm & keep, 0) == 0

    eff, perm, _ = sysc.capget()
    pid = _in_child(drop_caps)
    e = watch.one(ev.CapsetEvent, lambda e: e.pid == pid)
    assert e.retval == 0
    assert (e.before.cap_effective, e.before.cap_permitted) == (eff, perm)
    assert e.after.cap_effective == (1 << CAP_CHOWN) | (1 << CAP_NET_RAW)
    assert e.after.cap_permitted == e.after.cap_effective


def test_a_process_in_a_container_carries_its_cgroup_and_sees_paths_from_its_root(watch, tmp_path):
    import json
    import shutil

    runc, busybox = shutil.which("runc"), shutil.which("busybox")
    if not runc or not busybox:
        pytest.skip("runc and busybox-static are needed (scripts/setup.sh installs them)")
    bundle = tmp_path / "bundle"
    (bundle / "rootfs" / "bin").mkdir(parents=True)
    (bundle / "rootfs" / "tmp").mkdir()
    shutil.copy(busybox, bundle / "rootfs" / "bin" / "busybox")
    os.symlink("busybox", bundle / "rootfs" / "bin" / "sh")
    subprocess.run([runc, "spec"], cwd=bundle, check=True)
    config = json.loads((bundle / "config.json").read_text())
    container_id = os.urandom(32).hex()
    config["process"].update(terminal=False, args=["/bin/sh", "-c", "/bin/busybox mkdir /tmp/in_ctr"])
    config["process"].pop("rlimits", None)
    config["root"]["readonly"] = False
    config["linux"]["cgroupsPath"] = f"/system.slice/docker-{container_id}.scope"
    (bundle / "config.json").write_text(json.dumps(config))
    subprocess.run([runc, "run", f"ocws-{container_id[:12]}"], cwd=bundle, check=True, capture_output=True)
    mk = watch.one(ev.MkdirEvent, lambda e: e.file.path == "/tmp/in_ctr")
    assert mk.file.inode == os.stat(bundle / "rootfs" / "tmp" / "in_ctr").st_ino
    execs = watch.mine(ev.ExecEvent, lambda e: e.pid == mk.pid)
    assert execs and execs[-1].cgroup == f"docker-{container_id}.scope"
    assert execs[-1].cgroup_id == mk.cgroup_id != watch.mine(ev.ForkEvent)[0].cgroup_id


def test_a_process_with_a_controlling_terminal_reports_its_tty(watch):
    import fcntl
    import termios

    from opencws.probe.procfs import read_process

    master, slave = os.openpty()
    name = os.ttyname(slave).removeprefix("/dev/").replace("/", "")  # the kernel's name: /dev/pts/3 is pts3
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            os.execv("/bin/sleep", ["/bin/sleep", "0.3"])
        finally:
            os._exit(1)
    try:
        (e,) = watch.wait_for(ev.ExecEvent, lambda e: e.pid == pid)
        assert e.tty == name
        snap = read_process(pid)
        assert snap is None or snap.tty == name
    finally:
        os.waitpid(pid, 0)
        os.close(master)
        os.close(slave)


def test_a_script_exec_reports_the_script_and_its_interpreter(watch, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    subprocess.run([str(script), "arg1"], check=True, cwd=tmp_path)
    e = watch.one(ev.ExecEvent, lambda e: e.argv[-1:] == ["arg1"])
    assert e.file.path == str(script) and e.file.inode == os.stat(script).st_ino
    sh = os.path.realpath("/bin/sh")
    assert e.interpreter is not None
    assert e.interpreter.path == sh and e.interpreter.inode == os.stat(sh).st_ino
