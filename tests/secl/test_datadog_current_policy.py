"""Datadog's current default policy (1.69.3, third-party test data in shared/compat/) loads as Datadog's agent
would on a Linux 6.1 host: the rules for other platforms, older agents, event types the probe does not produce
are skipped, each with its reason; every rule on an event type the agent has loads and runs (fields the agent
does not track, such as Kubernetes user sessions, load with a warning and read as "none")."""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path

import pytest
from secl_events import NOW, open_event, process

from opencws.model.event import Event, EventContext
from opencws.secl import RuleSet, load_policies
from opencws.secl.platform import Platform

LINUX_6_1 = Platform(os="linux", kernel_major=6, kernel_minor=1, kernel_patch=0, os_id="debian")


@pytest.fixture(scope="module")
def current(compat_dir: Path):
    p = compat_dir / "datadog-default-1.69.3.policy"
    if not p.exists():
        pytest.skip(f"{p} is absent")
    return load_policies([p], platform=LINUX_6_1)


def test_it_loads_without_errors_and_every_skip_has_a_reason(current):
    assert [e.format() for e in current.errors] == []
    assert len(current.rules) == 214
    assert len(current.skipped) == 105  # 319 rules in all
    groups = collections.Counter(s.group for s in current.skipped)
    assert groups == {
        "filter": 39,  # 37 Windows rules, 2 for kernels 5.8-5.16 (dirty pipe)
        "agent version": 25,  # superseded by their _v2 (24) or retired (mining_pool_domain)
        "event type not supported": 41,
    }
    types = collections.Counter(s.subject for s in current.skipped if s.group == "event type not supported")
    assert set(types) == {"accept", "cgroup_write", "chdir", "connect", "dns", "fim", "imds", "load_module",
                          "mmap", "packet", "prctl", "ptrace", "setsockopt", "signal"}  # fmt: skip
    assert all(s.message for s in current.skipped)


def test_its_variables_are_typed_and_its_hash_actions_listed_as_not_executed(current):
    v = current.variables.vars
    assert (v["cgroup.cred_category_count"].type, v["cgroup.cred_category_count"].multi) == ("int", False)
    assert (v["cgroup.cred_categories_accessed"].type, v["cgroup.cred_categories_accessed"].multi) == ("string", True)
    assert v["process.correlation_key"].inherited
    hashed = sorted(r.id for r in current.rules for a in r.not_executed if a.kind == "hash")
    assert hashed == ["compile_after_delivery", "cryptominer_args", "redis_save_module"]


def _exec(path: str, args: list[str], container: str, pid: int = 4242, at: int = 0) -> Event:
    name = path.rsplit("/", 1)[-1]
    proc = dataclasses.replace(process(path, pid=pid, args=args, container=container), comm=name)
    return Event(evt=EventContext(name="exec", category="Process Activity", outcome="Success"), process=proc,
                 date=NOW + at * 1_000_000_000)  # fmt: skip


def test_its_per_cgroup_rate_limit_lets_the_first_base64_decode_of_a_command_alert(current):
    rs = RuleSet(current.rules)
    c = "f" * 64
    first = rs.match(_exec("/usr/bin/base64", ["-d", "payload"], c))
    assert "base64_decode_v2" in first
    assert "base64_decode_v2" not in rs.match(_exec("/usr/bin/base64", ["-d", "payload"], c, pid=4300, at=5))
    assert "base64_decode_v2" in rs.match(_exec("/usr/bin/base64", ["-d", "other"], c, pid=4301, at=6))
    assert "base64_decode_v2" in rs.match(_exec("/usr/bin/base64", ["-d", "payload"], "e" * 64, at=7))


def test_its_container_age_guards_load(current):
    loaded = {r.id for r in current.rules}
    assert {"credential_modified_open_v2", "deploy_priv_container", "ssh_authorized_keys_open_v2"} <= loaded
    assert {"exec_new_file", "execution_context_cgroup", "coredump_triggered"} <= loaded  # cgroup ids, exit causes


def test_its_static_pod_rule_reads_the_file_extension(current):
    rs = RuleSet(current.rules)
    pod = open_event("/etc/kubernetes/manifests/evil.yaml", ["O_CREAT", "O_WRONLY"])
    assert "static_pod_manifest_created" in rs.match(pod)
    backup = open_event("/etc/kubernetes/manifests/evil.yaml.bak", ["O_CREAT", "O_WRONLY"])
    assert "static_pod_manifest_created" not in rs.match(backup)


def _ids(current, *ids):
    return [r for r in current.rules if r.id in ids]


def test_rules_on_the_login_uid_load_and_see_a_login_session(current):
    rule = _ids(current, "apparmor_load_unprivileged_origin")[0]
    write = ["O_WRONLY"]
    user = dataclasses.replace(process("/usr/bin/tee", uid=1000), auid=1000)
    assert rule.evaluate(open_event("/sys/kernel/security/apparmor/policy/.load", write, proc=user))
    # a daemon (no login session: unset) or root's own login are not "unprivileged origin"
    daemon = dataclasses.replace(process("/usr/bin/tee", uid=1000), auid=4294967295)
    assert not rule.evaluate(open_event("/sys/kernel/security/apparmor/policy/.load", write, proc=daemon))
    root_login = dataclasses.replace(process("/usr/bin/tee", uid=1000), auid=0)
    assert not rule.evaluate(open_event("/sys/kernel/security/apparmor/policy/.load", write, proc=root_login))
    # a stored event carries no login uid: it reads as unset, never as root's 0
    assert not rule.evaluate(open_event("/sys/kernel/security/apparmor/policy/.load", write,
                                        proc=process("/usr/bin/tee", uid=1000)))  # fmt: skip


def _exec_of(proc) -> Event:
    return Event(evt=EventContext(name="exec", category="Process Activity", outcome="Success"), process=proc,
                 date=NOW)  # fmt: skip


def test_a_login_session_starts_an_auid_execution_context(current):
    rs = RuleSet(current.rules)
    read = current.variables.reader("process.correlation_key")[2]
    login = _exec_of(dataclasses.replace(process("/usr/bin/bash", pid=5000, uid=1000), auid=1000, fork_time=NOW))
    rs.match(login)
    assert read(login).startswith("auid_")
    daemon = _exec_of(dataclasses.replace(process("/usr/bin/bash", pid=5001), auid=4294967295, fork_time=NOW))
    rs.match(daemon)
    assert not read(daemon).startswith("auid_")


def test_kubernetes_user_session_rules_load_and_see_no_session_on_a_host(current):
    rule = _ids(current, "k8s_user_session")[0]
    assert not rule.evaluate(_exec("/usr/bin/id", [], "f" * 64))
    warned = [w.format() for w in current.warnings if "user sessions" in w.format()]
    assert any("k8s_user_session" in w and "reads as no session" in w for w in warned)


def test_the_service_execution_context_reads_dd_service_from_the_environment(current):
    rule = _ids(current, "execution_context_service")[0]
    with_service = dataclasses.replace(process("/usr/bin/python3"), envs=["DD_SERVICE"],
                                       envp="PATH=/bin\0DD_SERVICE=billing")  # fmt: skip
    ev = Event(evt=EventContext(name="exec", category="Process Activity", outcome="Success"),
               process=with_service, date=NOW)  # fmt: skip
    assert rule.evaluate(ev)
    plain = Event(evt=EventContext(name="exec", category="Process Activity", outcome="Success"),
                  process=process("/usr/bin/python3"), date=NOW)  # fmt: skip
    assert not rule.evaluate(plain)


def test_the_host_mount_rule_sees_a_bind_of_the_root_file_system_in_a_container(current):
    from opencws.model.event import FileEvent

    rule = _ids(current, "mount_host_fs")[0]

    def mount(source: str | None, fstype: str = "ext4", container: str | None = "c" * 64) -> Event:
        f = FileEvent(path="/mnt/host", name="host", fstype=fstype, source_path=source)
        return Event(evt=EventContext(name="mount", category="File Activity", outcome="Success"), file=f,
                     process=process("/bin/mount", container=container), date=NOW)  # fmt: skip

    assert rule.evaluate(mount("/"))
    assert not rule.evaluate(mount("/var/lib/app"))  # a bind of a directory
    assert not rule.evaluate(mount("/", fstype="overlay"))  # the container's own root
    assert not rule.evaluate(mount("/", container=None))  # on the host
    assert not rule.evaluate(mount(None))  # a new file system, or an event from JSON


def test_container_tags_and_the_login_uid_are_rule_fields_an_event_from_json_lacks():
    from opencws.model.event import ContainerContext
    from opencws.secl import compile_expression

    tagged = ContainerContext(id="c" * 64, tags=["image_name:nginx", "short_image:nginx", "image_tag:1.25"])
    proc = dataclasses.replace(process("/usr/sbin/nginx"), container=tagged, auid=1000)
    ev = Event(evt=EventContext(name="exec", category="Process Activity", outcome="Success"), process=proc,
               date=NOW)  # fmt: skip
    rule = compile_expression('exec.file.name == "nginx" && "short_image:nginx" in container.tags && '
                              "process.auid == 1000")  # fmt: skip
    assert rule.evaluate(ev)
    bare = Event(evt=EventContext(name="exec", category="Process Activity", outcome="Success"),
                 process=process("/usr/sbin/nginx", container="c" * 64), date=NOW)  # fmt: skip
    assert not rule.evaluate(bare)
