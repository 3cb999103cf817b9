"""The policies shipped with OpenCWS."""

from pathlib import Path

DEFAULT_POLICY = Path(__file__).resolve().parent / "default.policy"
"""The project's default policy (its test suite is `default.tests.yaml` beside it)."""
