"""Batch bodies: zstd or gzip, told apart by their first bytes, read back whole or refused when damaged."""

from __future__ import annotations

import zlib

import pytest
import zstandard

from opencws.agent import batch_coding as bc

LINES = [b'{"rule_id": "r%d", "event": {"process": {"pid": %d}}}' % (i, i) for i in range(50)]


@pytest.mark.parametrize("coding", ["zstd", "gzip"])
def test_a_body_holds_its_lines_each_ended_by_a_newline_and_says_its_coding(coding: str) -> None:
    body = bc.compress(LINES, coding)
    assert bc.coding_of(body) == coding
    assert bc.decompress(body) == b"".join(x + b"\n" for x in LINES)
    assert bc.lines_of(body) == LINES


def test_a_zstd_body_is_one_frame_that_states_its_size() -> None:
    body = bc.compress(LINES, "zstd")
    params = zstandard.get_frame_parameters(body)
    assert params.content_size == sum(len(x) + 1 for x in LINES)
    assert zstandard.ZstdDecompressor().decompress(body) == bc.decompress(body)


def test_a_body_of_an_older_agent_is_gzip_and_is_read_as_such() -> None:
    c = zlib.compressobj(3, zlib.DEFLATED, 31)  # what every agent before zstd wrote
    older = c.compress(b"\n".join(LINES)) + c.compress(b"\n") + c.flush()
    assert bc.coding_of(older) == "gzip" and bc.lines_of(older) == LINES


def test_recoding_keeps_the_lines() -> None:
    body = bc.compress(LINES, "zstd")
    gz = bc.recoded(body, "gzip")
    assert bc.coding_of(gz) == "gzip" and bc.lines_of(gz) == LINES
    assert bc.recoded(gz, "gzip") is gz


def test_several_zstd_frames_are_one_body() -> None:
    body = bc.compress(LINES[:10], "zstd") + bc.compress(LINES[10:], "zstd")
    assert bc.lines_of(body) == LINES


@pytest.mark.parametrize(("body", "message"), [
    (b"", "neither zstd nor gzip (it starts with nothing)"),
    (b"[{}]", "neither zstd nor gzip (it starts with 5b 7b 7d 5d)"),
    (bc.compress(LINES, "zstd")[:-5], "a zstd body cut short"),
    (bc.compress(LINES, "zstd") + b"\x00\x00\x00\x00\x00", "a zstd body that does not decompress: "),
    (bc.compress(LINES, "gzip")[:-5], "a gzip body that does not decompress: "),
])  # fmt: skip
def test_a_damaged_body_is_a_precise_error(body: bytes, message: str) -> None:
    with pytest.raises(bc.BatchCodingError) as e:
        bc.decompress(body)
    assert str(e.value).startswith(message)


def test_an_unknown_coding_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown compression 'br' \(expected zstd or gzip\)"):
        bc.compress(LINES, "br")
