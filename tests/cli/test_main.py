"""Every command answers --help; usage errors exit 2."""

from __future__ import annotations

import argparse

import pytest

from opencws.cli.main import COMMANDS, build_parser, main


def _subcommands(parser: argparse.ArgumentParser) -> list[str]:
    return [
        name
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    ]


def _all_command_lines() -> list[list[str]]:
    lines = []
    for name in COMMANDS:
        _, module = build_parser([name])
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        lines.append([name])
        lines += [[name, sub] for sub in _subcommands(parser)]
    return lines


@pytest.mark.parametrize("argv", _all_command_lines(), ids=" ".join)
def test_every_command_and_subcommand_prints_help_and_exits_zero(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    assert "usage: opencws " + " ".join(argv) in capsys.readouterr().out


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "usage: opencws" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["frobnicate"], ["schema", "yaml"], ["validate", "--nope"]])
def test_unknown_commands_and_options_exit_two(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
