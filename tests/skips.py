"""One rule for tests that need something of the machine: skip saying why on a user's machine, fail instead
where an environment variable says the thing must be there (CI sets OPENCWS_REQUIRE_KERNEL=1)."""

from __future__ import annotations

import os

import pytest


def skip_or_fail(reason: str, required_by: str) -> None:
    """Fail when the environment variable `required_by` is 1, else skip; the message says why either way."""
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{reason} ({required_by}=1)")
    pytest.skip(reason)
