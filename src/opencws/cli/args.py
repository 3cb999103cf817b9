"""Argument types shared by the commands: a bad value is a usage error (exit 2), never a traceback."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """A positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value
