"""`opencws run`: the main job."""

from __future__ import annotations

import argparse

HELP = "run the main job (until the agent lands: a demonstration of what exists)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print("opencws: nothing to run yet")
    return 0
