"""Rules selected by `filters` and `agent_version`, and rules skipped for what the agent does not see: each
skipped with its reason, never an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from opencws.secl import load_policies
from opencws.secl.platform import Platform, filter_holds, version_satisfies

LINUX_6_1 = Platform(os="linux", kernel_major=6, kernel_minor=1, kernel_patch=0, os_id="debian")
LINUX_5_10 = Platform(os="linux", kernel_major=5, kernel_minor=10, kernel_patch=50, os_id="ubuntu")

DIRTY_PIPE_KERNELS = (
    "kernel.version.major == 5 && ((kernel.version.minor >= 8 && kernel.version.minor <= 9) || "
    "(kernel.version.minor == 10 && kernel.version.patch < 102))"
)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.policy"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("expr", "plat", "holds"),
    [
        ('os == "linux"', LINUX_6_1, True),
        ('os == "windows"', LINUX_6_1, False),
        (DIRTY_PIPE_KERNELS, LINUX_5_10, True),
        (DIRTY_PIPE_KERNELS, LINUX_6_1, False),
        ("os.is_debian && kernel.version.major >= 6", LINUX_6_1, True),
        ("os.is_debian", LINUX_5_10, False),
        ('kernel.version.flavor == "" && origin == "ebpf"', LINUX_6_1, True),
    ],
)
def test_filters_are_secl_over_the_platform_facts(expr: str, plat: Platform, holds: bool):
    assert filter_holds(expr, plat) is holds


@pytest.mark.parametrize(
    ("constraint", "ok"),
    [
        (">= 7.71", True), ("< 7.71", False), (">=7.65 <7.70", False), (">= 7.70.1", True),
        (">= 7.73", True), (">= 7.74", False), ("~7.73", True), ("< 7.60 || >= 7.73", True),
        (">=7.46, <8", True), ("7.73", True), ("!= 7.73.0", False),
    ],
)  # fmt: skip
def test_agent_version_constraints_against_the_implemented_version(constraint: str, ok: bool):
    assert version_satisfies("7.73.0", constraint) is ok


def test_a_malformed_constraint_is_refused():
    with pytest.raises(ValueError):
        version_satisfies("7.73.0", ">= seven")


def test_rules_not_meant_for_this_platform_are_skipped_with_the_reason(tmp_path: Path):
    text = f"""\
macros:
  - id: win_tools
    expression: '["certutil.exe"]'
    filters: ['os == "windows"']
rules:
  - id: on_linux
    expression: exec.file.name == "nc"
    filters: ['os == "linux"']
  - id: on_windows
    expression: exec.cmdline =~ "*urlcache*"
    filters: ['os == "windows"']
  - id: old_kernels
    expression: open.file.path == "/etc/passwd"
    filters: ['{DIRTY_PIPE_KERNELS}']
  - id: old_agents
    expression: exec.file.name == "base64"
    agent_version: '< 7.71'
  - id: same_id_for_linux
    expression: exec.file.name == "x"
    filters: ['os == "windows"']
  - id: same_id_for_linux
    expression: exec.file.name == "y"
    filters: ['os == "linux"']
  - id: network
    expression: connect.addr.ip in [127.0.0.0/8] && process.file.name == "ssh"
  - id: dns
    expression: dns.question.name == "pastebin.com"
  - id: young_container
    expression: exec.file.name != "" && container.created_at < 1s
  - id: k8s_session
    expression: exec.user_session.k8s_username != ""
  - id: login_uid
    expression: open.file.path == "/etc/x" && process.auid != 4294967295
  - id: mount_root
    expression: mount.root.path == "/"
"""
    ps = load_policies([write(tmp_path, text)], platform=LINUX_6_1)
    assert ps.errors == [], [e.format() for e in ps.errors]
    assert [r.id for r in ps.rules] == ["on_linux", "same_id_for_linux", "young_container", "k8s_session",
                                        "login_uid"]  # fmt: skip
    skipped = {s.rule_id: (s.group, s.subject) for s in ps.skipped}
    assert skipped == {
        "on_windows": ("filter", 'os == "windows"'),
        "old_kernels": ("filter", DIRTY_PIPE_KERNELS),
        "old_agents": ("agent version", "< 7.71"),
        "same_id_for_linux": ("filter", 'os == "windows"'),
        "network": ("event type not supported", "connect"),
        "dns": ("event type not supported", "dns"),
        "mount_root": ("field the agent cannot know", "mount.root.path"),
    }
    # fields the agent does not track load, saying what they read as
    assert any("k8s_session" in w.format() and "reads as no session" in w.format() for w in ps.warnings)
    by_id = {s.rule_id: s for s in ps.skipped}
    assert "excludes 7.73.0" in by_id["old_agents"].message
    assert "a mount's root is not captured by the probe" in by_id["mount_root"].message
    on_5_10 = load_policies([write(tmp_path, text)], platform=LINUX_5_10)
    assert "old_kernels" in [r.id for r in on_5_10.rules]


def test_a_filter_that_is_not_a_valid_expression_is_an_error(tmp_path: Path):
    text = """\
rules:
  - id: r
    expression: exec.file.name == "nc"
    filters: ['kernel.version.mjor == 5']
"""
    ps = load_policies([write(tmp_path, text)], platform=LINUX_6_1)
    (e,) = ps.errors
    assert e.rule_id == "r" and "in filter" in e.message and "kernel.version.mjor" in e.message
    assert ps.rules == [] and ps.skipped == []
