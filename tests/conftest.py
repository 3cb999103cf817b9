"""Shared fixtures.

Kernel tests need root, BTF and a kernel that accepts BPF programs. On a user's machine without them they
skip with the reason; with OPENCWS_REQUIRE_KERNEL=1 (set by .ci/run) a missing capability is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


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
    if reason is None:
        return
    if os.environ.get("OPENCWS_REQUIRE_KERNEL") == "1":
        pytest.fail(f"kernel test cannot run: {reason} (OPENCWS_REQUIRE_KERNEL=1)")
    pytest.skip(f"kernel test skipped: {reason}")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent")
    return SHARED
