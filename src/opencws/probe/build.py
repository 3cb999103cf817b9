"""Locate the compiled BPF object, building it with make when it is missing or stale."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from opencws.probe.errors import ProbeError

BPF_DIR = Path(__file__).resolve().parent / "bpf"
OBJECT = BPF_DIR / "build" / "probe.bpf.o"
SOURCES = (BPF_DIR / "probe.bpf.c", BPF_DIR / "probe.h", BPF_DIR / "ddcontext.h")


def _stale(obj: Path) -> bool:
    if not obj.exists():
        return True
    mtime = obj.stat().st_mtime
    return any(src.exists() and src.stat().st_mtime > mtime for src in SOURCES)


def object_path(build: bool = True) -> Path:
    """The probe's BPF object; built with `make -C bpf` when absent or older than its sources."""
    if not _stale(OBJECT):
        return OBJECT
    if not build:
        raise ProbeError(f"{OBJECT} is not built: run scripts/setup.sh (or make -C {BPF_DIR})")
    missing = [tool for tool in ("make", "clang") if shutil.which(tool) is None]
    if missing:
        raise ProbeError(f"cannot build {OBJECT}: {', '.join(missing)} not installed; run scripts/setup.sh")
    proc = subprocess.run(["make", "-s", "-C", str(BPF_DIR)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ProbeError(f"building the BPF object failed:\n{(proc.stderr or proc.stdout)[-3000:]}")
    return OBJECT
