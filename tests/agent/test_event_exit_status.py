"""The agent's events carry an exit's wait status for the rules (`exit.cause`, `exit.code`), never serialized."""

from __future__ import annotations

from opencws.agent.event import LazyEvent
from opencws.probe import events as kev
from opencws.resolvers import Resolvers
from opencws.secl import compile_expression


def exit_event(status: int) -> kev.ExitEvent:
    return kev.ExitEvent(pid=900, tid=900, ppid=1, ktime_ns=5, cgroup_id=0, uid=0, gid=0, comm="x", status=status)


def test_a_core_dump_and_a_plain_exit_are_told_apart():
    r = Resolvers(None, None, None)
    dumped = LazyEvent(exit_event(0x80 | 6), r, None)
    plain = LazyEvent(exit_event(1 << 8), r, None)
    rule = compile_expression("exit.cause == COREDUMPED && exit.code == 6")
    assert rule.fn(dumped) and not rule.fn(plain)
    assert compile_expression("exit.cause == EXITED && exit.code == 1").fn(plain)
    assert dumped.exit_status == 0x86
