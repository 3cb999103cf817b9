"""Real OCI containers for tests, run by runc from a busybox-static root file system.

    from containers import run_container

    def test_something(tmp_path):
        with run_container(tmp_path, command=["sleep", "30"], passwd="app:x:1000:1000::/:/bin/sh\\n") as c:
            c.id       # the 64-hex container id (in its cgroup path: /system.slice/docker-<id>.scope)
            c.pid      # host pid of the container's init
            c.exec(["cat", "/etc/hostname"])   # one more process in the container, when the test chooses

Synchronising with a probe (kernel tests): start the container on a long sleep, attach the probe, then make
the activity happen with `c.exec([...])` (a process run by `runc exec` joins the container's namespaces and
cgroup: it is in the container). When the activity must come from the container's init itself, have it wait
for a signal the test gives through a bind mount:

    with run_container(tmp_path, bind={str(gate): "/gate"},
                       command=["sh", "-c", "while [ ! -e /gate/go ]; do usleep 10000; done; cat /etc/hostname"]) as c:
        ...attach the probe...
        (gate / "go").touch()

(or `read x < /gate/fifo` on a FIFO made with os.mkfifo: the test's open for writing releases it).

Needs root, runc and busybox-static (scripts/setup.sh installs them). Without them the test skips with the
reason, and fails under OPENCWS_REQUIRE_KERNEL=1 (as tests/conftest.py does for the kernel).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from skips import skip_or_fail

DEFAULT_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
DEFAULT_GROUP = "root:x:0:\nnogroup:x:65534:\n"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def runc_missing() -> str | None:
    """Why containers cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "not root"
    for tool in ("runc", "busybox"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/setup.sh installs runc and busybox-static)"
    return None


def require_runc() -> None:
    """Skip the calling test when containers cannot run here; fail instead under OPENCWS_REQUIRE_KERNEL=1."""
    reason = runc_missing()
    if reason is not None:
        skip_or_fail(f"container test cannot run: {reason}", "OPENCWS_REQUIRE_KERNEL")


@dataclass
class Container:
    id: str
    """The 64-hex container id, as a runtime would name it."""
    name: str
    """runc's name for it (`runc state <name>`)."""
    pid: int
    """Host pid of the container's init."""
    bundle: Path
    cgroup_path: str
    _spawned: list[subprocess.Popen] = field(default_factory=list, repr=False)

    @property
    def rootfs(self) -> Path:
        return self.bundle / "rootfs"

    def output(self) -> str:
        """What the container's init wrote to stdout and stderr so far."""
        return (self.bundle / "output.txt").read_text(errors="replace")

    def exec(self, args: list[str], *, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run one more process in the container (`runc exec`) and wait for it; its output is captured."""
        return subprocess.run(
            ["runc", "exec", self.name, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def spawn(self, args: list[str], *, timeout: float = 30, caps: tuple[str, ...] = ()) -> int:
        """Start one more process in the container without waiting for it; its host pid. Its output is
        discarded; it ends with the container.

        A `runc exec` stays in the background as its parent (runc makes itself a child subreaper), so the
        process is reaped when it ends. With `runc exec --detach` it would be reparented to the host's pid 1,
        and a pid 1 that reaps late keeps the container's init from dying (it waits for its namespace to
        empty) and `runc delete` waiting. `caps`: capabilities added to the process (`CAP_SYS_ADMIN`)."""
        pid_file = self.bundle / f"spawn-{os.urandom(4).hex()}.pid"
        errors = open(self.bundle / "spawn-errors.txt", "ab")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            ["runc", "exec", "--pid-file", str(pid_file), *(f"--cap={c}" for c in caps), self.name, *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
        )
        errors.close()
        self._spawned.append(proc)
        deadline = time.monotonic() + timeout
        while True:
            try:
                text = pid_file.read_text()
                if text.strip():
                    return int(text)
            except FileNotFoundError:
                pass
            if proc.poll() is not None and not pid_file.exists():
                raise RuntimeError(f"runc exec failed: {(self.bundle / 'spawn-errors.txt').read_text()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"runc exec {args} did not start in {timeout}s")
            time.sleep(0.005)

    def state(self) -> dict:
        out = subprocess.run(["runc", "state", self.name], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)


_applets: list[str] | None = None


def _busybox_applets(busybox: str) -> list[str]:
    global _applets
    if _applets is None:
        out = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
        _applets = [a for a in out.stdout.split() if a and "/" not in a and a != "busybox"]
    return _applets


def build_rootfs(rootfs: Path, *, passwd: str, group: str) -> None:
    """A root file system with bin/busybox, a relative link per applet (sh, cat, sleep...) and etc files."""
    busybox = shutil.which("busybox")
    assert busybox is not None
    for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "root"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    shutil.copy(busybox, rootfs / "bin" / "busybox")
    for applet in _busybox_applets(busybox):
        link = rootfs / "bin" / applet
        if not link.exists():
            os.symlink("busybox", link)
    (rootfs / "etc" / "passwd").write_text(passwd)
    (rootfs / "etc" / "group").write_text(group)
    (rootfs / "etc" / "hostname").write_text("opencws-test\n")


def _config(bundle: Path, *, command: list[str], cgroups_path: str, bind: dict[str, str],
            user: tuple[int, int] | None, annotations: dict[str, str] | None = None) -> None:
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True, capture_output=True)
    path = bundle / "config.json"
    config = json.loads(path.read_text())
    process = config["process"]
    process.update(terminal=False, args=command)
    process.pop("rlimits", None)
    if user is not None:
        process["user"] = {"uid": user[0], "gid": user[1]}
    config["root"]["readonly"] = False
    config["hostname"] = "opencws-test"
    config["linux"]["cgroupsPath"] = cgroups_path
    if annotations:
        config["annotations"] = dict(annotations)
    for host, inside in bind.items():
        config["mounts"].append(
            {"destination": inside, "type": "bind", "source": str(host), "options": ["rbind", "rw"]}
        )
    path.write_text(json.dumps(config, indent=1))


def _missing_cgroup_parents(cgroups_path: str) -> list[Path]:
    """The cgroup directories runc will create as parents of the container's (removed again on exit)."""
    parents = Path(cgroups_path.lstrip("/")).parents
    missing = []
    for hierarchy in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else ():
        for parent in parents:
            if parent != Path(".") and not (hierarchy / parent).exists():
                missing.append(hierarchy / parent)
    return sorted(missing, key=lambda p: len(p.parts), reverse=True)  # innermost first


@contextmanager
def run_container(
    tmp_path: Path,
    *,
    command: list[str],
    passwd: str | None = None,
    group: str | None = None,
    cgroups_path: str | None = None,
    name: str | None = None,
    bind: dict[str, str] | None = None,
    user: tuple[int, int] | None = None,
    container_id: str | None = None,
    annotations: dict[str, str] | None = None,
) -> Iterator[Container]:
    """Run `command` (resolved in the container's PATH, e.g. `["sh", "-c", "..."]`) as the init of a fresh
    container, detached; yield it while it runs; kill and delete it on exit.

    `cgroups_path` defaults to docker's systemd layout, `/system.slice/docker-<id>.scope`, with a random id
    (or `container_id`); `bind` maps host directories to paths inside; `user` is the (uid, gid) the command
    runs as (root by default); `annotations` go to the bundle's config.json (as a Kubernetes runtime writes
    them). The init's stdout and stderr are in `bundle/output.txt` (`Container.output()`).
    """
    require_runc()
    cid = container_id or os.urandom(32).hex()
    cgroups_path = cgroups_path or f"/system.slice/docker-{cid}.scope"
    name = name or f"ocws-{cid[:12]}-{os.getpid()}"
    bundle = tmp_path / f"bundle-{cid[:12]}"
    build_rootfs(bundle / "rootfs", passwd=DEFAULT_PASSWD if passwd is None else passwd,
                 group=DEFAULT_GROUP if group is None else group)
    _config(bundle, command=command, cgroups_path=cgroups_path, bind=bind or {}, user=user,
            annotations=annotations)
    created = _missing_cgroup_parents(cgroups_path)
    container = None
    try:
        with open(bundle / "output.txt", "wb") as out:
            started = subprocess.run(
                ["runc", "run", "--detach", "--bundle", str(bundle), name],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=60,
            )
        if started.returncode != 0:
            raise RuntimeError(f"runc run failed ({started.returncode}): "
                               f"{(bundle / 'output.txt').read_text(errors='replace')}")
        container = Container(id=cid, name=name, pid=0, bundle=bundle, cgroup_path=cgroups_path)
        container.pid = int(container.state()["pid"])
        yield container
    finally:
        subprocess.run(["runc", "delete", "--force", name], capture_output=True, timeout=60)
        for proc in container._spawned if container is not None else ():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for d in created:  # best effort: only the parents runc made for us, and only once empty
            with suppress(OSError):
                d.rmdir()
