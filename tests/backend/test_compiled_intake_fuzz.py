"""A few seconds of the differential fuzzer of the compiled intake pass (`intake_fuzz.py`): on mutated agent
lines it says None, or makes what the Python hot path makes and only what the exact validator accepts.
`INTAKE_FUZZ_SECONDS` runs it longer; `intake_fuzz.py --seconds N` runs it alone."""

from __future__ import annotations

import os

import pytest

compiled_intake = pytest.importorskip("opencws.backend.compiled_intake")
if compiled_intake._intake is None:
    pytest.skip("the C extension is not built (setup.py build_ext --inplace)", allow_module_level=True)

import intake_fuzz  # noqa: E402


@pytest.mark.parametrize("seed", [1, 2])
def test_mutated_agent_lines_are_taken_as_python_takes_them_or_left_to_it(seed: int) -> None:
    tried, taken = intake_fuzz.run(float(os.environ.get("INTAKE_FUZZ_SECONDS", "2")), seed)
    assert tried > 50 and taken > 0  # (the pass takes some of them: it is exercised, not only bailing)
