"""User and group names from a process's own root: parsed, cached per root, refreshed when the files change."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from containers import run_container
from opencws.resolvers.mounts import MS_BIND
from opencws.resolvers.users import MAX_FILE_BYTES, UserGroupResolver, parse_id_names
from skips import skip_or_fail

_libc = ctypes.CDLL(None, use_errno=True)

PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App,,,:/home/app:/bin/sh
"""
GROUP = """root:x:0:
daemon:x:1:
app:x:1000:alice,bob
"""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_root(path: Path, passwd: str | None = PASSWD, group: str | None = GROUP) -> str:
    (path / "etc").mkdir(parents=True, exist_ok=True)
    if passwd is not None:
        (path / "etc" / "passwd").write_text(passwd)
    if group is not None:
        (path / "etc" / "group").write_text(group)
    return str(path)


def test_names_come_from_the_roots_own_files(tmp_path):
    root = make_root(tmp_path)
    r = UserGroupResolver()
    assert (r.user(0, root), r.user(1000, root), r.user(4242, root)) == ("root", "app", None)
    assert (r.group(0, root), r.group(1000, root), r.group(4242, root)) == ("root", "app", None)


def test_the_host_root_by_default(tmp_path):
    r = UserGroupResolver()
    assert r.user(0) == "root"
    assert r.group(0) == "root"


def test_malformed_comment_and_nis_lines_are_skipped():
    data = b"\n".join(
        [
            b"# a comment:x:7:7:::",
            b"+nisuser:x:100:100:::",
            b"-nisuser2:x:101:101:::",
            b"+",
            b"short:x:102",
            b"toolong:x:103:103:::/bin/sh:extra",
            b":x:104:104:::",
            b"neg:x:-1:0:::",
            b"hex:x:0x10:0:::",
            b"unicode:x:\xc2\xb2:0:::",  # a superscript two is a digit to str.isdigit, not a uid
            b"",
            b"good:x:105:105:::",
            b"dup:x:105:105:::",  # the first line for an id wins
            b"cut:x:106:106:::",
        ]
    )
    assert parse_id_names(data, 7) == {105: "good", 106: "cut"}
    assert parse_id_names(b"wheel:x:10:root\nbad:x:11\nstaff:x:50:\n", 4) == {10: "wheel", 50: "staff"}


def test_a_file_too_large_keeps_its_complete_lines_only():
    line = b"u%06d:x:%d:0:::\n"
    data = b"".join(line % (i, i) for i in range(MAX_FILE_BYTES // len(line % (0, 0)) + 10))[:MAX_FILE_BYTES]
    names = parse_id_names(data, 7)
    last = max(names)
    assert names[last] == f"u{last:06d}" and last + 1 not in names


def test_a_change_is_picked_up_after_the_interval_only(tmp_path):
    root = make_root(tmp_path)
    clock = Clock()
    r = UserGroupResolver(check_interval=1.0, clock=clock)
    assert r.user(1000, root) == "app"
    (tmp_path / "etc" / "passwd").write_text(PASSWD.replace("app:", "renamed:"))
    (tmp_path / "etc" / "group").write_text(GROUP + "newgroup:x:2000:\n")
    clock.now += 0.5
    assert r.user(1000, root) == "app"  # not looked at again yet
    assert r.stats()["reloads"] == 1
    clock.now += 0.5
    assert r.user(1000, root) == "renamed"
    assert r.group(2000, root) == "newgroup"
    assert r.stats()["reloads"] == 2


def test_unchanged_files_are_not_read_again(tmp_path):
    root = make_root(tmp_path)
    clock = Clock()
    r = UserGroupResolver(check_interval=1.0, clock=clock)
    for _ in range(5):
        assert r.user(0, root) == "root"
        clock.now += 2
    assert r.stats()["reloads"] == 1


def test_a_file_replaced_by_rename_is_seen(tmp_path):
    """What useradd and vipw do: write a new file, rename it over the old one (a new inode)."""
    root = make_root(tmp_path)
    clock = Clock()
    r = UserGroupResolver(clock=clock)
    assert r.user(1000, root) == "app"
    new = tmp_path / "etc" / "passwd+"
    new.write_text(PASSWD.replace("app:", "ppa:"))  # the same size
    os.replace(new, tmp_path / "etc" / "passwd")
    clock.now += 1
    assert r.user(1000, root) == "ppa"


def test_missing_files_give_no_names_until_they_appear(tmp_path):
    root = make_root(tmp_path, passwd=None, group=None)
    clock = Clock()
    r = UserGroupResolver(clock=clock)
    assert r.user(0, root) is None and r.group(0, root) is None
    make_root(tmp_path)
    assert r.user(0, root) is None  # cached as missing until the next check
    clock.now += 1
    assert r.user(0, root) == "root" and r.group(0, root) == "root"


def test_a_missing_root_gives_no_names(tmp_path):
    r = UserGroupResolver()
    assert r.user(0, str(tmp_path / "nope")) is None
    assert r.stats()["unreachable_roots"] == 1


def test_a_fifo_is_refused_not_waited_on(tmp_path):
    root = make_root(tmp_path, passwd=None)
    os.mkfifo(tmp_path / "etc" / "passwd")
    r = UserGroupResolver()
    assert r.user(0, root) is None  # returns: no writer is ever needed
    assert r.group(0, root) == "root"


def test_an_absolute_symlink_resolves_inside_the_root(tmp_path):
    """A container's `etc/passwd -> /etc/mypasswd` names its own file, never the agent's (host's) one."""
    root = make_root(tmp_path, passwd=None)
    (tmp_path / "etc" / "mypasswd").write_text("inside:x:0:0:::\n")
    os.symlink("/etc/mypasswd", tmp_path / "etc" / "passwd")
    assert UserGroupResolver().user(0, root) == "inside"
    os.remove(tmp_path / "etc" / "passwd")
    os.symlink("/etc/../../../../etc/passwd", tmp_path / "etc" / "passwd")  # `..` stops at the root too
    assert UserGroupResolver().user(0, root) is None


def test_roots_are_keyed_by_identity_and_bounded(tmp_path):
    roots = [make_root(tmp_path / f"r{i}", passwd=f"user{i}:x:0:0:::\n") for i in range(4)]
    os.symlink(roots[0], tmp_path / "alias")
    r = UserGroupResolver(max_roots=3)
    assert r.user(0, roots[0]) == "user0"
    assert r.user(0, str(tmp_path / "alias")) == "user0"
    assert r.stats()["roots_cached"] == 1 and r.stats()["reloads"] == 1
    for i, root in enumerate(roots):
        assert r.user(0, root) == f"user{i}"
    stats = r.stats()
    assert stats["roots_cached"] == 3 and stats["evictions"] == 1
    assert stats["lookups"] == 6


def test_a_container_user_is_named_from_the_containers_passwd(tmp_path):
    passwd = "root:x:0:0:root:/root:/bin/sh\nctruser:x:48151:62342::/:/bin/sh\n"
    group = "root:x:0:\nctrgroup:x:62342:\n"
    with run_container(tmp_path, command=["sleep", "30"], passwd=passwd, group=group) as c:
        r = UserGroupResolver()
        root = f"/proc/{c.pid}/root"
        assert r.user(48151, root) == "ctruser"
        assert r.group(62342, root) == "ctrgroup"
        assert r.user(48151) is None  # not a host user
        # another process of the same container shares the entry
        other = c.spawn(["sleep", "30"])
        assert other != c.pid
        assert r.user(48151, f"/proc/{other}/root") == "ctruser"
        assert r.stats()["roots_cached"] == 2 and r.stats()["reloads"] == 2  # the container's and the host's


def test_a_passwd_file_bind_mounted_into_the_root_is_read(tmp_path):
    """A container started with the host's users (`-v /etc/passwd:/etc/passwd:ro`): the file is another
    mount than the root's, and reading it in the root must cross that mount."""
    root = make_root(tmp_path / "root", passwd="nobody:x:0:0::/:/bin/sh\n")
    shared = tmp_path / "host-passwd"
    shared.write_text(PASSWD)
    target = os.fsencode(tmp_path / "root" / "etc" / "passwd")
    if _libc.mount(os.fsencode(shared), target, None, MS_BIND, None) != 0:
        skip_or_fail(f"bind mounts need root (mount: {os.strerror(ctypes.get_errno())})", "OPENCWS_REQUIRE_KERNEL")
    try:
        assert UserGroupResolver().user(1000, root) == "app"
    finally:
        _libc.umount2(target, 2)
