"""Regression tests for the SECL engine review: each test failed before its fix."""

from __future__ import annotations

import dataclasses
import random
import time

import pytest
from secl_events import NOW, entry, event, exec_event, file_event, open_event, process

from opencws.model.event import File
from opencws.secl import SeclError, compile_expression
from opencws.secl.lexer import INT64_MAX, tokenize
from opencws.secl.parser import parse


def ev(expr: str, e) -> bool:
    return compile_expression(expr).evaluate(e)


def error_of(expr: str) -> SeclError:
    with pytest.raises(SeclError) as exc:
        compile_expression(expr)
    return exc.value


# 1. A duration compared with an iterator date field: the age of each value.


def test_a_duration_compared_with_an_iterator_date_is_the_age_of_each_ancestor():
    old = dataclasses.replace(entry("/usr/sbin/sshd", 200), exec_time=NOW - 3600 * 10**9)
    young = dataclasses.replace(entry("/usr/bin/bash", 300), exec_time=NOW - 10**9)
    proc = dataclasses.replace(process("/usr/bin/curl"), parent=young, ancestors=[young, old])
    e = event("exec", proc=proc)
    assert ev('exec.file.name == "curl" && process.ancestors.created_at > 5s', e)  # sshd: one hour
    assert ev('exec.file.name == "curl" && process.ancestors.created_at < 5s', e)  # bash: one second
    assert not ev('exec.file.name == "curl" && process.ancestors.created_at > 2h', e)
    orphan = event("exec", proc=dataclasses.replace(proc, parent=None, ancestors=[]))
    assert not ev('exec.file.name == "curl" && process.ancestors.created_at > 5s', orphan)


# 2. Legacy `*.name` fields are the command name, as in Datadog's legacy field table.


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


# 3. Integer literals: a leading zero is octal; int64 only.


def test_leading_zero_integers_are_octal():
    e = file_event("chmod", "/etc/x", dest=File(mode=0o755))
    assert ev("chmod.file.destination.mode == 0755", e)
    assert ev("chmod.file.destination.mode == 493", e)
    assert tokenize("0")[0].value == 0
    assert tokenize("00017")[0].value == 0o17


@pytest.mark.parametrize("literal", ["08", "0759", "019"])
def test_leading_zero_with_8_or_9_is_a_precise_error(literal: str):
    e = error_of(f"open.flags == {literal}")
    assert "invalid octal number" in e.message and literal in e.message
    assert e.column == 15


@pytest.mark.parametrize(
    "literal", ["9223372036854775808", "1" * 5000, "0x8000000000000000", "07" * 40, "99999999999999999999d"]
)
def test_integer_literals_beyond_int64_are_a_precise_error(literal: str):
    e = error_of(f"open.flags == {literal}")
    assert "out of range" in e.message and "64-bit" in e.message
    assert e.column == 15
    assert len(e.message) < 200


def test_the_largest_int64_literal_is_accepted():
    assert ev(f"open.flags < {INT64_MAX}", open_event("/x"))


# 4. Comments.


def test_hash_and_slash_comments_run_to_the_end_of_the_line():
    e = open_event("/etc/shadow")
    expr = (
        '# reads of the shadow file\nopen.file.path == "/etc/shadow" // the file\n'
        '  && open.file.name == "shadow#1" || open.file.name == "shadow" # last'
    )
    assert ev(expr, e)
    assert ev('open.file.path == "/etc//shadow" || open.file.path == "/etc/shadow"', e)
    assert [t.kind for t in tokenize("a # b == c")][1:] == ["end of expression"]


# 5. `&&`/`||` mixed without parentheses: always reported, checked against a per-level reference.


def _mixed_reference(text: str) -> bool:
    levels: list[set[str]] = [set()]
    mixed = False
    for tok in tokenize(text):
        if tok.kind == "(":
            levels.append(set())
        elif tok.kind == ")":
            done = levels.pop()
            mixed = mixed or len(done) > 1
        elif tok.text in ("&&", "||"):
            levels[-1].add(tok.text)
    return mixed or len(levels[0]) > 1


def _random_expression(rng: random.Random, depth: int = 0) -> str:
    n = rng.randint(1, 4)
    parts = []
    for _ in range(n):
        if depth < 3 and rng.random() < 0.35:
            term = f"({_random_expression(rng, depth + 1)})"
        else:
            term = rng.choice("abcdefg")
        if rng.random() < 0.15:
            term = "!" + term
        parts.append(term)
    out = parts[0]
    for p in parts[1:]:
        out += f" {rng.choice(['&&', '||'])} {p}"
    return out


def test_mixed_logic_warning_on_a_parenthesised_same_operator_tail():
    assert parse("x && y || (z || w)").mixed_logic
    assert parse("x || y && (z && w)").mixed_logic
    assert not parse("x || (z || w)").mixed_logic


def test_mixed_logic_warning_agrees_with_a_per_parenthesis_level_reference():
    rng = random.Random(5)
    for _ in range(5000):
        text = _random_expression(rng)
        assert bool(parse(text).mixed_logic) == _mixed_reference(text), text


# 6. Free-form credentials read as zero values, never a crash.


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


# 7. Regular expressions run on RE2: linear time, no hang.


def test_a_backtracking_regex_does_not_hang_on_attacker_data():
    rule = compile_expression(r'exec.args =~ r"^(a|a)*$"')
    e = exec_event("/usr/bin/x", ["a" * 29 + "b"])
    start = time.perf_counter()
    assert not rule.evaluate(e)
    assert rule.evaluate(exec_event("/usr/bin/x", ["a" * 29]))
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("regex", [r"(a)\1", r"foo(?=bar)", r"(?<!x)y"])
def test_regex_features_re2_lacks_are_load_errors(regex: str):
    e = error_of(f'exec.args =~ r"{regex}"')
    assert "invalid regular expression" in e.message and "RE2" in e.message


# 12. `${...}` inside a pattern.


def test_a_variable_inside_a_pattern_is_an_error():
    e = error_of('open.file.path =~ ~"/proc/${process.pid}/*"')
    assert "not expanded inside patterns" in e.message
    assert e.column == 27
    e = error_of('open.file.path in [~"/proc/${process.pid}/*"]')
    assert "not expanded inside patterns" in e.message
    assert ev('open.file.path == "/proc/${process.pid}/maps"', open_event("/proc/4242/maps"))


# 8-11. Policy and suite files.


def _check(tmp_path, text: bytes | str, name: str = "p.policy"):
    from opencws.secl import load_policies

    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return load_policies([p])


def test_a_non_utf8_policy_is_a_file_error(tmp_path):
    ps = _check(tmp_path, b'rules:\n  - id: r\n    expression: open.file.path == "/\xff"\n')
    (e,) = ps.errors
    assert "not UTF-8" in e.message and "0xff" in e.message
    assert e.file_line == 3


def test_a_non_utf8_suite_is_a_suite_error(tmp_path):
    from opencws.secl.rulesuite import SuiteError, load_suite

    p = tmp_path / "s.tests.yaml"
    p.write_bytes(b"cases:\n  - name: \xfe\n")
    with pytest.raises(SuiteError, match=r"s.tests.yaml:2: cannot read: not UTF-8"):
        load_suite(p)


def test_an_unquoted_timestamp_in_a_suite_is_its_rfc3339_text(tmp_path):
    from opencws.secl.rulesuite import load_suite

    p = tmp_path / "s.tests.yaml"
    p.write_text(
        "cases:\n  - name: t\n    event: {evt: {name: open}, date: 2025-11-21T17:55:02Z}\n    expect: []\n"
    )
    (case,) = load_suite(p).cases
    assert case.event_json["date"] == "2025-11-21T17:55:02Z"
    assert case.event.date == 1763747702 * 10**9


def test_an_empty_rule_id_in_a_suite_is_malformed(tmp_path):
    from opencws.secl.rulesuite import SuiteError, load_suite

    p = tmp_path / "s.tests.yaml"
    p.write_text('cases:\n  - name: t\n    event: {evt: {name: open}}\n    expect: ""\n')
    with pytest.raises(SuiteError, match="list of rule ids"):
        load_suite(p)


def test_duplicate_ids_are_rule_and_macro_errors_naming_the_first_definition(tmp_path):
    ps = _check(
        tmp_path,
        'macros:\n  - id: m\n    expression: open.file.name == "x"\n'
        '  - id: m\n    expression: open.file.name == "y"\n'
        'rules:\n  - id: r_dup\n    expression: open.file.path == "/a"\n'
        '  - id: r_dup\n    expression: open.file.path == "/b"\n',
    )
    macro_err, rule_err = ps.errors
    assert macro_err.kind == "macro" and macro_err.message.endswith("p.policy:2)")
    assert rule_err.kind == "rule" and rule_err.location().endswith("rule r_dup")
    assert rule_err.message.endswith("p.policy:7)") and rule_err.file_line == 9


@pytest.mark.parametrize(
    ("values", "what"),
    [
        ("[{a: 1}]", "a mapping"),
        ('["x", null]', "null"),
        ("[1.5]", "a number with a fraction"),
        ("[[1]]", "a list"),
    ],
)
def test_macro_values_accept_strings_integers_and_booleans_only(tmp_path, values: str, what: str):
    ps = _check(
        tmp_path,
        f"macros:\n  - id: m\n    values: {values}\nrules:\n  - id: r\n    expression: open.file.name in m\n",
    )
    first, second = ps.errors
    assert first.kind == "macro" and "`values` item" in first.message and what in first.message
    assert first.file_line == 3
    assert "macro 'm' has an error (reported with the macro)" in second.message
    assert "__line" not in first.format()


def test_a_rule_using_a_broken_macro_through_another_macro_names_the_chain(tmp_path):
    ps = _check(
        tmp_path,
        "macros:\n  - id: bad\n    expression: open.file.nope == 1\n"
        '  - id: outer\n    expression: open.file.name == "x" && bad\n'
        '  - id: ok\n    expression: open.file.name == "x" && outer\n'
        "rules:\n  - id: r\n    expression: outer\n",
    )
    messages = [e.message for e in ps.errors]
    assert messages[0].startswith("unknown field 'open.file.nope'")
    assert messages[1:] == [
        "macro 'bad' has an error (reported with the macro)",
        "macro 'outer' has an error (reported with the macro)",
        "macro 'outer' has an error (reported with the macro)",
    ]


# 10, 13. `rules eval`: usage errors and event validation.


def _eval(args: list[str]) -> int:
    from opencws.cli.main import main

    return main(["rules", "eval", *args])


def test_eval_with_a_missing_policy_is_a_usage_error(tmp_path, capsys):
    ev_file = tmp_path / "e.json"
    ev_file.write_text('{"evt": {"name": "open"}}')
    assert _eval(["--policy", str(tmp_path / "nope.policy"), "--event", str(ev_file)]) == 2
    assert "no such file or directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("patch", "pointer"),
    [
        ({"date": 12345}, "/date"),
        ({"process": {"pid": "x"}}, "/process/pid"),
        ({"process": {"args": "abc"}}, "/process/args"),
        ({"bpf": {"cmd": 5}}, "/bpf/cmd"),
    ],
)
def test_eval_rejects_events_that_do_not_match_the_schema(tmp_path, capsys, patch, pointer):
    import json

    doc = {"evt": {"name": "open", "category": "File Activity", "outcome": "Success"}, **patch}
    ev_file = tmp_path / "e.json"
    ev_file.write_text(json.dumps(doc))
    assert _eval(["--expr", 'open.file.path == "/x"', "--event", str(ev_file)]) == 2
    err = capsys.readouterr().err
    assert "not a CWS event" in err and pointer in err


def test_the_test_subcommand_is_registered_directly():
    import inspect

    from opencws.cli import rules_cmd

    source = inspect.getsource(rules_cmd)
    assert "ImportError" not in source and "rules_test_cmd.run" in source
