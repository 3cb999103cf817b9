"""What the machine allows, and the errors a user sees when it does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from opencws.probe.capabilities import bpf_refused_reason
from opencws.probe.errors import ProbeError
from opencws.probe.eventtypes import EventType
from opencws.probe.hooks import HOOKS, hooks_needed


@pytest.mark.kernel
def test_bpf_is_allowed_here(require_kernel):
    assert bpf_refused_reason() is None


def test_only_the_process_hooks_are_needed_without_syscall_types():
    assert [h.program for h in hooks_needed(set())] == ["sched_exec", "sched_fork", "sched_exit"]
    assert "sys_enter" not in [h.program for h in hooks_needed({EventType.OPEN})]
    assert {h.program for h in hooks_needed(set(EventType))} == {h.program for h in HOOKS}


@pytest.mark.kernel
def test_a_missing_object_file_is_a_clear_error(require_kernel, tmp_path):
    from opencws.probe.probe import Probe

    with pytest.raises(ProbeError, match="cannot open BPF object"):
        Probe(tmp_path / "nope.o").start()


def _refused_load(tmp_path: Path, body: str) -> str:
    """The ProbeError of loading a one-program object with this body (compiled against the probe's vmlinux.h)."""
    import subprocess

    from opencws.probe.build import BPF_DIR, object_path
    from opencws.probe.probe import Probe

    object_path()  # builds build/vmlinux.h too when this runs first on a fresh clone
    src = tmp_path / "bad.bpf.c"
    src.write_text('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC("license") = "GPL";\n'
                   f'SEC("raw_tracepoint/sys_enter") int bad(void *ctx) {{ {body} }}\n')
    obj = tmp_path / "bad.o"
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", f"-I{BPF_DIR / 'build'}", "-c", str(src), "-o",
                    str(obj)], check=True)
    with pytest.raises(ProbeError) as info:
        Probe(obj).start()
    return str(info.value)


@pytest.mark.kernel
def test_a_program_the_verifier_refuses_shows_the_end_of_its_log(require_kernel, tmp_path):
    message = _refused_load(tmp_path, "return *(volatile int *)((long)ctx + 4096);")
    assert "verifier" in message and "END PROG LOAD LOG" in message
    assert "invalid bpf_context access" in message  # the verifier's reason itself


@pytest.mark.kernel
def test_the_reason_is_shown_even_at_the_end_of_a_long_verifier_log(require_kernel, tmp_path):
    # 400 steps the verifier logs one by one (a log of about 100 kB), then a bad access
    message = _refused_load(tmp_path, "volatile __u64 x = 0;\n#pragma unroll\nfor (int i = 0; i < 400; i++) "
                                      "x += i * 3;\nreturn *(volatile int *)((long)ctx + 4096);")
    assert "invalid bpf_context access" in message


def test_not_root_is_reported(monkeypatch):
    from opencws.probe import capabilities

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    capabilities.bpf_refused_reason.cache_clear()
    try:
        assert "not root" in capabilities.bpf_refused_reason()
    finally:
        capabilities.bpf_refused_reason.cache_clear()


@pytest.mark.parametrize(("caps", "missing"), [
    ({21}, None), ({38, 39}, None), ({39}, "without CAP_PERFMON (or CAP_SYS_ADMIN)"),
    (set(), "without CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)"),
])
def test_missing_capabilities_are_named(monkeypatch, caps, missing):
    from opencws.probe import capabilities

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    status = f"Name:\tx\nCapEff:\t{sum(1 << c for c in caps):016x}\n"
    problem = capabilities.missing_capabilities(status)
    assert problem is None if missing is None else missing in problem


@pytest.mark.kernel
def test_root_without_the_bpf_capabilities_gets_a_clear_error(require_kernel):
    import shutil
    import subprocess
    import sys

    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to drop capabilities")
    drop = "-bpf,-sys_admin,-perfmon"
    proc = subprocess.run(["setpriv", "--bounding-set", drop, "--inh-caps", drop, sys.executable, "-m",
                           "opencws.cli.main", "probe", "trace", "--duration", "0.1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "root, but without CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)" in proc.stderr
