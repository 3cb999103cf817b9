"""Container ids from cgroup paths of every runtime layout, and from a real container run by runc."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from containers import run_container
from opencws.resolvers.containers import (
    ContainerResolver,
    container_id_from_cgroup,
    container_id_from_proc_cgroup,
)
from skips import skip_or_fail

ID = "c40dff48f1d53c3f07a50aa12bb9ae0e58c0927dc6b1d77e3f166784722642ad"
OUTER = "47c1f1930c1831f2359c6d276912c583be1cda5924233cf273022b91763a20f7"
POD = "48d25824_cbe2_4fdc_9928_5bb49e05473d"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # docker
        (f"/docker/{ID}", ID),
        (f"/system.slice/docker-{ID}.scope", ID),
        # containerd / kubernetes, cgroupfs (v1) and systemd drivers
        (f"/kubepods/burstable/pod{POD}/{ID}", ID),
        (f"/kubepods/besteffort/pod{POD}/{ID}", ID),
        (
            f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD}.slice/cri-containerd-{ID}.scope",
            ID,
        ),
        # cri-o
        (f"/kubepods.slice/kubepods-pod{POD}.slice/crio-{ID}.scope", ID),
        (f"/kubepods/pod{POD}/crio-{ID}", ID),
        (f"/kubepods.slice/kubepods-pod{POD}.slice/crio-{ID}.scope/container", ID),  # crun's sub-cgroup
        # podman
        (f"/machine.slice/libpod-{ID}.scope", ID),
        (f"/libpod_parent/libpod-{ID}", ID),
        (f"libpod-{ID}.scope", ID),
        # runc with a bare cgroupsPath
        (f"/{ID}", ID),
        # nested: the innermost container wins; a sub-cgroup of a container is that container
        (f"/docker/{OUTER}/docker/{ID}", ID),
        (f"/system.slice/docker-{OUTER}.scope/docker/{ID}", ID),
        (f"/system.slice/docker-{ID}.scope/init.scope", ID),
        # conmon is the runtime's monitor on the host, not the container
        (f"/kubepods.slice/kubepods-pod{POD}.slice/crio-conmon-{ID}.scope", None),
        (f"/machine.slice/libpod-conmon-{ID}.scope", None),
        # not containers
        ("/user.slice/user-0.slice/session-1.scope", None),
        ("/init.scope", None),
        ("/", None),
        ("", None),
        ("/system.slice/docker.service", None),
        (f"/kubepods/burstable/pod{POD}", None),
        (f"/system.slice/foo{ID}.scope", None),  # an id inside another word is not a runtime's name
        (f"/docker/{ID}0", None),  # 65 hex digits
        (f"/docker/{ID[:63]}", None),
        ("/user.slice/user-1000.slice/user@1000.service/app.slice/vte-spawn-f9176c6a-2a34-4ce2-86af-60d16888ed8e.scope", None),
    ],
)
def test_the_container_id_of_a_cgroup_path(path, expected):
    assert container_id_from_cgroup(path) == expected


V1_DOCKER = f"""12:pids:/docker/{ID}
11:memory:/docker/{ID}
3:cpu,cpuacct:/docker/{ID}
1:name=systemd:/docker/{ID}
"""
V2_DOCKER = f"0::/system.slice/docker-{ID}.scope\n"
HYBRID_RUNC = "".join(
    f"{n}:{c}:/system.slice/docker-{ID}.scope\n" for n, c in [(9, "name=systemd"), (4, "memory"), (1, "cpu")]
) + f"0::/system.slice/docker-{ID}.scope\n"
HYBRID_V1_ONLY_RUNTIME = f"""4:memory:/docker/{ID}
1:name=systemd:/docker/{ID}
0::/system.slice/containerd.service
"""
HOST = """9:name=systemd:/
4:memory:/process_api/88421f8516a5be10af6acaff70cdb4df
0::/
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (V1_DOCKER, ID),
        (V2_DOCKER, ID),
        (HYBRID_RUNC, ID),
        (HYBRID_V1_ONLY_RUNTIME, ID),
        (HOST, None),
        ("0::/user.slice/user-0.slice/session-1.scope\n", None),
        ("", None),
        (f"garbage\n\n0::/docker/{ID}\n", ID),  # a malformed line is skipped, not fatal
        (f"1:cpu:/docker/{OUTER}\n0::/system.slice/docker-{ID}.scope\n", ID),  # v2, what events carry, first
    ],
)
def test_the_container_id_of_a_proc_cgroup_file(text, expected):
    assert container_id_from_proc_cgroup(text) == expected


def test_event_cgroup_names_give_the_id_without_reading_proc():
    r = ContainerResolver(proc="/nonexistent")
    assert r.from_cgroup_name(f"docker-{ID}.scope") == ID
    assert r.from_cgroup_name(f"cri-containerd-{ID}.scope") == ID
    assert r.from_cgroup_name(ID) == ID
    assert r.from_cgroup_name("session-1.scope") is None
    assert r.from_cgroup_name(f"crio-conmon-{ID}.scope") is None
    assert r.for_event(123, 42, f"crio-{ID}.scope") == ID
    assert r.stats()["proc_reads"] == 0


def test_resolve_reads_proc_cgroup_and_caches_the_parse(tmp_path):
    for pid, text in [(10, HYBRID_RUNC), (11, HYBRID_RUNC), (12, HOST)]:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cgroup").write_text(text)
    r = ContainerResolver(proc=str(tmp_path))
    assert r.resolve(10) == ID
    assert r.resolve(11) == ID
    assert r.resolve(12) is None
    assert r.resolve(13) is None  # gone
    stats = r.stats()
    assert (stats["proc_reads"], stats["cache_hits"], stats["cgroups_cached"]) == (3, 1, 2)
    assert stats["proc_read_failures"] == 1


def test_a_sub_cgroup_of_a_container_falls_back_to_proc(tmp_path):
    (tmp_path / "20").mkdir()
    (tmp_path / "20" / "cgroup").write_text(f"0::/kubepods.slice/crio-{ID}.scope/container\n")
    r = ContainerResolver(proc=str(tmp_path))
    assert r.for_event(20, 999, "container") == ID
    assert r.for_event(21, 999, "container") is None  # no such pid, and cgroup id 999 was never learned


def test_a_runc_container_is_found_by_pid_and_by_event_cgroup_name(tmp_path):
    with run_container(tmp_path, command=["sleep", "30"]) as c:
        text = Path(f"/proc/{c.pid}/cgroup").read_text()
        assert f"docker-{c.id}.scope" in text
        r = ContainerResolver()
        assert r.resolve(c.pid) == c.id
        assert r.from_cgroup_name(os.path.basename(c.cgroup_path)) == c.id
        # the cgroup id an event would carry (the v2 directory's inode) was learned with the id
        v2 = Path("/sys/fs/cgroup/unified") if Path("/sys/fs/cgroup/unified/cgroup.procs").exists() else Path(
            "/sys/fs/cgroup"
        )
        cgroup_id = (v2 / c.cgroup_path.lstrip("/")).stat().st_ino
        assert r.for_event(0, cgroup_id, "not-a-container-name") == c.id
    assert r.resolve(os.getpid()) is None


def test_a_runc_container_with_a_bare_id_as_cgroup_path(tmp_path):
    cid = os.urandom(32).hex()
    with run_container(tmp_path, command=["sleep", "30"], cgroups_path=f"/{cid}", container_id=cid) as c:
        assert ContainerResolver().resolve(c.pid) == cid


def _v2_root() -> Path:
    return Path("/sys/fs/cgroup/unified") if Path("/sys/fs/cgroup/unified/cgroup.procs").exists() else Path(
        "/sys/fs/cgroup"
    )


def test_a_hybrid_hosts_v1_only_container_is_not_learned_for_the_v2_cgroup_it_shares(tmp_path):
    """On a hybrid host a v1-only container's processes sit in a v2 cgroup that is not the container's (here
    the root one, which every process of the host may share): that cgroup id must not come to mean the
    container, or every later event of its other processes would claim the container."""
    (tmp_path / "30").mkdir()
    (tmp_path / "30" / "cgroup").write_text(f"4:memory:/docker/{ID}\n1:cpu:/docker/{ID}\n0::/\n")
    r = ContainerResolver(proc=str(tmp_path))
    assert r.resolve(30) == ID  # from its v1 lines
    root_cgroup_id = _v2_root().stat().st_ino
    assert r.for_event(31, root_cgroup_id, "") is None  # another process of that v2 cgroup, already gone
    assert r.stats()["cgroup_ids_cached"] == 0


def test_the_cgroup_id_cache_keeps_max_entries_and_drops_the_oldest(tmp_path):
    """Three containers' real v2 cgroups (made for the test) learned through /proc files naming them: with
    room for two, the first is forgotten and the two others are known by cgroup id alone."""
    if os.geteuid() != 0:
        skip_or_fail("creating cgroups needs root", "OPENCWS_REQUIRE_KERNEL")
    parent = _v2_root() / f"opencws-test-{os.getpid()}"
    ids = [os.urandom(32).hex() for _ in range(3)]
    parent.mkdir()
    try:
        for pid, cid in enumerate(ids, start=40):
            (parent / f"docker-{cid}.scope").mkdir()
            (tmp_path / str(pid)).mkdir()
            (tmp_path / str(pid) / "cgroup").write_text(f"0::/{parent.name}/docker-{cid}.scope\n")
        r = ContainerResolver(proc=str(tmp_path), max_entries=2)
        assert [r.resolve(pid) for pid in (40, 41, 42)] == ids
        assert r.stats()["cgroup_ids_cached"] == 2
        cgroup_ids = [(parent / f"docker-{cid}.scope").stat().st_ino for cid in ids]
        # no /proc file for pid 50 and a name that is no container's: the cgroup id alone answers
        assert [r.for_event(50, cgroup_id, "x") for cgroup_id in cgroup_ids] == [None, ids[1], ids[2]]
    finally:
        for child in parent.iterdir():
            if child.is_dir():
                child.rmdir()
        parent.rmdir()
