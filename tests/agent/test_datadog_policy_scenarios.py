"""Datadog's current default policy (third-party test data, shared/compat/) run by the real agent: its rules
that keep state in variables behave as in Datadog's agent."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from agent_harness import started_agent

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def harness(require_kernel, compat_dir: Path):
    from opencws.agent.config import AgentConfig, RateLimit

    policy = compat_dir / "datadog-default-1.69.3.policy"
    if not policy.exists():
        pytest.skip(f"{policy} is absent")
    config = AgentConfig(policies=[policy])
    config.rate_limit.default = RateLimit(1_000_000.0, 1_000_000)
    with started_agent(config) as h:
        yield h


def test_a_base64_decode_alerts_once_per_command_line_in_a_cgroup(harness, tmp_path):
    """`base64_decode_v2` remembers, per cgroup and for an hour, the command lines and parents it reported (set
    actions appending to cgroup variables): the same decode again is quiet, another one is reported."""
    payload = tmp_path / "p.b64"
    payload.write_text("aGVsbG8K\n")
    harness.clear()
    for args in (["-d", str(payload)], ["-d", str(payload)], ["-di", str(payload)]):
        subprocess.run(["base64", *args], check=True, capture_output=True)
    lines = harness.events("base64_decode_v2")
    assert [line["event"]["process"]["args"] for line in lines] == [["-d", str(payload)], ["-di", str(payload)]]
    assert lines[0]["policy"] == "datadog-default-1.69.3.policy"


def test_binding_a_containers_root_file_system_is_reported_with_its_source(harness, tmp_path):
    """`mount_host_fs` (mount.source.path == "/", not an overlay, in a container): a process given
    CAP_SYS_ADMIN binds the container's root (a host directory, not an overlay) elsewhere; the agent finds the
    bind's source in the container's mount namespace while the process's shell lives."""
    from containers import run_container

    with run_container(tmp_path, command=["sleep", "60"]) as c:
        harness.clear()
        c.spawn(["sh", "-c", "mkdir -p /mnt/view && mount -o bind / /mnt/view && sleep 30"], caps=("CAP_SYS_ADMIN",))
        lines = []
        for _ in range(50):
            lines = harness.events("mount_host_fs")
            if lines:
                break
        assert lines, "no mount_host_fs alert"
        event = lines[0]["event"]
        assert event["container"]["id"] == c.id and event["file"]["path"] == "/mnt/view"
        assert "source_path" not in event["file"]  # not in the schema


def test_a_cron_file_given_to_another_owner_is_reported_and_a_chown_to_the_same_owner_is_not(harness):
    """`cron_at_job_creation_chown` compares the owner asked for with the file's owner before the call
    (`chown.file.destination.uid != chown.file.uid || ...gid`): chown(1) giving a cron file away fires once;
    the same chown again changes nothing and is quiet."""
    import os

    path = f"/etc/cron.d/opencws-dd-test-{os.getpid()}"
    Path(path).write_text("# an OpenCWS test file: no job\n")
    try:
        harness.clear()
        for _ in range(2):
            subprocess.run(["chown", "65534:65534", path], check=True)
        lines = harness.events("cron_at_job_creation_chown")
    finally:
        os.unlink(path)
    assert [line["event"]["file"]["path"] for line in lines] == [path]
    file = lines[0]["event"]["file"]
    assert (file["uid"], file["gid"], file["destination"]["uid"], file["destination"]["gid"]) == (0, 0, 65534, 65534)
