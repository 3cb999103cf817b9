"""The process cache, fed with kernel events built by hand (the kernel scenarios are in tests/agent)."""

from __future__ import annotations

import subprocess
import time

from opencws.probe import events as kev
from opencws.probe.procfs import read_process
from opencws.resolvers.process import ArgsPolicy, ProcessCache, bound_args, env_names

BOOT = 1_000_000_000_000


class Names:
    def user(self, uid, root="/"):
        return {0: "root", 1000: "app"}.get(uid) if root == "/" else {0: "croot", 1000: "capp"}.get(uid)

    def group(self, gid, root="/"):
        return {0: "root", 1000: "app"}.get(gid)


class Clock:
    def wall_from_monotonic(self, ns):
        return ns + 10 * BOOT

    def wall_from_boottime(self, ns):
        return ns + 20 * BOOT


def creds(uid=0, caps=0):
    return kev.Credentials(uid=uid, gid=uid, euid=uid, egid=uid, suid=uid, sgid=uid, fsuid=uid, fsgid=uid,
                           cap_effective=caps, cap_permitted=caps, cap_inheritable=0)


def file(path, inode=100):
    return kev.FileInfo(path=path, resolved_len=len(path), path_resolution_error=None, inode=inode,
                        mode=0o100755, uid=0, gid=0, nlink=1, access_time_ns=1, modification_time_ns=2,
                        change_time_ns=3, mount_id=27, group_id=0, device=0, fs_type="ext4",
                        in_upper_layer=False, negative=False, flags=0)


def header(pid, ppid, **kw):
    return {"pid": pid, "tid": kw.pop("tid", pid), "ppid": ppid, "ktime_ns": kw.pop("ktime", 5),
            "cgroup_id": kw.pop("cgroup_id", 0),
            "uid": 0, "gid": 0, "comm": kw.pop("comm", "x"), **kw}


def fork(parent, child, ppid=1, start=BOOT):
    return kev.ForkEvent(**header(parent, ppid), child_pid=child, child_tid=child, child_cgroup_id=0,
                         start_time_ns=start, credentials=creds(), cgroup="", tty="")


def exec_(pid, ppid, path, argv, start=BOOT, cgroup="", uid=0, envp=()):
    return kev.ExecEvent(**header(pid, ppid, comm=path.rsplit("/", 1)[-1][:15], cgroup_id=7 if cgroup else 0),
                         file=file(path),
                         credentials=creds(uid), argv=list(argv), argv_truncated=False, envp=list(envp),
                         envp_truncated=False, start_time_ns=start, cgroup=cgroup, tty="pts1")


def exit_(pid, ppid):
    return kev.ExitEvent(**header(pid, ppid), status=0)


def cache(**kw):
    c = ProcessCache(Names(), Clock(), **kw)
    c.snapshot([])
    return c


def tree(c):
    """init(1) → sshd(100) → bash(200)"""
    for parent, child, ppid, path in ((0, 1, 0, "/sbin/init"), (1, 100, 0, "/usr/sbin/sshd"),
                                      (100, 200, 1, "/usr/bin/bash")):
        if parent:
            c.on_fork(fork(parent, child, ppid, start=BOOT + child))
        c.on_exec(exec_(child, parent, path, [path], start=BOOT + child))


def test_ancestors_are_nearest_first_up_to_pid_1_never_the_process_itself():
    c = cache()
    tree(c)
    c.on_fork(fork(200, 300, 100, start=BOOT + 300))
    e = c.on_exec(exec_(300, 200, "/usr/bin/curl", ["curl", "-s", "x"], start=BOOT + 300))
    anc = c.ancestors(e)
    assert [a.pid for a in anc] == [200, 100, 1]
    assert [a.executable.path for a in anc] == ["/usr/bin/bash", "/usr/sbin/sshd", "/sbin/init"]
    ctx = c.context(e, 300)
    assert ctx.parent is anc[0] and ctx.args == ["-s", "x"] and ctx.executable.path == "/usr/bin/curl"


def test_a_process_tree_shares_one_ancestors_list_until_something_changes():
    c = cache()
    tree(c)
    e = c.get(200)
    first = c.ancestors(e)
    assert c.ancestors(e) is first
    assert c.context(e, 200) is c.context(e, 200)
    c.on_exec(exec_(100, 1, "/usr/sbin/sshd2", ["sshd2"], start=BOOT + 100))
    changed = c.ancestors(e)
    assert changed is not first and changed[0].executable.path == "/usr/sbin/sshd2"


def test_a_reused_pid_is_told_apart_by_its_start_time():
    c = cache()
    tree(c)
    old = c.get(200)
    c.on_exec(exec_(200, 1, "/usr/bin/other", ["other"], start=BOOT + 999))  # its exit was lost
    new = c.get(200)
    assert new is not old and new.executable.path == "/usr/bin/other"
    assert c.stats()["reused_pids"] == 1


def test_reparenting_is_followed_from_the_event_header():
    c = cache()
    tree(c)
    c.on_exit(exit_(100, 1))
    bash = c.for_event(kev.ExitEvent(**header(200, 1), status=0))
    assert bash.ppid == 1 and [a.pid for a in c.ancestors(bash)] == [1]


def test_an_exited_process_stays_findable_for_late_events_then_goes():
    c = cache()
    tree(c)
    c.on_exit(exit_(200, 100))
    assert c.get(200, read_proc=False) is not None
    assert c.model(c.get(200, read_proc=False)).exit_time == 5 + 10 * BOOT
    for _ in range(3):
        c.end_batch()
    assert c.get(200, read_proc=False) is None


def test_the_cache_is_bounded_and_counts_evictions():
    c = cache(max_size=10)
    for pid in range(2, 40):
        c.on_exec(exec_(pid, 1, "/bin/true", ["true"], start=BOOT + pid))
    assert len(c) == 10 and c.stats()["evictions"] == 28


def test_a_credentials_change_updates_the_entry_and_the_names():
    c = cache()
    tree(c)
    ev = kev.SetuidEvent(**header(200, 100), syscall="setuid", retval=0, before=creds(0), after=creds(1000))
    c.on_credentials(ev)
    m = c.model(c.get(200))
    assert m.uid == 1000 and m.user == "app" and m.credentials.euser == "app"
    refused = kev.SetuidEvent(**header(200, 100), syscall="setuid", retval=-1, before=creds(1000), after=creds(0))
    c.on_credentials(refused)
    assert c.model(c.get(200)).uid == 1000


def test_container_processes_take_names_from_their_own_root():
    c = ProcessCache(Names(), Clock(),
                     container_of_event=lambda pid, cgid, name: "ab" * 32 if name.startswith("docker-") else None)
    c.snapshot([])
    e = c.on_exec(exec_(500, 1, "/bin/sh", ["sh"], start=BOOT, cgroup="docker-" + "ab" * 32 + ".scope", uid=1000))
    m = c.model(e)
    assert m.container.id == "ab" * 32 and m.user == "capp" and e.root == "/proc/500/root"
    child = c.on_fork(kev.ForkEvent(**header(500, 1), child_pid=501, child_tid=501, child_cgroup_id=7,
                                    start_time_ns=BOOT + 1, credentials=creds(), cgroup="", tty=""))
    assert child.container_id == "ab" * 32


def test_args_are_bounded_and_truncation_said():
    policy = ArgsPolicy(max_args=3, max_arg_bytes=10)
    assert bound_args(["p", "a", "b"], False, policy) == (["a", "b"], False)
    assert bound_args(["p", *"abcde"], False, policy) == (["a", "b", "c"], True)
    assert bound_args(["p", "x" * 8, "y" * 8], False, policy) == (["x" * 8, "yy"], True)
    assert bound_args(["p", "a"], True, policy) == (["a"], True)
    assert env_names(["A=1", "B=2=3", "C"], False, ArgsPolicy(max_envs=2)) == (["A", "B"], True)


def test_args_are_scrubbed_by_the_configured_scrubber():
    policy = ArgsPolicy(scrub=lambda args: ["***" if a.startswith("--password=") else a for a in args])
    assert bound_args(["mysql", "--password=hunter2", "-u", "root"], False, policy)[0] == ["***", "-u", "root"]


def test_envp_keeps_values_for_rules_while_events_carry_names():
    c = cache()
    e = c.on_exec(exec_(600, 1, "/bin/env", ["env"], envp=["LD_PRELOAD=/tmp/x.so", "HOME=/root"]))
    assert e.envp.split("\0") == ["LD_PRELOAD=/tmp/x.so", "HOME=/root"]
    assert c.model(e).envs == ["LD_PRELOAD", "HOME"]


def test_each_thread_gets_its_own_tid_and_keeps_its_block():
    c = cache()
    tree(c)
    e = c.get(200)
    t1, t2 = c.context(e, 201), c.context(e, 202)
    assert (t1.pid, t1.tid, t2.tid) == (200, 201, 202)
    assert c.context(e, 201) is t1 and c.context(e, 200).tid == 200


def test_secl_reads_full_environment_pairs_from_the_cache_while_events_carry_names():
    from opencws.model.codec import to_dict
    from opencws.secl import compile_expression

    c = cache()
    e = c.on_exec(exec_(700, 1, "/bin/sh", ["sh"], envp=["LD_PRELOAD=/tmp/evil.so", "HOME=/root"]))
    ctx = c.context(e, 700)
    from opencws.model.event import Event, EventContext

    event = Event(evt=EventContext(name="exec"), process=ctx)
    assert compile_expression('exec.envp == "LD_PRELOAD=/tmp/evil.so"').evaluate(event)
    assert compile_expression('exec.envs == "LD_PRELOAD"').evaluate(event)
    assert "envp" not in to_dict(ctx) and to_dict(ctx)["envs"] == ["LD_PRELOAD", "HOME"]


def test_processes_started_with_the_same_environment_share_one_list():
    c = cache()
    a = c.on_exec(exec_(801, 1, "/bin/true", ["true"], envp=["A=1", "B=2"]))
    b = c.on_exec(exec_(802, 1, "/bin/true", ["true"], envp=["A=1", "B=2"]))
    assert a.envp is b.envp


def test_a_sweep_drops_the_processes_whose_exit_was_lost(tmp_path):
    """Against a /proc of this test's making: pid 2 lives (same start), 3 is gone, 4 is another process now."""
    from opencws.probe.procfs import CLK_TCK

    ticks = BOOT * CLK_TCK // 1_000_000_000
    for pid, start in ((2, ticks), (4, ticks + 500)):
        (tmp_path / str(pid)).mkdir()
        fields = ["S"] + ["0"] * 18 + [str(start)] + ["0"] * 10
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (x y) " + " ".join(fields) + "\n")
    c = ProcessCache(Names(), Clock(), proc=str(tmp_path))
    c.snapshot([])
    for pid in (2, 3, 4):
        c.on_exec(exec_(pid, 1, "/bin/true", ["true"], start=BOOT))
    assert c.sweep() == 2
    assert c.get(2, read_proc=False) is not None and c.get(3, read_proc=False) is None
    assert c.get(4, read_proc=False) is None and c.stats()["swept"] == 2


def test_secl_reads_argv0_from_the_cache_while_events_carry_the_arguments_after_it():
    """A busybox applet: the executable is busybox, argv[0] and comm name the applet; the event's `args` stay
    what comes after argv[0], and `argv0` is not serialized (the schema has no place for it)."""
    from opencws.model.codec import to_dict
    from opencws.model.event import Event, EventContext
    from opencws.secl import compile_expression

    c = cache()
    e = c.on_exec(exec_(710, 1, "/bin/busybox", ["wget", "-q", "http://x/"]))
    ctx = c.context(e, 710)
    event = Event(evt=EventContext(name="exec"), process=ctx)
    assert compile_expression('exec.argv0 == "wget" && exec.file.name == "busybox"').evaluate(event)
    assert ctx.args == ["-q", "http://x/"]
    assert "argv0" not in to_dict(ctx) and "cgroup_id" not in to_dict(ctx)
    c.on_fork(fork(710, 711, ppid=1, start=BOOT + 711))
    assert c.model(c.get(711)).argv0 == "wget"  # a fork keeps its parent's argv[0] until it execs


def test_a_container_is_dated_by_its_first_process():
    """`container.created_at` for rules (Datadog's container-age guard): the start of the first process the cache
    saw in the container, its init; later processes do not move it. Not serialized (not in the schema)."""
    from opencws.model.codec import to_dict

    cid = "9" * 64
    c = cache(container_of_event=lambda pid, cgid, name: cid if name else None)
    first = c.on_exec(exec_(720, 1, "/pause", ["/pause"], start=BOOT + 10, cgroup="docker-x.scope"))
    c.on_fork(fork(720, 721, ppid=1, start=BOOT + 500))
    later = c.on_exec(exec_(721, 720, "/bin/sh", ["sh"], start=BOOT + 500, cgroup="docker-x.scope"))
    created = c.model(first).container.created_at
    assert created is not None and created == c.model(first).fork_time
    assert c.model(later).container.created_at == created
    assert "created_at" not in to_dict(c.model(later).container)


def test_the_login_uid_is_read_at_exec_and_inherited_at_fork(tmp_path):
    """pam_loginuid sets the login uid between a session's fork and its shell's exec: the exec reads it from
    /proc (here a /proc of this test's making); a fork inherits it; a process gone before the agent read it
    keeps the one it inherited. Not serialized (the schema has no place for it)."""
    from opencws.model.codec import to_dict

    unset = 4294967295
    for pid, value in ((100, "4294967295"), (200, "1000")):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "loginuid").write_text(value)
    c = ProcessCache(Names(), Clock(), proc=str(tmp_path))
    c.snapshot([])
    sshd = c.on_exec(exec_(100, 1, "/usr/sbin/sshd", ["sshd"], start=BOOT + 100))
    assert sshd.auid == unset
    c.on_fork(fork(100, 200, ppid=1, start=BOOT + 200))
    assert c.get(200, read_proc=False).auid == unset  # forked before the session set it
    bash = c.on_exec(exec_(200, 100, "/usr/bin/bash", ["-bash"], start=BOOT + 200))
    assert bash.auid == 1000 and c.model(bash).auid == 1000
    c.on_fork(fork(200, 300, ppid=100, start=BOOT + 300))
    ls = c.on_exec(exec_(300, 200, "/usr/bin/ls", ["ls"], start=BOOT + 300))  # gone: no /proc/300
    assert ls.auid == 1000
    assert "auid" not in to_dict(c.context(ls, 300))


def test_the_login_uid_of_a_real_process_reaches_the_cache(tmp_path):
    """A real child writes its login uid (allowed once, to root, while unset); the /proc snapshot and an exec
    of it read that value, and a fork of it inherits it."""
    import os

    import pytest

    from opencws.probe.procfs import read_process

    rd, wr = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(wr)
        try:
            with open("/proc/self/loginuid", "w") as f:
                f.write("4321")
            os.write(ready_w, b"1")
        except OSError:
            os.write(ready_w, b"0")
        os.read(rd, 1)
        os._exit(0)
    os.close(rd)
    try:
        ok = os.read(ready_r, 1) == b"1"
        if not ok:
            pytest.skip("this process may not set a login uid (not root, or loginuid already set and immutable)")
        snap = read_process(pid)
        assert snap is not None and snap.loginuid == 4321
        c = cache()
        c.snapshot([snap])
        assert c.get(pid, read_proc=False).auid == 4321
        c.on_exec(exec_(pid, os.getpid(), "/usr/bin/sleep", ["sleep"], start=snap.start_time_ns))
        assert c.get(pid, read_proc=False).auid == 4321
        c.on_fork(fork(pid, 4_000_000, ppid=os.getpid(), start=snap.start_time_ns + 1))
        assert c.get(4_000_000, read_proc=False).auid == 4321
    finally:
        os.close(wr)
        os.waitpid(pid, 0)


def test_an_exited_process_is_findable_in_the_next_batch_and_gone_in_the_one_after():
    """Late events of its other threads come in the batch of the exit or the next one; then it goes."""
    c = cache()
    tree(c)
    c.on_exit(exit_(200, 100))
    c.end_batch()
    assert c.get(200, read_proc=False) is not None
    c.end_batch()
    assert c.get(200, read_proc=False) is None


def test_a_fork_onto_a_known_pid_with_another_start_time_counts_a_reused_pid():
    c = cache()
    tree(c)
    old = c.get(200)
    c.on_fork(fork(100, 200, 1, start=BOOT + 999))  # the old bash's exit was lost
    new = c.get(200)
    assert new is not old and new.start_time_ns == BOOT + 999
    assert c.stats()["reused_pids"] == 1
    c.on_fork(fork(100, 200, 1, start=BOOT + 999))  # the same fork again (already known): no reuse
    assert c.get(200) is new and c.stats()["reused_pids"] == 1


def test_a_process_from_the_proc_snapshot_is_truncated_only_where_the_bounds_cut():
    """A real process started before the agent, with two arguments and two variables: nothing cut by the
    default bounds; with room for one variable, its envs are said truncated."""
    child = subprocess.Popen(["sleep", "30", "1"], env={"A": "1", "PATH": "/usr/bin:/bin"})
    try:
        snap = None
        for _ in range(200):  # until the exec is done
            snap = read_process(child.pid)
            if snap is not None and snap.argv[:1] == ["sleep"]:
                break
            time.sleep(0.01)
        assert snap is not None and snap.argv == ["sleep", "30", "1"]
        for policy, envs_truncated in ((ArgsPolicy(), False), (ArgsPolicy(max_envs=1), True)):
            c = ProcessCache(Names(), Clock(), args_policy=policy)
            c.snapshot([snap])
            m = c.model(c.get(child.pid, read_proc=False))
            assert (m.args, bool(m.args_truncated)) == (["30", "1"], False)  # (the model leaves False out)
            assert (m.envs, bool(m.envs_truncated)) == (["A", "PATH"][: policy.max_envs], envs_truncated)
    finally:
        child.kill()
        child.wait()
