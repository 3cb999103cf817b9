"""SECL → ClickHouse SQL pairs: the prefilter a search expression compiles to."""

from __future__ import annotations

import pytest

from opencws.secl.errors import SeclError
from opencws.secl.sql import compile_search
from opencws.secl.sql.generator import glob_to_like


@pytest.mark.parametrize(
    ("expr", "sql", "params", "exact"),
    [
        ('open.file.path == "/etc/shadow"', "(evt_name = {p0:String}) AND (file_path = {p1:String})",
         {"p0": "open", "p1": "/etc/shadow"}, True),
        ('process.file.path == "/bin/sh"', "(process_file_path = {p0:String})", {"p0": "/bin/sh"}, True),
        ('exec.file.path =~ "/usr/*"', "(evt_name = {p0:String}) AND (process_file_path LIKE {p1:String})",
         {"p0": "exec", "p1": "/usr/%"}, True),
        ('evt.name in ["open", "exec"]', "(evt_name IN ({p0:String}, {p1:String}))",
         {"p0": "open", "p1": "exec"}, True),
        ('process.ancestors.file.path == "/usr/sbin/sshd"', "(has(ancestors_file_path, {p0:String}))",
         {"p0": "/usr/sbin/sshd"}, True),
        ('process.ancestors.file.name =~ "ssh*"', "(arrayExists(x -> x LIKE {p0:String}, ancestors_file_name))",
         {"p0": "ssh%"}, True),
        ("process.uid >= 1000 && process.pid != 1", "((process_uid >= {p0:Int64}) AND (process_pid != {p1:Int64}))",
         {"p0": 1000, "p1": 1}, True),
        ("1000 < process.uid", "(process_uid > {p0:Int64})", {"p0": 1000}, True),
        ('process.file.path =~ r"^/tmp/.+"', "(match(process_file_path, concat('(?-s)', {p0:String})))",
         {"p0": "^/tmp/.+"}, True),
        ('process.comm == "a" || process.comm == "b"', "((process_comm = {p0:String}) OR (process_comm = {p1:String}))",
         {"p0": "a", "p1": "b"}, True),
        ('!(process.comm in ["a", "b"])', "(NOT (process_comm IN ({p0:String}, {p1:String})))", {"p0": "a", "p1": "b"}, True),
        ('process.comm not in ["a"]', "(NOT (process_comm IN ({p0:String})))", {"p0": "a"}, True),
        ('process.comm != "sh"', "(NOT (process_comm = {p0:String}))", {"p0": "sh"}, True),
    ],
)  # fmt: skip
def test_expression_compiles_to_sql(expr: str, sql: str, params: dict, exact: bool) -> None:
    where = compile_search(expr).where
    assert (where.sql, where.params, where.exact) == (sql, params, exact)


@pytest.mark.parametrize(
    ("expr", "sql"),
    [
        # A part without a column is left out of an `&&`: the SQL selects more, the evaluator decides.
        ('process.comm == "sh" && process.args =~ "*curl*"', "((process_comm = {p0:String}))"),
        ("open.flags & O_CREAT > 0", "(evt_name = {p0:String})"),
        # An `||` with a part without a column cannot be narrowed at all.
        ('process.comm == "sh" || process.args =~ "*curl*"', "1"),
        # The negation of an inexact part is not a superset: left to the evaluator.
        ('!(process.comm == "sh" && process.args =~ "*x*")', "1"),
        # "Some ancestor is not X" is not "no ancestor is X".
        ('process.ancestors.file.path != "/bin/sh"', "1"),
        ('process.ancestors.file.path not in ["/bin/sh"]', "1"),
        # Fields with no column (Datadog's, evaluated on the event): the file extension, argv[0], the origin.
        ('open.file.extension == ".php" && process.comm == "sh"', "(evt_name = {p0:String}) AND ((process_comm = {p1:String}))"),
        ('process.argv0 == "kworker" || event.origin != "ebpf"', "1"),
    ],
)
def test_untranslatable_parts_widen_the_prefilter(expr: str, sql: str) -> None:
    where = compile_search(expr).where
    assert where.sql == sql
    assert not where.exact


def test_request_text_never_reaches_the_sql() -> None:
    hostile = "x' OR 1=1 -- {p0:String} `; DROP TABLE events"
    where = compile_search(f'process.comm == "{hostile}" || process.file.path =~ "/{hostile}*"').where
    assert where.sql == "((process_comm = {p0:String}) OR (process_file_path LIKE {p1:String}))"
    assert where.params == {"p0": hostile, "p1": "/x' OR 1=1 -- {p0:String} `; DROP TABLE events%"}


def test_globs_become_like_patterns_with_wildcards_escaped() -> None:
    assert glob_to_like("/tmp/*.sh") == "/tmp/%.sh"
    assert glob_to_like("/a_b/100%/**") == "/a\\_b/100\\%/%"
    assert glob_to_like("c:\\x*") == "c:\\\\x%"


def test_an_empty_search_matches_every_event() -> None:
    s = compile_search("  ")
    assert (s.where.sql, s.event_type) == ("1", None)


def test_an_expression_naming_no_event_type_applies_to_all_events() -> None:
    assert compile_search('process.comm == "sh"').event_type is None


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ('open.file.path == "/a" && exec.file.path == "/b"', "several event types"),
        ("process.comm ==", "operand is missing"),
        ("process.nope == 1", "unknown field 'process.nope'"),
        ("process.comm", "boolean condition"),
    ],
)
def test_a_bad_expression_is_a_secl_error_with_its_place(expr: str, message: str) -> None:
    with pytest.raises(SeclError) as err:
        compile_search(expr)
    assert message in err.value.message
    assert "^" in err.value.caret


def test_conditions_on_arrays_are_set_apart_from_those_on_plain_columns() -> None:
    w = compile_search('open.file.path =~ "/usr/*" && (process.uid == 0 && process.ancestors.file.name == "bash")').where
    assert w.plain == "(evt_name = {p0:String}) AND (file_path LIKE {p1:String}) AND (process_uid = {p2:Int64})"
    assert w.arrays == "(has(ancestors_file_name, {p3:String}))"
    for expr in ['process.ancestors.file.name == "bash"', "process.uid == 0",
                 'process.uid == 0 || process.ancestors.file.name == "bash"']:  # fmt: skip
        assert (compile_search(expr).where.plain, compile_search(expr).where.arrays) == ("", "")
