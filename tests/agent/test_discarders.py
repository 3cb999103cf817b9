"""Discarder learning against a fake probe: what is discarded, what never is, and what invalidates."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest
from agent_reader import write_policy

from opencws.agent.filters import Discarders
from opencws.probe import events as ev


class FakeProbe:
    def __init__(self):
        self.inodes: dict[tuple[int, int, int], list[str]] = {}
        """(inode, mount id, inode generation) -> types"""
        self.pids: dict[int, list[str]] = {}
        self.ignored: set[int] = set()
        self.generations: dict[tuple[int, int, int], int | None] = {}
        self.invalidations = 0

    def add_discarder_inode(self, inode, mount_id, event_types=None, generation=None, *, inode_generation):
        self.inodes[(inode, mount_id, inode_generation)] = list(event_types or [])
        self.generations[(inode, mount_id, inode_generation)] = generation

    def remove_discarder_inode(self, inode, mount_id, *, inode_generation):
        self.inodes.pop((inode, mount_id, inode_generation), None)

    def add_discarder_pid(self, pid, event_types=None):
        self.pids[pid] = list(event_types or [])

    def ignore_pid(self, pid):
        self.ignored.add(pid)

    def invalidate_discarders(self):
        self.invalidations += 1
        self.inodes.clear()
        self.pids.clear()


def info(path: str, *, ino: int = 10, nlink: int = 1, mode: int = stat.S_IFREG | 0o644, error: str | None = None,
         igen: int = 7):
    return make(ev.FileInfo, path=path, resolved_len=len(path), path_resolution_error=error, inode=ino, mode=mode,
                       uid=0, gid=0, nlink=nlink, access_time_ns=0, modification_time_ns=0, change_time_ns=0,
                       mount_id=5, group_id=0, device=0, fs_type="ext4", in_upper_layer=False, negative=False,
                       flags=0, inode_generation=igen)


COMMON = dict(tid=100, ppid=1, ktime_ns=1, cgroup_id=1, uid=0, gid=0, comm="x")


def make(cls, **values):
    """An event with these values; the fields the discarders never read (they evolve with the probe) are None."""
    for f in dataclasses.fields(cls):
        if f.kw_only and f.name not in values and f.default is dataclasses.MISSING \
                and f.default_factory is dataclasses.MISSING:
            values[f.name] = None
    return cls(**values)


def open_event(path: str, pid: int = 100, **kw) -> ev.OpenEvent:
    return make(ev.OpenEvent, pid=pid, **COMMON, syscall="openat", retval=3, file=info(path, **kw), flags=0, mode=0)


CREDS = ev.Credentials(uid=0, gid=0, euid=0, egid=0, suid=0, sgid=0, fsuid=0, fsgid=0, cap_effective=0,
                       cap_permitted=0, cap_inheritable=0)


def exec_event(pid: int, path: str) -> ev.ExecEvent:
    return ev.ExecEvent(pid=pid, **{**COMMON, "tid": pid}, file=info(path, ino=99), credentials=CREDS, argv=[path],
                        argv_truncated=False, envp=[], envp_truncated=False, start_time_ns=pid, cgroup="", tty="")


def fork_event(parent: int, child: int) -> ev.ForkEvent:
    return ev.ForkEvent(pid=parent, **COMMON, child_pid=child, child_tid=child, child_cgroup_id=1,
                        start_time_ns=child, credentials=CREDS, cgroup="", tty="")


@pytest.fixture
def learner(tmp_path: Path):
    policies = write_policy(tmp_path, 'open.file.path =~ "/etc/cron.d/*"',
                            'chmod.file.destination.mode & S_ISUID > 0 && process.file.path == "/opt/tool"')
    return Discarders(FakeProbe(), policies)


def test_a_path_no_rule_could_match_discards_its_inode_for_that_type(learner):
    assert learner.observe(open_event("/tmp/x")) == "inode"
    assert learner.probe.inodes == {(10, 5, 7): ["open"]}  # that inode only: its number, mount and identity
    assert learner.observe(open_event("/etc/cron.d/job", ino=11)) is None


def test_no_inode_discarder_for_a_file_whose_filesystem_gives_no_identity(learner):
    """procfs, ramfs...: inode generation 0, a discarder could outlive its inode onto the next one of its number."""
    assert learner.observe(open_event("/proc/1/status", igen=0)) is None
    assert learner.probe.inodes == {}
    assert learner.counters()["inodes_without_identity"] == 1


def test_an_event_a_rule_matched_teaches_no_discarder_but_still_invalidates(learner):
    assert learner.observe(open_event("/tmp/x"), matched=True) is None  # told: the rules matched it
    assert learner.probe.inodes == {} and learner.probe.pids == {}
    exchange = make(ev.RenameEvent, pid=100, **COMMON, syscall="renameat2", retval=0, file=info("/tmp/x"),
                    destination=info("/tmp/y"), flags=2)  # RENAME_EXCHANGE
    learner.observe(exchange, matched=True)
    assert learner.probe.invalidations == 1


def test_the_types_it_learns_from_when_matched_are_those_whose_matched_events_change_something(learner):
    """The pipeline hands a matched event over only for LEARNS_FROM_MATCHED: of any other type it teaches nothing."""
    assert learner.observe(open_event("/tmp/x"), matched=True) is None
    assert learner.probe.inodes == {} and learner.probe.pids == {} and learner.probe.invalidations == 0
    assert "open" not in Discarders.LEARNS_FROM_MATCHED
    link = make(ev.LinkEvent, pid=100, **COMMON, syscall="linkat", retval=0, file=info("/tmp/x", ino=0),
                destination=info("/tmp/y"), flags=0)
    learner.observe(link, matched=True)  # a new name for an unknown inode: everything invalidated
    assert learner.probe.invalidations == 1
    assert {"exec", "fork", "exit", "rename", "link"} == Discarders.LEARNS_FROM_MATCHED


@pytest.mark.parametrize("kw", [{"nlink": 2}, {"error": "path truncated"}, {"mode": stat.S_IFDIR | 0o755}])
def test_no_discarder_for_a_file_with_other_names_an_unresolved_path_or_a_directory(learner, kw):
    assert learner.observe(open_event("/tmp/x", **kw)) is None
    assert learner.probe.inodes == {}


def test_no_inode_discarder_is_learned_from_a_chrooted_process(learner):
    e = open_event("/tmp/x")
    e.in_chroot = True  # its /tmp/x is another path for everyone else
    assert learner.observe(e) is None
    assert learner.probe.inodes == {}


def test_a_hard_link_drops_the_discarder_of_its_inode(learner):
    learner.observe(open_event("/tmp/x"))
    link = make(ev.LinkEvent, pid=100, **COMMON, syscall="link", retval=0, file=info("/tmp/x"),
                        destination=info("/etc/cron.d/x"))
    learner.observe(link)
    assert learner.probe.inodes == {}


def test_an_exchange_of_two_names_or_a_link_of_an_unknown_inode_invalidates_everything(learner):
    learner.observe(open_event("/tmp/x"))
    exchange = make(ev.RenameEvent, pid=100, **COMMON, syscall="renameat2", retval=0, file=info("/tmp/x"),
                    destination=info("/tmp/y"), flags=2)  # RENAME_EXCHANGE
    learner.observe(exchange)
    assert learner.probe.invalidations == 1
    link = make(ev.LinkEvent, pid=100, **COMMON, syscall="link", retval=0, file=info("/tmp/z", ino=0),
                destination=info("/etc/cron.d/z", ino=0))
    learner.observe(link)
    assert learner.probe.invalidations == 2


def test_a_renamed_directory_invalidates_everything(learner):
    learner.observe(open_event("/tmp/d/x"))
    rename = make(ev.RenameEvent, pid=100, **COMMON, syscall="rename", retval=0,
                            file=info("/tmp/d", ino=3, mode=stat.S_IFDIR | 0o755), destination=info("/etc/cron.d"))
    learner.observe(rename)
    assert learner.probe.invalidations == 1 and learner.probe.inodes == {}


def test_a_rename_whose_file_kind_is_unknown_invalidates_everything_a_file_rename_does_not(learner):
    learner.observe(open_event("/tmp/d/x"))
    unknown = info("/tmp/d", ino=3)
    unknown.mode = None  # resolved at sys_exit, destination unresolved: no inode fields
    learner.observe(make(ev.RenameEvent, pid=100, **COMMON, syscall="rename", retval=0, file=unknown,
                         destination=info("/tmp/e", error="not cached")))
    assert learner.probe.invalidations == 1
    learner.observe(make(ev.RenameEvent, pid=100, **COMMON, syscall="rename", retval=0, file=info("/tmp/f"),
                         destination=info("/tmp/g")))
    assert learner.probe.invalidations == 1


def test_a_process_is_discarded_from_the_executable_its_events_told(learner):
    chmod = make(ev.ChmodEvent, pid=200, **COMMON, syscall="chmod", retval=0, file=info("/tmp/x"), mode=0o600)
    assert learner.observe(chmod) is None  # pid 200 unknown: nothing is guessed from /proc now
    learner.observe(exec_event(200, "/usr/bin/python3"))
    assert learner.observe(chmod) == "pid"
    assert learner.probe.pids == {200: ["chmod"]}
    learner.observe(fork_event(200, 201))
    assert learner.executable(201) == "/usr/bin/python3"
    learner.observe(exec_event(201, "/opt/tool"))
    chmod.pid = 201
    assert learner.observe(chmod) is None  # this executable could match


def test_a_reload_invalidates(learner, tmp_path):
    learner.observe(open_event("/tmp/x"))
    learner.reload(write_policy(tmp_path, 'open.file.path == "/tmp/x"'))
    assert learner.probe.invalidations == 1
    assert learner.observe(open_event("/tmp/x")) is None


def test_no_process_is_discarded_for_the_types_that_invalidate_inode_discarders(tmp_path):
    policies = write_policy(tmp_path, 'unlink.file.path == "/x" && process.file.path == "/opt/tool"',
                            'rename.file.path == "/x" && process.file.path == "/opt/tool"')
    learner = Discarders(FakeProbe(), policies)
    learner.observe(exec_event(300, "/usr/bin/rm"))
    unlink = make(ev.UnlinkEvent, pid=300, **COMMON, syscall="unlink", retval=0, file=info("/y"))
    assert learner.observe(unlink) is None
    assert learner.probe.pids == {}


def test_ignored_processes_are_handed_to_the_probe_which_keeps_them_across_invalidations(tmp_path):
    # (that the kernel keeps them, its own invalidations included, is tests/probe/test_filtering.py's)
    learner = Discarders(FakeProbe(), write_policy(tmp_path, 'bpf.cmd == BPF_PROG_LOAD'), ignored_pids=[4242])
    assert learner.probe.ignored == {4242} and learner.probe.pids == {}


def test_every_discarder_added_dropped_or_invalidated_is_counted(learner, tmp_path):
    assert learner.counters() == {"inodes": 0, "pids": 0, "inode_removals": 0, "inodes_without_identity": 0,
                                  "invalidations": 0}
    learner.observe(open_event("/tmp/x"))
    learner.observe(open_event("/tmp/y", ino=11))
    learner.observe(open_event("/etc/cron.d/job", ino=12))  # could match: nothing learned
    learner.observe(exec_event(200, "/usr/bin/python3"))
    learner.observe(make(ev.ChmodEvent, pid=200, **COMMON, syscall="chmod", retval=0, file=info("/tmp/x"), mode=0))
    learner.observe(make(ev.LinkEvent, pid=100, **COMMON, syscall="link", retval=0, file=info("/tmp/x"),
                         destination=info("/tmp/h")))
    learner.observe(make(ev.RenameEvent, pid=100, **COMMON, syscall="rename", retval=0,
                         file=info("/tmp/d", ino=3, mode=stat.S_IFDIR | 0o755), destination=info("/tmp/e")))
    learner.reload(write_policy(tmp_path, 'open.file.path == "/tmp/x"'))
    assert learner.counters() == {"inodes": 2, "pids": 1, "inode_removals": 1, "inodes_without_identity": 0,
                                  "invalidations": 2}
    assert learner.probe.invalidations == 2


def test_a_pid_discarder_is_added_once_until_an_exec_an_invalidation_or_a_new_generation(learner):
    chmod = make(ev.ChmodEvent, pid=200, **COMMON, syscall="chmod", retval=0, file=info("/tmp/x"), mode=0o600)
    learner.observe(exec_event(200, "/usr/bin/python3"))
    assert learner.observe(chmod) == "pid"
    assert learner.observe(chmod) is None  # queued before the kernel applied it: no second bpf() call
    learner.invalidate()
    assert learner.observe(chmod) == "pid"
    learner.observe(exec_event(200, "/usr/bin/python3"))  # the kernel dropped it at the exec
    assert learner.observe(chmod) == "pid"
    chmod.file.generation += 1  # a mount anywhere: the kernel's discarders of the old generation are void
    assert learner.observe(chmod) == "pid"
    assert learner.stats.pids == 4
