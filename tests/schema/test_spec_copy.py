"""The specification the tests compare with (tests/data/spec/) is the reference one, byte for byte."""

from __future__ import annotations


def test_the_copied_specification_files_are_the_reference_ones(spec_dir, shared_spec_dir):
    copied = sorted(p.name for p in spec_dir.iterdir() if p.name != "README.md")
    assert copied == sorted(p.name for p in shared_spec_dir.iterdir() if p.name != "README.md")
    for name in copied:
        assert (spec_dir / name).read_bytes() == (shared_spec_dir / name).read_bytes(), name
