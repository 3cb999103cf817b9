"""Files named through file descriptors: the event names the file the kernel acted on (real calls)."""

from __future__ import annotations

import ctypes
import os
import shutil
import struct

import probe_sysc as sysc
import pytest

from opencws.probe import events as ev

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]

AT_SYMLINK_FOLLOW, AT_EMPTY_PATH = 0x400, 0x1000


def test_futimesat_without_a_path_names_the_fd_file(watch, tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    fd = os.open(f, os.O_RDONLY)
    try:
        assert sysc._call(261, fd, None, struct.pack("<qqqq", 100, 0, 200, 0)) == 0
    finally:
        os.close(fd)
    e = watch.one(ev.UtimesEvent, lambda e: e.syscall == "futimesat")
    assert (e.file.path, e.file.inode, e.modification_time_ns) == (str(f), f.stat().st_ino, 200 * 10**9)


def test_a_link_of_an_o_tmpfile_names_the_real_source(watch, tmp_path):
    fd = os.open(tmp_path, os.O_TMPFILE | os.O_WRONLY, 0o600)
    fd2 = os.open(tmp_path, os.O_TMPFILE | os.O_WRONLY, 0o600)
    try:
        assert sysc._call(265, sysc.AT_FDCWD, f"/proc/self/fd/{fd}".encode(), sysc.AT_FDCWD,
                          os.fsencode(tmp_path / "named"), AT_SYMLINK_FOLLOW) == 0
        assert sysc._call(265, fd2, b"", sysc.AT_FDCWD, os.fsencode(tmp_path / "named2"), AT_EMPTY_PATH) == 0
    finally:
        os.close(fd)
        os.close(fd2)
    links = watch.mine(ev.LinkEvent, lambda e: e.destination.path.startswith(str(tmp_path)))
    assert [e.destination.path for e in links] == [str(tmp_path / "named"), str(tmp_path / "named2")]
    for e, name in zip(links, ("named", "named2"), strict=True):
        ino = (tmp_path / name).stat().st_ino
        # the anonymous file itself (the kernel names it #<inode> in its directory), not /proc/self/fd/N
        assert e.file.path_resolution_error is None and e.file.inode == ino
        assert e.file.path == f"{tmp_path}/#{ino}"


def _exec_in_child(run) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            run()
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return pid


def test_a_script_run_through_fexecve_or_execveat_is_the_script(watch, tmp_path):
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    fd = os.open(script, os.O_RDONLY)
    dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    os.set_inheritable(fd, True)  # (the interpreter opens the script again through /dev/fd/N)
    os.set_inheritable(dfd, True)
    try:
        by_fd = _exec_in_child(lambda: os.execve(fd, ["s.sh"], {}))  # fexecve: /dev/fd/N
        libc = ctypes.CDLL(None, use_errno=True)
        argv = (ctypes.c_char_p * 2)(b"s.sh", None)
        envp = (ctypes.c_char_p * 1)(None)
        by_dirfd = _exec_in_child(lambda: libc.syscall(322, dfd, b"s.sh", argv, envp, 0))  # execveat
    finally:
        os.close(fd)
        os.close(dfd)
    for pid in (by_fd, by_dirfd):
        e = watch.one(ev.ExecEvent, lambda e, pid=pid: e.pid == pid)
        assert (e.file.path, e.file.inode) == (str(script), script.stat().st_ino)
        assert e.interpreter is not None and e.interpreter.path in ("/bin/sh", "/usr/bin/sh", "/usr/bin/dash")


def test_an_exec_from_a_memfd_carries_the_memfd_name(watch):
    mfd = os.memfd_create("payload", 0)
    with open(shutil.which("true"), "rb") as src:
        os.write(mfd, src.read())
    try:
        pid = _exec_in_child(lambda: os.execve(mfd, ["payload"], {}))
    finally:
        os.close(mfd)
    e = watch.one(ev.ExecEvent, lambda e: e.pid == pid)
    assert e.file.path == "memfd:payload" and e.file.path_resolution_error is None
