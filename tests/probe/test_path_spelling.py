"""Paths spelled as the kernel allows: `/./` repeated, runs of slashes, many components; paths too deep or too long
for a record keep their resolved tail and say so (real calls)."""

from __future__ import annotations

import os

import pytest

from opencws.probe import events as ev

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("require_kernel")]


def test_dots_and_runs_of_slashes_resolve_as_the_kernel_resolves_them(watch, tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    spelled = str(tmp_path) + "/." * 300 + "/" * 200 + "./" * 100 + "f"
    assert len(spelled) < 4096
    os.chmod(spelled, 0o604)
    e = watch.one(ev.ChmodEvent, lambda e: e.file.path == str(f))
    assert e.file.path_resolution_error is None and e.file.inode == f.stat().st_ino


def test_a_path_of_many_components_resolves(watch, tmp_path):
    deep = tmp_path.joinpath(*["d"] * 400)
    deep.mkdir(parents=True)
    f = deep / "f"
    f.write_text("x")
    os.chmod(f, 0o604)  # (a string of 400+ components)
    e = watch.one(ev.ChmodEvent, lambda e: e.file.path == str(f))
    assert e.file.path_resolution_error is None and e.file.inode == f.stat().st_ino


def test_a_path_longer_than_a_record_holds_keeps_its_resolved_tail_and_says_so(watch, tmp_path):
    # 400 levels of 15 bytes: about 6,000 bytes, made and reached through directory fds (no string that long)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(400):
            os.mkdir("level-directory", dir_fd=fd)
            nxt = os.open("level-directory", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        leaf = os.open("leaf", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=fd)
        os.close(leaf)
        os.chmod("leaf", 0o604, dir_fd=fd)
        ino = os.stat("leaf", dir_fd=fd).st_ino
    finally:
        os.close(fd)
    e = watch.one(ev.ChmodEvent, lambda e: e.file.path.endswith("/level-directory/leaf"))
    assert e.file.path_resolution_error == "path truncated"
    assert e.file.inode == ino  # (the file itself is known: only its path is cut)
    assert 4000 < len(e.file.path) <= 4095 and e.file.path.startswith("/level-directory/")
