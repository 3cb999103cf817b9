"""The filter plan computed from small policies: enabled types and kernel approvers (no kernel needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencws.agent.filters import TypeApprovers, apply_plan, basename_of, plan_filters
from opencws.secl import Approver, PolicySet, load_policies

WRITE = 0o1 | 0o2 | 0o100 | 0o1000  # O_WRONLY | O_RDWR | O_CREAT | O_TRUNC


def policy(tmp_path: Path, rules: str, macros: str = "") -> PolicySet:
    p = tmp_path / "p.policy"
    p.write_text(f"macros:\n{macros or '  []'}\nrules:\n{rules}")
    ps = load_policies([p])
    assert ps.errors == []
    return ps


def rule(rid: str, expression: str) -> str:
    return f"  - id: {rid}\n    expression: '{expression}'\n"


@pytest.mark.parametrize(("approver", "expected"), [
    (Approver("exact", "/etc/shadow"), "shadow"),
    (Approver("exact", "authorized_keys"), "authorized_keys"),
    (Approver("pattern", "/home/*/.aws/credentials"), "credentials"),
    (Approver("pattern", "/etc/no-star"), "no-star"),
    (Approver("pattern", "/etc/cron.d/*"), None),
    (Approver("pattern", "/root/.ssh/id_*"), None),
    (Approver("pattern", "*.ko"), None),
    (Approver("regex", "/etc/.*"), None),
    (Approver("exact", "/etc/"), None),
])
def test_the_basename_a_path_approver_fixes(approver, expected):
    assert basename_of(approver) == expected


LIFE = {"exec", "fork", "exit", "setuid", "setgid", "capset"}
"""The process life cycle and the credential changes: the process cache needs them whatever the rules."""


def test_only_types_some_rule_uses_are_enabled_plus_the_process_life_cycle_and_credentials(tmp_path):
    plan = plan_filters(policy(tmp_path, rule("a", 'chmod.file.path == "/etc/shadow"')), discarders=False)
    assert plan.event_types == {"chmod"} | LIFE
    plan = plan_filters(policy(tmp_path, rule("a", "bpf.cmd == BPF_PROG_LOAD")))
    assert plan.event_types == {"bpf"} | LIFE


def test_inode_discarders_enable_the_types_that_invalidate_them(tmp_path):
    plan = plan_filters(policy(tmp_path, rule("a", 'chmod.file.path == "/etc/shadow"')))
    assert plan.event_types == {"chmod", "rename", "link", "mount"} | LIFE
    assert plan.rule_types == {"chmod"}
    # no unlink hook: the kernel drops a stale inode discarder when it sees the number's next inode born;
    # mounts (a reused mount id) bump the discarder generation in the kernel: none needs to leave it
    assert plan.filter_all == {"mount"}
    # renames (of a directory) and hard links must reach the agent
    assert "rename" not in plan.approvers and "link" not in plan.approvers


def test_disabled_rules_do_not_enable_their_type(tmp_path):
    text = rule("a", 'chmod.file.path == "/etc/shadow"') + rule("b", 'mkdir.file.name == "x"') + \
        "    disabled: true\n"
    assert "mkdir" not in plan_filters(policy(tmp_path, text)).event_types


def test_exact_paths_and_names_become_basename_approvers(tmp_path):
    text = rule("a", 'open.file.path in ["/etc/shadow", "/etc/gshadow"]') + \
        rule("b", 'open.file.name == "authorized_keys"') + \
        rule("c", 'open.file.path =~ "/home/*/.aws/credentials"')
    plan = plan_filters(policy(tmp_path, text))
    assert plan.approvers["open"] == TypeApprovers(
        frozenset({"shadow", "gshadow", "authorized_keys", "credentials"}), 0)


def test_a_rule_without_a_kernel_approver_leaves_its_type_unfiltered(tmp_path):
    text = rule("a", 'open.file.path == "/etc/shadow"') + rule("b", 'open.file.path =~ "/etc/cron.d/*"')
    plan = plan_filters(policy(tmp_path, text))
    assert "open" not in plan.approvers
    assert plan.unfiltered_by["open"] == "b"


def test_open_flags_approve_a_rule_whose_path_the_kernel_cannot_check(tmp_path):
    text = rule("a", 'open.file.path =~ "/etc/cron.d/*" && open.flags & (O_WRONLY | O_RDWR) > 0') + \
        rule("b", 'open.file.path == "/etc/passwd"')
    plan = plan_filters(policy(tmp_path, text))
    assert plan.approvers["open"] == TypeApprovers(frozenset({"passwd"}), 0o1 | 0o2)


def test_a_rule_already_covered_by_the_forced_flags_adds_no_basename(tmp_path):
    write = "open.flags & (O_CREAT | O_TRUNC | O_WRONLY | O_RDWR) > 0"
    text = rule("a", f'open.file.path =~ "/etc/cron.d/*" && {write}') + \
        rule("b", f'open.file.path == "/etc/passwd" && {write}') + \
        rule("c", 'open.file.path == "/etc/shadow" && open.flags & O_TRUNC > 0')
    plan = plan_filters(policy(tmp_path, text))
    assert plan.approvers["open"] == TypeApprovers(frozenset(), WRITE)


def test_flags_are_used_only_for_the_field_the_kernel_compares(tmp_path):
    # chmod.file.destination.mode is the mode argument, not the flags argument the kernel checks
    plan = plan_filters(policy(tmp_path, rule("a", "chmod.file.destination.mode & S_ISUID > 0")))
    assert "chmod" not in plan.approvers
    assert plan.unfiltered_by == {"chmod": "a"}


def test_rename_approvers_come_from_the_source_only(tmp_path):
    src = plan_filters(policy(tmp_path, rule("a", 'rename.file.path == "/etc/shadow"')))
    assert src.approvers["rename"] == TypeApprovers(frozenset({"shadow"}), 0)
    dest = plan_filters(policy(tmp_path, rule("a", 'rename.file.destination.path == "/etc/shadow"')))
    assert "rename" not in dest.approvers


def test_an_or_of_names_is_approved_by_their_union(tmp_path):
    plan = plan_filters(policy(tmp_path, rule("a", 'unlink.file.name == "a" || unlink.file.path in ["/x/b", "/y/b"]')))
    # SECL merges an || on the fields both sides constrain; a name on one side and a path on the other
    # constrain different fields, so this rule gives no approver (a loss of precision, never of events)
    assert plan.unfiltered_by == {"unlink": "a"}
    plan = plan_filters(policy(tmp_path, rule("a", 'unlink.file.name == "a" || unlink.file.name == "b"')))
    assert plan.approvers["unlink"].basenames == {"a", "b"}


def test_types_without_kernel_approvers_are_enabled_but_never_approver_filtered(tmp_path):
    plan = plan_filters(policy(tmp_path, rule("a", "bpf.cmd == BPF_PROG_LOAD") + rule("b", "setuid.uid == 0")))
    assert {"bpf", "setuid"} <= plan.event_types
    assert plan.approvers == {} and plan.unfiltered_by == {}


def test_the_default_policy_plan(tmp_path):
    from opencws.secl.policy import load_policies as load

    default = Path(__file__).resolve().parents[2] / "src/opencws/secl/policies/default.policy"
    plan = plan_filters(load([default]))
    assert {"open", "exec", "fork", "exit", "rename", "bpf"} <= plan.event_types
    assert plan.event_types == plan.rule_types | LIFE | {"rename", "link"}
    # one syscall hook site: the default policy's unlink/rmdir/rename rules need nothing of a removed inode
    assert plan.resolve_at_exit == {"unlink", "rmdir", "rename"} and plan.needs_enter_by == {}
    assert plan.approvers["link"].basenames == {"shadow", "gshadow", "sudoers"}
    # /root/.ssh/id_* and the like fix no basename: open passes the approvers, discarders handle it
    assert "open" in plan.unfiltered_by


class FakeProbe:
    def __init__(self):
        self.calls: list[tuple] = []

    def set_event_types(self, types, *, resolve_at_exit=()):
        self.calls.append(("types", tuple(types)))
        self.calls.append(("at_exit", tuple(resolve_at_exit)))

    def set_approvers(self, event_type, *, basenames=(), paths=(), flags_mask=0):
        self.calls.append(("approvers", event_type, tuple(basenames), flags_mask))

    def clear_approvers(self, event_type):
        self.calls.append(("clear", event_type))


def test_apply_pushes_types_then_replaces_or_clears_every_approver(tmp_path):
    text = rule("a", 'chmod.file.path == "/etc/shadow"') + rule("b", 'open.file.path =~ "/x/*"')
    probe = FakeProbe()
    apply_plan(probe, plan_filters(policy(tmp_path, text)),
               known_types=["exec", "fork", "exit", "open", "chmod", "unlink", "rename", "mount"])
    assert probe.calls[0] == ("types", ("chmod", "exec", "exit", "fork", "mount", "open", "rename"))
    assert probe.calls[1] == ("at_exit", ("rename",))
    assert ("approvers", "mount", (), 0) in probe.calls  # seen by the kernel only (generation bump)
    assert ("approvers", "chmod", ("shadow",), 0) in probe.calls
    assert ("clear", "unlink") in probe.calls
    assert ("clear", "open") in probe.calls
    probe = FakeProbe()
    apply_plan(probe, plan_filters(policy(tmp_path, text + rule("c", 'mount.fs_type == "ext4"'))),
               known_types=["exec", "fork", "exit", "open", "chmod", "mount"])
    assert ("clear", "mount") in probe.calls  # a rule uses mount: its events pass again


def test_unlink_rules_on_the_removed_inode_keep_sys_enter_the_others_resolve_at_exit(tmp_path):
    plan = plan_filters(policy(tmp_path, rule("a", 'unlink.file.path =~ "/var/log/*" && unlink.file.name != "x"')
                               + rule("b", 'rmdir.file.mode & 0o1000 > 0')
                               + rule("c", 'rename.file.inode == 5')))
    assert plan.resolve_at_exit == {"unlink", "rename"}
    assert plan.needs_enter_by == {"rmdir": "b"}
