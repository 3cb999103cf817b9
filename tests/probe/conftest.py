"""Fixtures for the probe's kernel tests: one probe shared by the session, reset after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from probe_watch import Watch


@pytest.fixture(scope="session")
def probe(require_kernel) -> Iterator:
    from opencws.probe.probe import Probe

    # the whole machine's activity flows through this probe: a large ring keeps a busy neighbour (a benchmark
    # running at the same time) from crowding out the tests' events
    with Probe(ring_buffer_bytes=64 << 20) as p:
        yield p


@pytest.fixture
def watch(probe, tmp_path: Path) -> Iterator[Watch]:
    """A watch on the shared probe, drained first; filters are reset afterwards."""
    probe.poll(0)
    w = Watch(probe, tmp_path)
    w.sync()
    yield w
    from opencws.probe.eventtypes import EventType

    probe.set_event_types(list(EventType))
    for t in EventType:
        probe.clear_approvers(t)
    probe.invalidate_discarders()


class AbiCalls:
    """The i386 test programs (abi_calls.c) built for this session: `run32` makes i386 calls from a 32-bit
    program, `run64` from a 64-bit one (a `+` before a number: a native x86_64 call)."""

    def __init__(self, prog32: Path, prog64: Path):
        self.prog32, self.prog64 = prog32, prog64

    @staticmethod
    def _argv(calls: tuple) -> list[str]:
        argv: list[str] = []
        for call in calls:
            if argv:
                argv.append("--")
            argv += [str(a) for a in call]
        return argv

    def _run(self, argv: list[str]) -> list[int]:
        import subprocess

        done = subprocess.run(argv, capture_output=True, check=True, timeout=30)
        return [int(line) for line in done.stdout.split()]

    def run32(self, *calls) -> list[int]:
        """Each call a sequence (nr, arg...); args: int, 's:TEXT', 'x:HEX'. Returns the return values."""
        return self._run([str(self.prog32), *self._argv(calls)])

    def run64(self, *calls, garbage: bool = False) -> list[int]:
        return self._run([str(self.prog64), *(["-g"] if garbage else []), *self._argv(calls)])


def _build(src_name: str, out: Path, *gcc_args: str) -> Path:
    """Compile a test program of this directory with gcc (a failure is a test failure under
    OPENCWS_REQUIRE_KERNEL=1, else a skip with gcc's message)."""
    import os
    import subprocess

    done = subprocess.run(["gcc", *gcc_args, "-o", str(out), str(Path(__file__).with_name(src_name))],
                          capture_output=True, text=True)
    if done.returncode != 0:
        reason = f"cannot build {src_name} ({' '.join(gcc_args)}): {done.stderr.strip()}"
        if os.environ.get("OPENCWS_REQUIRE_KERNEL") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return out


@pytest.fixture(scope="session")
def abi_calls(tmp_path_factory) -> AbiCalls:
    out = tmp_path_factory.mktemp("abi_calls")
    flags = ["-nostdlib", "-static", "-O1", "-fno-pie", "-no-pie", "-ffreestanding", "-fno-builtin",
             "-fno-stack-protector", "-fno-asynchronous-unwind-tables"]
    return AbiCalls(_build("abi_calls.c", out / "abi_calls32", "-m32", *flags),
                    _build("abi_calls.c", out / "abi_calls64", "-m64", "-mno-red-zone", *flags))


@pytest.fixture(scope="session")
def uring_calls(tmp_path_factory) -> Path:
    """The io_uring test program (uring_calls.c), built for this session."""
    return _build("uring_calls.c", tmp_path_factory.mktemp("uring_calls") / "uring_calls", "-O1", "-Wall")


@pytest.fixture(scope="session")
def path_race(tmp_path_factory) -> Path:
    """The path-rewriting test program (path_race.c), built for this session."""
    return _build("path_race.c", tmp_path_factory.mktemp("path_race") / "path_race", "-O1", "-Wall", "-pthread")


@pytest.fixture(scope="session")
def owner_race(tmp_path_factory) -> Path:
    """The program that lands one chown between another's start and its change (owner_race.c), built for this
    session."""
    return _build("owner_race.c", tmp_path_factory.mktemp("owner_race") / "owner_race", "-O1", "-Wall", "-pthread")


class Ext4:
    """A fresh ext4 file system on a loop device, mounted at `path`; `remount()` empties its dentry cache."""

    def __init__(self, image: Path, path: Path):
        self.image, self.path = image, path

    def mount(self) -> None:
        import subprocess

        subprocess.run(["mount", "-o", "loop", str(self.image), str(self.path)], check=True, capture_output=True)

    def umount(self) -> None:
        import subprocess

        subprocess.run(["umount", str(self.path)], check=True, capture_output=True)

    def remount(self) -> None:
        self.umount()
        self.mount()


@pytest.fixture
def ext4(tmp_path) -> Iterator[Ext4]:
    import subprocess

    image, path = tmp_path / "ext4.img", tmp_path / "ext4"
    path.mkdir()
    with open(image, "wb") as f:
        f.truncate(32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    fs = Ext4(image, path)
    fs.mount()
    try:
        yield fs
    finally:
        fs.umount()


@pytest.fixture
def tmpfs(tmp_path) -> Iterator[Path]:
    """A tmpfs mounted for the test (a file system that is not ext4)."""
    import subprocess

    path = tmp_path / "tmpfs"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)
