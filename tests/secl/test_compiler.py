"""Evaluation of compiled expressions against real model events: every operator and literal kind."""

from __future__ import annotations

import dataclasses

import pytest
from secl_events import (
    NOW,
    bpf_event,
    entry,
    event,
    exec_event,
    file_event,
    open_event,
    process,
    selinux_event,
)

from opencws.model.event import File
from opencws.secl import SeclError, compile_expression


def ev(expr: str, event) -> bool:
    rule = compile_expression(expr)
    return rule.evaluate(event)


SHADOW = open_event("/etc/shadow", ["O_RDWR", "O_CREAT"])


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('open.file.path == "/etc/shadow"', True),
        ('open.file.path != "/etc/shadow"', False),
        ('open.file.name == "shadow"', True),
        ("open.file.path.length == 11 && open.file.name.length == 6", True),
        ("open.file.mode == 33188", True),
        ("open.file.rights == 0o644", True),
        ("open.file.mode & S_IFMT == S_IFREG", True),
        ("open.file.mode > 100 && open.file.mode < 40000", True),
        ("open.file.mode >= 33188 && open.file.mode <= 33188", True),
        ("open.file.mode < 33188", False),
        ("open.file.uid == 0", True),
        ("open.file.in_upper_layer == false", True),
        ("!open.file.in_upper_layer", True),
        ("not open.file.in_upper_layer", True),
        ("open.file.in_upper_layer", False),
        ("open.flags & O_CREAT > 0", True),
        ("open.flags & O_TRUNC > 0", False),
        ("open.flags & (O_CREAT | O_TRUNC) > 0", True),
        ("open.flags & O_ACCMODE_FAKE > 0" if False else "open.flags & 3 == O_RDWR", True),
        ("open.flags ^ O_RDWR == O_CREAT", True),
        ("open.flags & ^O_CREAT == O_RDWR", True),
        ("open.retval == 0", True),
        ("open.retval == -1", False),
        ("-open.retval == 0", True),
    ],
)
def test_operators_on_an_open_event(expr: str, expected: bool):
    assert ev(expr, SHADOW) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('open.file.path =~ "/etc/*"', True),
        ('open.file.path =~ "/usr/*"', False),
        ('open.file.path !~ "/usr/*"', True),
        ('open.file.path == ~"/etc/sh*"', True),
        ('open.file.path != ~"/etc/sh*"', False),
        ('open.file.path =~ ~"*shadow"', True),
        ('open.file.path =~ r"sha+dow$"', True),
        ('open.file.path =~ r"^shadow"', False),
        ('open.file.name =~ r"^sh"', True),
        ('open.file.path in ["/etc/passwd", "/etc/shadow"]', True),
        ('open.file.path not in ["/etc/passwd", "/etc/shadow"]', False),
        ('open.file.path in [~"/etc/*"]', True),
        ('open.file.path in [~"/var/*", r"gshadow"]', False),
        ('open.file.path in [~"/var/*", r"shadow"]', True),
        ('open.file.path not in [~"/var/*", "/etc/passwd"]', True),
        ("open.file.mode in [33188, 16877]", True),
        ("open.flags in [O_RDWR, 66]", True),
    ],
)
def test_string_matching_and_arrays(expr: str, expected: bool):
    assert ev(expr, SHADOW) is expected


def test_pattern_star_crosses_slashes_and_is_anchored():
    deep = open_event("/var/spool/cron/crontabs/root")
    assert ev('open.file.path =~ "/var/spool/cron/*"', deep)
    assert ev('open.file.path in [~"/var/spool/cron/*"]', deep)
    assert not ev('open.file.path =~ "/spool/*"', deep)
    assert ev('open.file.path =~ "*/crontabs/*"', deep)
    assert ev('open.file.path =~ "/var/*/cron/*/root"', deep)
    assert not ev('open.file.path =~ "/var/*/cron/*/roo"', deep)


def test_pattern_special_characters_are_literal():
    assert ev('open.file.path =~ "/tmp/a.b*"', open_event("/tmp/a.b.c"))
    assert not ev('open.file.path =~ "/tmp/a.b*"', open_event("/tmp/aXb"))
    assert ev('open.file.path =~ "/tmp/[x]*"', open_event("/tmp/[x]y"))


def test_regex_is_an_unanchored_search():
    e = exec_event("/usr/bin/curl", ["http://169.254.169.254/latest"])
    assert ev('exec.args =~ r"169\\.254\\.[0-9]+"', e)
    assert not ev('exec.args =~ r"^169"', e)


def test_and_or_short_circuit_and_equal_precedence():
    # a && b || c is a && (b || c): with a false, the whole is false even though c is true.
    assert not ev('open.file.path == "/nope" && open.file.name == "x" || open.file.name == "shadow"', SHADOW)
    # (a && b) || c with explicit parentheses is true.
    assert ev('(open.file.path == "/nope" && open.file.name == "x") || open.file.name == "shadow"', SHADOW)
    assert ev('open.file.name == "shadow" and (open.file.uid == 1 or open.file.gid == 0)', SHADOW)


def test_booleans_and_constant_folding():
    assert ev('open.file.path == "/etc/shadow" && true', SHADOW)
    assert not ev('open.file.path == "/etc/shadow" && false', SHADOW)
    assert ev('open.file.path == "/nope" || true', SHADOW)
    assert ev("open.flags & (O_CREAT|O_RDWR|O_WRONLY) == (O_CREAT | O_RDWR)", SHADOW)


def test_retval_comes_from_the_event_or_from_the_outcome():
    assert ev("open.retval == EACCES", open_event("/x", retval=-13))
    assert ev("open.retval == EACCES", open_event("/x", outcome="Refused"))
    assert ev("open.retval == -1", open_event("/x", outcome="Error"))
    assert ev("open.retval == 0", open_event("/x", outcome="Success"))
    assert ev("open.retval == ENOENT", open_event("/x", retval=-2))


def test_durations_compare_the_age_at_the_time_of_the_event():
    young = exec_event("/usr/bin/cat", created=NOW - 2_000_000_000)
    old = exec_event("/usr/bin/cat", created=NOW - 120_000_000_000)
    assert ev("exec.created_at < 5s", young)
    assert not ev("exec.created_at > 5s", young)
    assert ev("exec.created_at > 1m", old)
    assert ev('process.created_at > 100s && exec.file.name == "cat"', old)


def test_variables_inside_strings_and_as_integers():
    e = open_event("/proc/4242/maps")
    assert ev('open.file.path == "/proc/${process.pid}/maps"', e)
    assert not ev('open.file.path == "/proc/${process.ppid}/maps"', e)
    assert ev('open.file.path != "" && process.pid == ${process.pid}', e)
    assert ev("open.file.uid == ${process.uid}", e)


def test_process_fields_read_the_executable_and_credentials():
    e = exec_event(
        "/usr/bin/bash", ["-i", "-c", "id"], tty="pts/0", caps=["CAP_SYS_ADMIN", "CAP_NET_RAW"], uid=1000
    )
    assert ev('exec.file.path == "/usr/bin/bash" && exec.file.name == "bash"', e)
    assert ev('exec.uid == 1000 && process.file.path == "/usr/bin/bash"', e)
    assert ev('exec.comm == "bash" && exec.tty_name == "pts/0"', e)
    assert ev('exec.uid == 1000 && exec.euid == 1000 && exec.user == "user"', e)
    assert ev("exec.cap_effective & CAP_SYS_ADMIN > 0 && process.cap_effective & CAP_NET_RAW > 0", e)
    assert ev("exec.cap_permitted & CAP_SYS_MODULE == 0", e)
    assert ev('exec.args == "-i -c id"', e)
    assert ev('exec.argv in ["-c"] && exec.argv == "id"', e)
    assert ev('exec.args_flags in ["i"] && exec.args_flags == "c"', e)
    assert ev('exec.args_options in ["c=id"]', e)
    assert ev('process.name == "bash" && exec.name == "bash"', e)  # legacy aliases


def test_args_flags_and_options_follow_the_command_line():
    e = exec_event("/bin/tar", ["-xzf", "a.tgz", "--verbose", "--dir=/tmp"])
    assert ev('exec.args_flags in ["x"] && exec.args_flags in ["z"] && exec.args_flags in ["xzf"]', e)
    assert ev('exec.args_flags == "verbose"', e)
    assert ev('exec.args_options in ["dir=/tmp"] && exec.args_options in ["xzf=a.tgz"]', e)
    assert not ev('exec.args_flags == "dir"', e)


def test_container_id_is_at_the_top_or_on_the_process():
    e = exec_event("/usr/bin/apt", container="c" * 64)
    assert ev('exec.file.path == "/usr/bin/apt" && container.id != ""', e)
    assert ev('exec.container.id == "' + "c" * 64 + '"', e)
    assert not ev('exec.file.path == "/usr/bin/apt" && container.id != ""', exec_event("/usr/bin/apt"))


def test_file_events_expose_destination_fields():
    chmod = file_event("chmod", "/etc/shadow", dest=File(mode=0o777))
    assert ev("chmod.file.destination.mode == 0o777 && chmod.mode == 0o777", chmod)
    assert ev("chmod.mode != chmod.file.mode", chmod)
    assert ev("chmod.file.destination.rights & S_IWOTH > 0", chmod)
    chown = file_event("chown", "/etc/shadow", dest=File(uid=1000, gid=0, user="bob"))
    assert ev("chown.file.destination.uid == 1000 && chown.uid != chown.file.uid", chown)
    assert ev('chown.user == "bob" && chown.gid == chown.file.gid', chown)
    rename = file_event("rename", "/tmp/x", dest=File(path="/etc/shadow", name="shadow"))
    assert ev('rename.file.destination.path == "/etc/shadow" && rename.file.path == "/tmp/x"', rename)
    assert ev('rename.new.filename == "/etc/shadow" && rename.old.basename == "x"', rename)
    link = file_event("link", "/etc/shadow", dest=File(path="/tmp/s"))
    assert ev('link.file.destination.path == "/tmp/s" && link.source.filename == "/etc/shadow"', link)
    mkdir = file_event("mkdir", "/tmp/d", dest=File(mode=0o755))
    assert ev("mkdir.file.destination.mode == 0o755 && mkdir.mode == 493", mkdir)
    xattr = file_event(
        "setxattr", "/bin/ls", dest=File(attribute_name="security.ima", attribute_namespace="security")
    )
    assert ev('setxattr.file.destination.name == "security.ima" && setxattr.namespace == "security"', xattr)


def test_unlink_flags_and_open_destination_mode():
    unlink = file_event("unlink", "/tmp/d", flags=["AT_REMOVEDIR"])
    assert ev("unlink.flags & AT_REMOVEDIR > 0", unlink)
    created = open_event("/tmp/new", ["O_CREAT", "O_WRONLY"], dest=File(mode=0o600))
    assert ev("open.file.destination.mode == 0o600 && open.flags & O_CREAT > 0", created)


def test_selinux_fields():
    assert ev('selinux.enforce.status in ["permissive", "disabled"]', selinux_event(status="permissive"))
    assert not ev('selinux.enforce.status == "disabled"', selinux_event(status="enforcing"))
    e = selinux_event(bool_name="httpd_can_network_connect", state="on")
    assert ev('selinux.bool.name == "httpd_can_network_connect" && selinux.bool.state == "on"', e)


def test_bpf_fields_are_numbers_from_names():
    e = bpf_event(
        "BPF_PROG_LOAD",
        prog_type="BPF_PROG_TYPE_KPROBE",
        helpers=["BPF_PROBE_WRITE_USER", "BPF_MAP_LOOKUP_ELEM"],
    )
    assert ev("bpf.cmd == BPF_PROG_LOAD && bpf.prog.type == BPF_PROG_TYPE_KPROBE", e)
    assert ev("bpf.prog.helpers in [BPF_PROBE_WRITE_USER, BPF_OVERRIDE_RETURN]", e)
    assert ev("bpf.prog.helpers == BPF_MAP_LOOKUP_ELEM", e)
    assert ev("bpf.prog.helpers != BPF_OVERRIDE_RETURN", e)
    assert not ev("bpf.cmd == BPF_MAP_CREATE", e)
    m = bpf_event("BPF_MAP_CREATE", map_type="BPF_MAP_TYPE_HASH")
    assert ev('bpf.cmd == BPF_MAP_CREATE && bpf.map.type == BPF_MAP_TYPE_HASH && bpf.map.name == "m"', m)


def test_credential_changes_read_the_destination():
    from secl_events import event as mk
    from secl_events import process

    e = mk("setuid", proc=process(credentials_dest={"uid": 0, "user": "root", "euid": 0, "fsuid": 0}))
    assert ev('setuid.uid == 0 && setuid.user == "root"', e)
    c = mk("capset", proc=process(credentials_dest={"cap_effective": ["CAP_SYS_ADMIN"], "cap_permitted": []}))
    assert ev("capset.cap_effective & CAP_SYS_ADMIN > 0 && capset.cap_permitted == 0", c)


def test_a_missing_block_reads_as_zero_values():
    bare = event("open")
    assert ev('open.file.path == ""', bare)
    assert ev("open.file.inode == 0 && open.flags == 0", bare)


def test_compiled_rule_reports_its_event_type_and_fields():
    rule = compile_expression('open.file.path == "/x" && process.uid == 0 && container.id != ""')
    assert rule.event_type == "open"
    assert rule.fields == {"open.file.path", "process.uid", "container.id"}


class _Recorder:
    """An event proxy recording which top-level blocks are read."""

    def __init__(self, event) -> None:
        self._event = event
        self.read: list[str] = []

    def __getattr__(self, name: str):
        self.read.append(name)
        return getattr(self._event, name)


def test_operands_are_ordered_by_cost_without_changing_the_result():
    # Written costly first (an iterator), evaluated cheap first: a path that differs never reads ancestors.
    for expr in (
        'process.ancestors.file.name == "bash" && open.file.path == "/etc/shadow"',
        'process.ancestors.file.name != "bash" || open.file.path != "/etc/shadow"',
    ):
        rule = compile_expression(expr)
        for fn in (rule.fn, rule.closure):
            assert fn is not None
            miss = _Recorder(open_event("/etc/passwd"))
            assert bool(fn(miss)) is ("||" in expr)
            assert "file" in miss.read and "process" not in miss.read, (expr, miss.read)
            hit = _Recorder(SHADOW)
            assert bool(fn(hit)) is ("&&" in expr)
            assert hit.read.index("file") < hit.read.index("process")


def test_evaluation_of_a_rule_for_another_event_type_is_just_false_through_the_ruleset(tmp_path):
    from secl_events import process

    from opencws.secl import RuleSet, load_policies

    p = tmp_path / "p.policy"
    p.write_text('rules:\n  - id: shadow_exec\n    expression: exec.file.path == "/etc/shadow"\n')
    ps = load_policies([p])
    assert not ps.errors
    rules = RuleSet(ps.rules)
    # An open event by a process whose executable is /etc/shadow: the condition's code alone holds on it...
    other = event("open", proc=process("/etc/shadow"))
    assert ps.rules[0].compiled is not None and ps.rules[0].compiled.fn(other)
    # ... but the rule is an exec rule: neither evaluate() nor the ruleset apply it to an open event.
    assert not ps.rules[0].compiled.evaluate(other)
    assert list(rules.match(other)) == []
    assert list(rules.match(exec_event("/etc/shadow"))) == ["shadow_exec"]


def test_invalid_regex_is_a_located_error():
    with pytest.raises(SeclError) as exc:
        compile_expression('open.file.path =~ r"(unclosed"')
    assert "invalid regular expression" in exc.value.message
    assert exc.value.column >= 19


def test_glob_matcher_agrees_with_a_regex_translation():
    import random
    import re

    from opencws.secl.matchers import build_matcher, glob_regex

    patterns = ["/home/*/.ssh/id_*", "*/.aws/*", "a*b*c", "/x/*/y", "*a*a*", "ab*ba", "a**b"]
    matcher = build_matcher(patterns)
    regex = re.compile("|".join(f"(?:{glob_regex(p)})" for p in patterns), re.S)
    rng = random.Random(3)
    for _ in range(20_000):
        value = "".join(rng.choice("ab/xyc.") for _ in range(rng.randint(0, 9)))
        assert matcher(value) == (regex.fullmatch(value) is not None), value


def test_constant_names_round_trip_with_the_model_tables():
    from opencws.model import names
    from opencws.secl.constants import CONSTANTS

    for table in (names.BPF_COMMANDS, names.BPF_MAP_TYPES, names.BPF_PROGRAM_TYPES, names.BPF_HELPERS):
        for name, value in table.items():
            assert CONSTANTS[name] == value
            assert names.name_value(table, names.value_name(table, value)) == value
    assert CONSTANTS["CAP_SYS_ADMIN"] == 1 << 21 and CONSTANTS["O_RDONLY"] == 0 and CONSTANTS["EACCES"] == -13
    assert CONSTANTS["S_ISUID"] == 0o4000 and CONSTANTS["AT_REMOVEDIR"] == 0x200
    assert names.value_name(names.ERRNO, 11) == "EAGAIN" and names.value_name(names.ERRNO, 9999) == "9999"


def test_events_decoded_from_cws_json_map_to_fields():
    from opencws.model.codec import event_from_json

    doc = {
        "evt": {"name": "bpf", "category": "Kernel Activity", "outcome": "Refused"},
        "bpf": {
            "cmd": "BPF_PROG_LOAD",
            "program": {"name": "p", "program_type": "BPF_PROG_TYPE_KPROBE", "helpers": ["BPF_OVERRIDE_RETURN"]},
        },
        "process": {
            "pid": 7,
            "uid": 0,
            "gid": 0,
            "executable": {"path": "/usr/bin/bpftool", "name": "bpftool", "uid": 0, "gid": 0},
            "credentials": {
                "uid": 0, "gid": 0, "euid": 0, "egid": 0, "fsuid": 0, "fsgid": 0,
                "cap_effective": ["CAP_BPF", "CAP_SYS_ADMIN"], "cap_permitted": ["CAP_BPF", "CAP_SYS_ADMIN"],
            },
            "ancestors": [{"pid": 1, "uid": 0, "gid": 0, "executable": {"path": "/sbin/init", "uid": 0, "gid": 0}}],
        },
        "date": "2026-11-21T17:55:02.123456789Z",
    }  # fmt: skip
    e = event_from_json(doc)
    expr = (
        "bpf.cmd == BPF_PROG_LOAD && bpf.prog.type == BPF_PROG_TYPE_KPROBE"
        " && bpf.prog.helpers in [BPF_OVERRIDE_RETURN] && bpf.retval == EACCES"
        ' && process.cap_effective & CAP_BPF > 0 && process.ancestors.file.name == "init"'
    )
    assert ev(expr, e)


def test_unknown_flag_names_do_not_hide_the_known_ones():
    e = open_event("/etc/shadow", ["O_WRONLY", "O_FUTURE_FLAG", "64"])
    assert ev("open.flags & O_WRONLY > 0 && open.flags & O_CREAT > 0", e)


@pytest.mark.parametrize(
    "field", ["process.name", "exec.name", "process.parent.name", "process.ancestors.name"]
)
def test_legacy_name_fields_read_the_comm(field: str):
    parent = entry("/usr/bin/python3.11", 300, comm="gunicorn")
    proc = dataclasses.replace(
        process("/usr/bin/python3.11", ancestors=[]), comm="gunicorn", parent=parent, ancestors=[parent]
    )
    e = event("exec", proc=proc)
    assert ev(f'exec.file.path != "" && {field} == "gunicorn"', e)
    assert not ev(f'exec.file.path != "" && {field} == "python3.11"', e)


def test_exit_name_is_the_comm():
    proc = dataclasses.replace(process("/usr/bin/python3.11"), comm="worker")
    assert ev('exit.name == "worker"', event("exit", proc=proc))


@pytest.mark.parametrize(
    "dest",
    [
        {"uid": "0", "euid": None, "fsuid": [1], "user": 5},
        {"uid": True, "cap_effective": "CAP_SYS_ADMIN", "cap_permitted": [1, 2]},
        {"cap_effective": {"a": 1}, "cap_permitted": None},
    ],
)
def test_odd_credentials_destination_values_read_as_zero(dest):
    for name, expr in (
        ("setuid", 'setuid.uid >= 0 && setuid.euid == 0 && setuid.fsuid == 0 && setuid.user == ""'),
        ("capset", "capset.cap_effective == 0 && capset.cap_permitted == 0"),
    ):
        assert ev(expr, event(name, proc=process(credentials_dest=dest)))
    good = event("setuid", proc=process(credentials_dest={"uid": 1000, "user": "bob"}))
    assert ev('setuid.uid == 1000 && setuid.user == "bob"', good)
