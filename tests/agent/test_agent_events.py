"""Scenarios on the real kernel: a child process does the real thing, the agent reports a CWS event, and the
event is valid against the schema and true to what happened."""

from __future__ import annotations

import ctypes
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import probe_sysc as sysc
import pytest
from agent_harness import started_agent

from opencws.schema.validation import event_validator

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def before_agent(tmp_path_factory):
    """A shell started before the agent, waiting on a FIFO to read a watched file."""
    d = tmp_path_factory.mktemp("before")
    fifo = d / "go"
    os.mkfifo(fifo)
    target = d / "early-target"
    target.write_text("x")
    proc = subprocess.Popen(["/bin/sh", "-c", f'read x < "{fifo}"; cat "{target}" > /dev/null', "early-shell"])
    yield proc, fifo, target
    if proc.poll() is None:
        proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def harness(require_kernel, before_agent):
    with started_agent() as h:
        yield h


def valid(event: dict) -> dict:
    issues = event_validator().issues(event)
    assert not issues, issues
    return event


def test_an_open_of_a_watched_file_carries_the_file_the_process_and_its_ancestors(harness, tmp_path):
    target = tmp_path / "secret"
    target.write_text("s")
    os.chown(target, 0, 1)  # group daemon
    os.chmod(target, 0o640)
    harness.use_policy(tmp_path, f'open.file.path == "{target}"')
    pid = harness.child(lambda: os.close(os.open(target, os.O_RDONLY)))
    line = harness.events("r0", pid)[0]
    assert line["rule_version"] == "1.2.3" and line["tags"] == ["technique:T0000"]
    assert line["policy"] == "test.policy" and line["host"] and line["agent_version"]
    e = valid(line["event"])
    st = target.stat()
    assert e["evt"] == {"name": "open", "category": "File Activity", "outcome": "Success"}
    f = e["file"]
    assert (f["path"], f["name"], f["inode"], f["mode"]) == (str(target), "secret", st.st_ino, st.st_mode)
    assert (f["uid"], f["user"], f["gid"], f["group"]) == (0, "root", 1, "daemon")
    assert "O_RDONLY" in f["flags"] and f["flags"] == sorted(f["flags"]) and f["filesystem"] and f["mount_id"]
    p = e["process"]
    assert (p["pid"], p["tid"], p["ppid"]) == (pid, pid, os.getpid())
    assert p["executable"]["path"] == os.path.realpath(sys.executable)
    ancestors = [a["pid"] for a in p["ancestors"]]
    assert ancestors[0] == os.getpid() and os.getppid() in ancestors and ancestors[-1] == 1
    assert pid not in ancestors and p["parent"] == p["ancestors"][0]
    assert p["credentials"]["uid"] == 0 and "CAP_SYS_ADMIN" in p["credentials"]["cap_effective"]
    assert e["usr"] == {"id": "root", "group": "root"}
    assert abs(_ns(e["date"]) - time.time_ns()) < 30 * 10**9


def _ns(date: str) -> int:
    from opencws.model.codec import parse_timestamp

    return parse_timestamp(date)


def test_an_exec_carries_the_new_program_its_args_and_only_the_names_of_its_environment(harness, tmp_path):
    harness.use_policy(tmp_path, 'exec.file.path == "/usr/bin/env" && exec.argv == "--marker-exec"')
    pid = harness.child(lambda: os.execve("/usr/bin/env", ["env", "--marker-exec", "-0"],
                                          {"API_TOKEN": "hunter2", "HOME": "/root"}), wait=False)
    os.waitpid(pid, 0)
    e = valid(harness.one("r0", pid))
    p = e["process"]
    assert e["evt"]["name"] == "exec" and "file" not in e
    assert p["executable"]["path"] == "/usr/bin/env" and p["comm"] == "env"
    assert p["args"] == ["--marker-exec", "-0"] and "args_truncated" not in p
    assert sorted(p["envs"]) == ["API_TOKEN", "HOME"]
    assert "hunter2" not in str(e)
    assert p["ancestors"][0]["executable"]["path"] == os.path.realpath(sys.executable)


def test_a_login_sessions_programs_carry_its_login_uid_to_rules(harness, tmp_path):
    """A session's process writes its login uid (as pam_loginuid does) and then runs its shell, which runs a
    short-lived program: rules see `process.auid` on both (the shell's read at its exec while it lives, the
    program's inherited at fork, as it is gone when its exec is handled); the CWS event has no field for
    it."""
    harness.use_policy(tmp_path, 'exec.file.path == "/usr/bin/true" && process.auid == 4321 && '
                                 "process.parent.auid == 4321")

    def session() -> None:
        with open("/proc/self/loginuid", "w") as f:
            f.write("4321")
        os.execv("/bin/sh", ["sh", "-c", "/usr/bin/true; exec sleep 30"])

    pid = harness.child(session, wait=False)
    try:
        events: list[dict] = []
        for _ in range(50):
            events = [line["event"] for line in harness.events("r0")]
            if events:
                break
        assert events and events[0]["process"]["ppid"] == pid
        assert "auid" not in events[0]["process"]
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_an_exec_with_too_many_or_too_long_arguments_says_they_were_truncated(harness, tmp_path):
    harness.use_policy(tmp_path, 'exec.file.path == "/usr/bin/true"')
    many = harness.child(lambda: os.execv("/usr/bin/true", ["true", *(f"arg{i}" for i in range(200))]), wait=False)
    os.waitpid(many, 0)
    long = harness.child(lambda: os.execv("/usr/bin/true", ["true", "a" * 10_000]), wait=False)
    os.waitpid(long, 0)
    m = valid(harness.one("r0", many))["process"]
    assert m["args_truncated"] is True and m["args"] == [f"arg{i}" for i in range(len(m["args"]))][: len(m["args"])]
    assert 0 < len(m["args"]) < 200 or m["args"][-1] != "arg199"
    long_event = valid(harness.one("r0", long))["process"]
    assert long_event["args_truncated"] is True and len(long_event["args"][0]) < 10_000
    assert set(long_event["args"][0]) <= {"a"}


def refused_to_nobody(action):
    """A child's body: become nobody, then `action`, which the kernel must refuse (PermissionError)."""

    def attempt():
        os.setgid(65534)
        os.setuid(65534)
        try:
            action()
        except PermissionError:
            return
        raise AssertionError("the call was not refused")
    return attempt


@pytest.fixture
def open_dir():
    """A directory anyone may enter (pytest's tmp_path is root's alone), removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="opencws-open-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_a_refused_open_says_refused_with_the_unprivileged_credentials(harness, tmp_path, open_dir):
    target = open_dir / "root-only"
    target.write_text("s")
    os.chmod(target, 0o600)
    harness.use_policy(tmp_path, f'open.file.path == "{target}"')

    pid = harness.child(refused_to_nobody(lambda: open(target).close()))
    e = valid(harness.one("r0", pid))
    assert e["evt"]["outcome"] == "Refused"
    assert e["process"]["uid"] == 65534 and e["process"]["user"] == "nobody"
    assert e["usr"] == {"id": "nobody", "group": "nogroup"}


@pytest.mark.parametrize("kind", ["chmod", "chown", "mkdir", "rename", "link", "unlink", "rmdir", "utimes",
                                  "setxattr", "removexattr"])
def test_each_file_event_type_carries_what_changed(harness, tmp_path, kind):
    f = tmp_path / "f"
    f.write_text("x")
    d = tmp_path / "d"
    if kind == "rmdir":
        d.mkdir()
    if kind == "removexattr":
        os.setxattr(f, "user.opencws", b"1")
    dest = tmp_path / "g"
    watched = {"mkdir": d, "rmdir": d}.get(kind, f)
    harness.use_policy(tmp_path, f'{kind}.file.path == "{watched}"')
    actions = {
        "chmod": lambda: os.chmod(f, 0o600),
        "chown": lambda: os.chown(f, 65534, 1),
        "mkdir": lambda: os.mkdir(d, 0o750),
        "rename": lambda: os.rename(f, dest),
        "link": lambda: os.link(f, dest),
        "unlink": lambda: os.unlink(f),
        "rmdir": lambda: os.rmdir(d),
        "utimes": lambda: os.utime(f, (1_000_000, 2_000_000)),
        "setxattr": lambda: os.setxattr(f, "user.opencws", b"v"),
        "removexattr": lambda: os.removexattr(f, "user.opencws"),
    }
    before = f.stat() if f.exists() else None
    pid = harness.child(actions[kind])
    e = valid(harness.one("r0", pid))
    assert e["evt"]["name"] == kind and e["evt"]["outcome"] == "Success"
    file = e["file"]
    assert file["path"] == str(watched)
    if kind == "chmod":
        assert file["destination"]["mode"] & 0o7777 == 0o600
    elif kind == "chown":
        dst = file["destination"]
        assert (dst["uid"], dst["user"], dst["gid"], dst["group"]) == (65534, "nobody", 1, "daemon")
    elif kind == "mkdir":
        assert file["destination"]["mode"] & 0o7777 == 0o750
    elif kind in ("rename", "link"):
        assert file["destination"]["path"] == str(dest) and file["destination"]["inode"] == before.st_ino
    elif kind in ("setxattr", "removexattr"):
        assert (file["attribute_namespace"], file["attribute_name"]) == ("user", "opencws") or \
            file.get("attribute_name") in ("user.opencws", "opencws")
    if "inode" not in file:  # the kernel did not read the inode (gone): the owner is not claimed
        assert file["uid"] == -1 and file["gid"] == -1 and "user" not in file
    elif kind == "chown":  # the owner before the call (root's: the test made it)
        assert (file["uid"], file["user"], file["gid"], file["group"]) == (0, "root", 0, "root")
    else:  # the file as it is after the call
        after = (dest if kind == "rename" else watched).stat()
        assert (file["uid"], file["gid"]) == (after.st_uid, after.st_gid)


def test_a_chown_reports_the_owner_before_and_a_datadog_style_rule_fires_on_a_real_change(harness, tmp_path):
    f = tmp_path / "f"
    f.write_text("x")  # (root's)
    # Datadog's rules compare the two: the owner asked for against the owner the file had
    harness.use_policy(tmp_path, f'chown.file.path == "{f}" && chown.file.destination.uid != chown.file.uid')
    given = harness.child(lambda: os.chown(f, 1234, 1234))
    again = harness.child(lambda: os.chown(f, 1234, 1234))  # (the owner it has: no change, no alert)
    e = valid(harness.one("r0", given))
    file = e["file"]
    assert (file["path"], file["uid"], file["user"], file["gid"], file["group"]) == (str(f), 0, "root", 0, "root")
    assert (file["destination"]["uid"], file["destination"]["gid"]) == (1234, 1234)
    assert "user" not in file["destination"]  # (no such user on the host)
    assert harness.events("r0", again) == []
    assert (f.stat().st_uid, f.stat().st_gid) == (1234, 1234)


def test_a_refused_chown_reports_the_unchanged_owner(harness, tmp_path, open_dir):
    target = open_dir / "root-owned"
    target.write_text("s")
    harness.use_policy(tmp_path, f'chown.file.path == "{target}"')

    pid = harness.child(refused_to_nobody(lambda: os.chown(target, 65534, 65534)))
    e = valid(harness.one("r0", pid))
    assert e["evt"]["outcome"] == "Refused"
    file = e["file"]
    assert (file["uid"], file["user"], file["gid"], file["group"]) == (0, "root", 0, "root")
    assert (file["destination"]["uid"], file["destination"]["user"]) == (65534, "nobody")


def test_a_chown_whose_owner_before_could_not_be_read_does_not_claim_one(harness, tmp_path):
    import mmap

    mnt = tmp_path / "tmpfs"  # (not ext4, whose inode lock shows the owner before whatever the path)
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mnt)], check=True)
    try:
        f = mnt / "f"
        f.write_text("x")
        # the path in a page no access has mapped yet: the probe cannot read it at the call's start (the kernel can)
        string = tmp_path / "string.bin"
        string.write_bytes(os.fsencode(f) + b"\0")
        harness.use_policy(tmp_path, f'chown.file.path == "{f}" && chown.file.destination.uid != chown.file.uid')

        def chown_from_an_untouched_page():
            with open(string, "r+b") as s:
                m = mmap.mmap(s.fileno(), 0, flags=mmap.MAP_PRIVATE)
            address = ctypes.addressof(ctypes.c_char.from_buffer(m))
            assert ctypes.CDLL(None, use_errno=True).chown(ctypes.c_void_p(address), 1234, 1234) == 0

        pid = harness.child(chown_from_an_untouched_page)
        file = valid(harness.one("r0", pid))["file"]
        assert (file["path"], file["inode"], file["uid"], file["gid"]) == (str(f), f.stat().st_ino, -1, -1)
        assert "user" not in file and "group" not in file  # (not root's, which it was)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_mknod_symlink_and_setgroups_carry_what_was_asked(harness, tmp_path):
    fifo, link = tmp_path / "fifo", tmp_path / "link"
    harness.use_policy(tmp_path, f'mknod.file.path == "{fifo}"', f'symlink.file.path == "{link}"',
                       "setgroups.groups == 4242")
    pid = harness.child(lambda: (os.mknod(fifo, 0o600 | stat.S_IFIFO), os.symlink("/etc/shadow", link),
                                 os.setgroups([4242, 1])))
    mknod = valid(harness.one("r0", pid))
    assert mknod["evt"]["name"] == "mknod" and stat.S_ISFIFO(mknod["file"]["destination"]["mode"])
    symlink = valid(harness.one("r1", pid))
    assert symlink["file"]["destination"]["path"] == "/etc/shadow"
    groups = valid(harness.one("r2", pid))
    assert groups["evt"]["category"] == "Process Activity"
    assert groups["process"]["credentials"]["destination"] == {"groups": [1, 4242]}  # the kernel sorts them


def test_a_tmpfs_mount_carries_the_mountpoint_the_new_mount_and_its_filesystem(harness, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    harness.use_policy(tmp_path, f'mount.mountpoint.path == "{mnt}"')
    pid = harness.child(lambda: subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "ocws", str(mnt)],
                                               check=True))
    try:
        events = harness.events("r0")
        assert events, "no mount event"
        e = valid(events[-1]["event"])
        f = e["file"]
        assert f["path"] == str(mnt) and f["fstype"] == "tmpfs"
        assert f["new_mount_id"] and f["new_mount_id"] != f.get("mount_id")
        assert e["process"]["ppid"] == pid or e["process"]["pid"] == pid or pid in [
            a["pid"] for a in e["process"]["ancestors"]]
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_a_file_created_in_an_overlay_upper_layer_is_reported_with_in_upper_layer(harness, tmp_path):
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for p in (lower, upper, work, merged):
        p.mkdir()
    (lower / "from-lower").write_text("l")
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged)], check=True)
    try:
        created = merged / "created"
        harness.use_policy(tmp_path, f'open.file.path == "{created}"', f'open.file.path == "{merged}/from-lower"')
        pid = harness.child(lambda: (created.write_text("u"), open(merged / "from-lower").close()))
        up = valid(harness.one("r0", pid))
        assert up["file"]["in_upper_layer"] is True and up["file"]["filesystem"] == "overlay"
        low = valid(harness.one("r1", pid))
        assert "in_upper_layer" not in low["file"]
    finally:
        subprocess.run(["umount", str(merged)], check=False)


BPF_PROG_LOAD, BPF_PROG_TYPE_RAW_TRACEPOINT = 5, 17


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


def _load_program() -> None:
    insns = b"".join([_insn(0x85, imm=14), _insn(0x85, imm=5), _insn(0xB7), _insn(0x95)])
    buf = ctypes.create_string_buffer(insns, len(insns))
    license = ctypes.create_string_buffer(b"GPL")
    attr = bytearray(128)
    struct.pack_into("<IIQQ", attr, 0, BPF_PROG_TYPE_RAW_TRACEPOINT, 4, ctypes.addressof(buf),
                     ctypes.addressof(license))
    attr[48:48 + 10] = b"ocws_agent"
    fd = sysc.bpf(BPF_PROG_LOAD, bytes(attr))
    assert fd >= 0, os.strerror(-fd)
    os.close(fd)


def test_a_bpf_program_load_carries_its_type_and_helpers(harness, tmp_path):
    harness.use_policy(tmp_path, 'bpf.cmd == BPF_PROG_LOAD && bpf.prog.name == "ocws_agent"')
    pid = harness.child(_load_program)
    e = valid(harness.one("r0", pid))
    assert e["evt"] == {"name": "bpf", "category": "Kernel Activity", "outcome": "Success"}
    prog = e["bpf"]["program"]
    assert e["bpf"]["cmd"] == "BPF_PROG_LOAD" and prog["name"] == "ocws_agent"
    assert prog["program_type"] == "BPF_PROG_TYPE_RAW_TRACEPOINT"
    assert prog["helpers"] == ["BPF_KTIME_GET_NS", "BPF_GET_CURRENT_PID_TGID"]  # by helper id, as Datadog names them


def test_setuid_reports_the_credentials_before_and_the_new_ones_in_destination(harness, tmp_path):
    harness.use_policy(tmp_path, "setuid.uid == 65534")
    pid = harness.child(lambda: os.setresuid(65534, 65534, 65534))
    e = valid(harness.one("r0", pid))
    c = e["process"]["credentials"]
    assert c["uid"] == 0 and c["user"] == "root"
    assert c["destination"] == {"uid": 65534, "user": "nobody", "euid": 65534, "euser": "nobody",
                                "fsuid": 65534, "fsuser": "nobody"}


def test_capset_reports_the_new_capability_sets(harness, tmp_path):
    harness.use_policy(tmp_path, "capset.cap_effective & CAP_SYS_ADMIN == 0")
    keep = 1 << 0 | 1 << 21  # CAP_CHOWN, CAP_SYS_ADMIN in permitted, only CAP_CHOWN effective
    pid = harness.child(lambda: sysc.capset(1 << 0, keep) == 0 or (_ for _ in ()).throw(OSError("capset")))
    e = valid(harness.one("r0", pid))
    dest = e["process"]["credentials"]["destination"]
    assert dest == {"cap_effective": ["CAP_CHOWN"], "cap_permitted": ["CAP_CHOWN", "CAP_SYS_ADMIN"]}
    assert "CAP_SYS_ADMIN" in e["process"]["credentials"]["cap_effective"]


def test_credentials_stay_true_when_no_rule_watches_their_changes(harness, tmp_path, open_dir):
    target = open_dir / "opened-after-setuid"
    target.write_text("x")
    os.chmod(target, 0o644)
    harness.use_policy(tmp_path, f'open.file.path == "{target}"')

    def drop_then_open():
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
        open(target).close()

    pid = harness.child(drop_then_open)
    e = valid(harness.one("r0", pid))
    c = e["process"]["credentials"]
    assert (c["uid"], c["euid"], c["gid"], c["user"], c["group"]) == (65534, 65534, 65534, "nobody", "nogroup")


def test_a_process_started_before_the_agent_is_known_from_the_proc_snapshot(harness, before_agent, tmp_path):
    proc, fifo, target = before_agent
    harness.use_policy(tmp_path, f'open.file.path == "{target}"')
    with open(fifo, "w") as w:
        w.write("go\n")
    proc.wait(timeout=10)
    events = harness.events("r0")
    assert len(events) == 1
    e = valid(events[0]["event"])
    p = e["process"]
    assert p["executable"]["path"] == "/usr/bin/cat"
    shell = p["ancestors"][0]
    assert shell["pid"] == proc.pid and shell["executable"]["path"] == os.path.realpath("/bin/sh")
    assert shell["args"][:1] == ["-c"] and shell["args"][-1] == "early-shell"
    assert p["ancestors"][1]["pid"] == os.getpid()


def test_every_event_read_is_counted_once_as_sent_filtered_or_rate_limited(harness):
    c = harness.agent.pipeline.counts
    for t, seen in c.seen.items():
        assert seen == c.filtered.get(t, 0) + c.sent.get(t, 0) + c.rate_limited.get(t, 0), t


CONTAINER_PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
CONTAINER_GROUP = "root:x:0:\napp:x:1000:\n"


def test_a_process_in_a_runc_container_carries_its_id_and_names_from_the_containers_own_files(harness, tmp_path):
    from containers import run_container

    # on this host uid 1000 may have another name: the event must use the container's
    with run_container(tmp_path, command=["sleep", "30"], passwd=CONTAINER_PASSWD, group=CONTAINER_GROUP,
                       user=(1000, 1000)) as c:
        harness.use_policy(tmp_path, f'open.file.path == "/etc/hostname" && container.id == "{c.id}"')
        c.exec(["cat", "/etc/hostname"])
        events = harness.events("r0")
    assert events, "no event from the container"
    e = valid(events[0]["event"])
    p = e["process"]
    assert e["container"] == {"id": c.id} and p["container"] == {"id": c.id}
    assert (p["uid"], p.get("user"), p.get("group")) == (1000, "app", "app"), p
    assert e["usr"] == {"id": "app", "group": "app"}
    assert p["executable"]["path"] == "/bin/busybox" or p["comm"] == "cat"
    assert e["file"]["path"] == "/etc/hostname" and e["file"]["user"] == "root"


def test_a_policy_reload_under_load_loses_no_event(harness, tmp_path):
    target = tmp_path / "hot"
    target.write_text("x")
    harness.use_policy(tmp_path, f'open.file.path == "{target}"')
    rounds, per_round = 150, 100

    def hammer():  # about 4,000 events/s for a second or more, while the parent reloads
        for _ in range(rounds):
            for _ in range(per_round):
                os.close(os.open(target, os.O_RDONLY))
            time.sleep(0.025)

    agent = harness.agent
    lost_before = agent.probe.counters()["open"].lost
    pid = harness.child(hammer, wait=False)
    reloads = 0
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        assert agent.reload()
        reloads += 1
        agent.step(5)
    assert reloads >= 3
    got = harness.events("r0", pid)
    # the reload itself drops nothing: every event is written, or counted lost by the kernel when the ring
    # buffer was full (a machine loaded by other jobs can starve the reader; the agent then says so)
    lost = agent.probe.counters()["open"].lost - lost_before
    assert len(got) + lost == rounds * per_round
    assert lost <= rounds * per_round // 100


def test_a_full_disk_under_a_file_output_is_reported_and_nothing_acknowledged_is_lost(harness, tmp_path):
    from opencws.agent.file_reporter import FileReporter

    target = tmp_path / "watched"
    target.write_text("x")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "ocws-full", str(disk)], check=True)
    try:
        out = FileReporter(disk / "events.jsonl", buffer_bytes=0)
        _fill(disk / "filler")
        harness.agent.reporters.append(out)
        harness.use_policy(tmp_path, f'open.file.path == "{target}"')
        pid = harness.child(lambda: [os.close(os.open(target, os.O_RDONLY)) for _ in range(20)])
        assert len(harness.events("r0", pid)) == 20  # the other output still gets every event
        errors = [e for e in harness.self_events.lines if e["agent_event"] == "reporter_error"]
        assert errors and "space" in errors[-1]["error"].lower()
        (disk / "filler").unlink()
        harness.agent.pipeline.flush()
        written = [orjson.loads(line) for line in (disk / "events.jsonl").read_bytes().splitlines()]
        assert len([w for w in written if w["event"]["process"]["pid"] == pid]) == 20
    finally:
        if out in harness.agent.reporters:
            harness.agent.reporters.remove(out)
        out.close()
        subprocess.run(["umount", str(disk)], check=False)


def _fill(path: Path) -> None:
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError:
            pass


def test_a_file_name_that_is_not_utf8_is_reported_without_loss(harness, tmp_path):
    from opencws.model import jsontext

    raw = os.fsencode(tmp_path) + b"/bad-\xff\xfe-name"
    harness.use_policy(tmp_path, f'open.file.path =~ "{tmp_path}/bad-*"')
    pid = harness.child(lambda: os.close(os.open(raw, os.O_CREAT | os.O_WRONLY, 0o600)))
    harness.sync()
    lines = [jsontext.loads(line) for line in harness.sink.raw]
    mine = [line["event"] for line in lines if line["event"]["process"]["pid"] == pid]
    assert len(mine) == 1
    assert os.fsencode(mine[0]["file"]["path"]) == raw


def test_a_rule_on_a_racing_path_fires_on_the_file_the_kernel_changed(harness, tmp_path):
    """Another thread flips chmod's path string to a decoy: the rule on the real file fires, and a rule on the
    flag and the decoy's path fires with it."""
    prog = tmp_path / "path_race"
    source = Path(__file__).parent.parent / "probe" / "path_race.c"
    subprocess.run(["gcc", "-O1", "-pthread", "-o", str(prog), str(source)], check=True, capture_output=True)
    target, decoy = tmp_path / "racer0", tmp_path / "racer1"
    for f in (target, decoy):
        f.write_text("x")
    harness.use_policy(tmp_path, f'chmod.file.path == "{target}" && chmod.file.path_rewritten',
                       f'chmod.file.requested_path == "{decoy}"', f'chmod.file.path == "{decoy}" && chmod.retval == 0')
    with sysc.immutable(decoy):
        for _ in range(10):
            subprocess.run([str(prog), "chmod", str(target), str(decoy), "20000"], check=True, capture_output=True,
                           timeout=60)
            if harness.events("r0"):
                break
    real, decoyed = harness.events("r0"), harness.events("r1")
    assert real, "no chmod reported as rewritten in 10 races"
    assert len(real) == len(decoyed)  # (the same events)
    assert not harness.events("r2")  # the decoy cannot change: no success names it
    assert all(e["event"]["file"]["path"] == str(target) for e in real)
    assert "path_rewritten" not in valid(real[0]["event"])["file"]  # (rules only: the schema has no place for it)
