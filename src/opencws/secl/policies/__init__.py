"""The policies shipped with OpenCWS."""

from pathlib import Path

POLICIES = Path(__file__).resolve().parent
DEFAULT_POLICY = POLICIES / "default.policy"
"""The project's default policy."""
DEFAULT_SUITE = POLICIES / "default.tests.yaml"
"""The default policy's rule test suite (`opencws rules test`)."""
