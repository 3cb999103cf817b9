"""Shared fixtures.

Kernel tests need root, BTF and a kernel that accepts BPF programs. On a user's machine without them they
skip with the reason; with OPENCWS_REQUIRE_KERNEL=1 (set by .ci/run) a missing capability is a failure.

The event specification the tests compare with is in tests/data/spec/ (`spec_dir`). The third-party policy
corpus is not part of the project: it is read from shared/compat/ beside the checkout, or from
$OPENCWS_SHARED/compat/ (`compat_dir`); where it is absent its tests skip saying so, and with
OPENCWS_REQUIRE_SHARED=1 (for a machine known to have it) they fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skips import skip_or_fail

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "tests" / "data" / "spec"
"""The reference files of the event specification (the project's contract), copied from shared/spec/."""


def shared_path() -> Path:
    """The read-only reference folder: $OPENCWS_SHARED, else shared/ beside the checkout."""
    return Path(os.environ.get("OPENCWS_SHARED") or REPO.parent / "shared")


def shared_missing(what: str) -> Path:
    """shared/<what> when it is there; else skip (fail with OPENCWS_REQUIRE_SHARED=1) saying what to do."""
    folder = shared_path() / what
    if folder.is_dir():
        return folder
    skip_or_fail(f"{folder} is absent (reference data kept beside the project, not in it): set "
                 "OPENCWS_SHARED=/path/to/shared, or place the checkout beside shared/", "OPENCWS_REQUIRE_SHARED")


def kernel_missing() -> str | None:
    """Return why kernel tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "not root"
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "no BTF at /sys/kernel/btf/vmlinux"
    try:
        from opencws.probe.capabilities import bpf_refused_reason
    except ImportError:
        return None
    return bpf_refused_reason()


@pytest.fixture(scope="session")
def require_kernel() -> None:
    reason = kernel_missing()
    if reason is not None:
        skip_or_fail(f"kernel test cannot run: {reason}", "OPENCWS_REQUIRE_KERNEL")


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    return SPEC


@pytest.fixture(scope="session")
def shared_spec_dir() -> Path:
    """shared/spec/, of which tests/data/spec/ holds copies."""
    return shared_missing("spec")


@pytest.fixture(scope="session")
def compat_dir() -> Path:
    """Datadog's policies (shared/compat/), third-party test data."""
    return shared_missing("compat")
