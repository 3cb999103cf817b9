"""`+` and `-` on integers and durations, as current Datadog: between comparisons and bit operations in
precedence, grouping to the left; a date plus or minus a duration is a date, a date minus a date a number."""

from __future__ import annotations

import pytest
from secl_events import NOW, event, exec_event, process

from opencws.model.event import FileEvent
from opencws.secl import SeclError, compile_expression
from opencws.secl.parser import parse

SEC = 1_000_000_000
LS = exec_event("/usr/bin/ls", created=NOW)  # created at the time of the event


def ev(expr: str, e=LS) -> bool:
    return compile_expression(expr).evaluate(e)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('1 + 2 == 5 - 2 && exec.file.name == "ls"', True),
        ('1 + 2 != 3 && exec.file.name == "ls"', False),
        ('1 + 2 - 3 + 4 == 4 && exec.file.name == "ls"', True),
        ('1 - 2 + 3 - (1 - 4) - (1 - 5) == 9 && exec.file.name == "ls"', True),  # left to right
        ('10s + 40s == 50s && exec.file.name == "ls"', True),
        ('1m - 30s == 30000ms && exec.file.name == "ls"', True),
        ('1 + 2 & 3 == 3 && exec.file.name == "ls"', True),  # & binds tighter: 1 + (2 & 3)
        ('exec.pid + 1 == 4243 && exec.file.name == "ls"', True),
        ('exec.pid - exec.ppid == 4242 - 100 && exec.file.name == "ls"', True),
        ('exec.pid+1 == 4243 && exec.file.name == "ls"', True),
        ('process.created_at < 5s && exec.file.name == "ls"', True),
        ('process.created_at + 10s > 5s && exec.file.name == "ls"', False),  # a date: its age is -10s
        ('process.created_at - 10s > 5s && exec.file.name == "ls"', True),  # created 10s earlier: age 10s
    ],
)
def test_datadog_arithmetic(expr: str, expected: bool):
    assert ev(expr) is expected


def test_a_date_minus_a_date_is_a_number_of_nanoseconds():
    opened = event(
        "open",
        file=FileEvent(path="/etc/shadow", name="shadow", modification_time=NOW + 2 * SEC),
        proc=process(created=NOW),
    )
    assert ev("open.file.modification_time - process.created_at + 3s <= 5s", opened)
    assert not ev("open.file.modification_time - process.created_at + 3s <= 1s", opened)
    assert ev("open.file.modification_time - process.created_at == 2s", opened)


def test_parse_groups_left():
    node = parse("1 - 2 + 3 == 2").node
    assert node.left.op == "+" and node.left.left.op == "-"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("exec.file.name + 1 == 2", "'+' needs integers, but 'exec.file.name' is a string"),
        (
            "process.ancestors.pid - 1 == 2",
            "'-' needs integers, but 'process.ancestors.pid' is an integer list",
        ),
        ("exec.pid + == 2", "expected a value"),
    ],
)
def test_errors(expr: str, message: str):
    with pytest.raises(SeclError) as exc:
        compile_expression(expr)
    assert message in exc.value.message
