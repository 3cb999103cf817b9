"""A bind mount's source directory (SECL's `mount.source.path`), read from real mounts' mountinfo."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

from opencws.probe.statx import mount_id
from opencws.resolvers.mounts import MS_BIND, bind_source
from skips import skip_or_fail

_libc = ctypes.CDLL(None, use_errno=True)


def _bind(source: Path, target: Path) -> None:
    if _libc.mount(os.fsencode(source), os.fsencode(target), None, MS_BIND, None) != 0:
        err = ctypes.get_errno()
        skip_or_fail(f"bind mounts need root (mount: {os.strerror(err)})", "OPENCWS_REQUIRE_KERNEL")


def _umount(target: Path) -> None:
    _libc.umount2(os.fsencode(target), 2)


@pytest.mark.parametrize("what", ["root", "subdirectory"])
def test_a_bind_mount_names_the_directory_it_shows(tmp_path: Path, what: str):
    source = Path("/") if what == "root" else tmp_path / "data"
    source.mkdir(exist_ok=True)
    target = tmp_path / "view"
    target.mkdir()
    _bind(source, target)
    try:
        new = mount_id(target)
        # the mounting process is gone: its parent (here, the test itself) sees the same namespace
        assert bind_source("/proc", [2**22 + 1, os.getpid()], new) == str(source)
    finally:
        _umount(target)
    assert bind_source("/proc", [os.getpid()], new) == ""  # unmounted since: nothing to say


def test_a_mount_no_process_sees_has_no_source():
    assert bind_source("/proc", [os.getpid()], 0) == ""
    assert bind_source("/proc", [os.getpid()], 2**31 - 1) == ""


def test_a_bind_of_a_directory_of_another_file_system_is_named_below_that_file_systems_mountpoint(tmp_path: Path):
    """mountinfo gives the bind's root within its file system (`/logs` on a tmpfs): the path is that root
    below where the tmpfs is mounted, not the root alone."""
    fs = tmp_path / "fs"
    fs.mkdir()
    if _libc.mount(b"tmpfs", os.fsencode(fs), b"tmpfs", 0, None) != 0:
        skip_or_fail(f"mounts need root (mount: {os.strerror(ctypes.get_errno())})", "OPENCWS_REQUIRE_KERNEL")
    try:
        (fs / "logs").mkdir()
        target = tmp_path / "view"
        target.mkdir()
        _bind(fs / "logs", target)
        try:
            assert bind_source("/proc", [os.getpid()], mount_id(target)) == str(fs / "logs")
        finally:
            _umount(target)
    finally:
        _umount(fs)
