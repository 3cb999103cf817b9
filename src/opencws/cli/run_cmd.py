"""`opencws run`: the main job, a thin alias of `opencws agent run` (same options)."""

from __future__ import annotations

import argparse

from opencws.cli import agent_cmd

HELP = "run the main job: the agent with the default policy, printing CWS events (alias of `agent run`)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = agent_cmd.config_help()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    agent_cmd.add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return agent_cmd.run_agent(args)
