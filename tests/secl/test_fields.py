"""Field helpers: values derived from the event (flags among the arguments)."""

from __future__ import annotations

from opencws.secl.fields import args_flags


def test_args_flags_are_taken_from_dashed_arguments_only():
    args = ["ls", "-la", "--color=auto", "--all", "x", "ab", "-", "--", "a-b"]
    assert args_flags(args) == ["l", "a", "la", "all"]
    assert args_flags(None) == [] and args_flags(["-x=1", "-"]) == []
