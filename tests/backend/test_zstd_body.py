"""zstd bodies: decoded whole across frames, bounded without allocating what a frame states, and refused
precisely when cut, corrupt, followed by garbage or needing too large a window."""

from __future__ import annotations

import gzip
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest
import zstandard
from backend_corpus import event_mix
from zstd_frames import rle_bomb

from opencws.backend.zstd_body import MAX_WINDOW_BYTES, Refused, decompress

MiB = 1 << 20


def jsonl(n: int, seed: int = 1) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in event_mix(n, seed=seed))


def refused(body: bytes, max_bytes: int = 4 * MiB) -> Refused:
    with pytest.raises(Refused) as e:
        decompress(body, max_bytes)
    return e.value


@pytest.mark.parametrize("level", [1, 3, 19])
def test_a_frame_is_decoded_to_exactly_what_was_compressed(level: int) -> None:
    data = jsonl(200)
    assert decompress(zstandard.ZstdCompressor(level=level).compress(data), 4 * MiB) == data


def test_several_frames_and_skippable_frames_are_one_stream() -> None:
    parts = [jsonl(20, seed=s) for s in range(3)]
    frames = [zstandard.ZstdCompressor(level=3, write_checksum=True).compress(p) for p in parts]
    skippable = (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"notes"
    body = frames[0] + skippable + frames[1] + frames[2]
    assert decompress(body, 4 * MiB) == b"".join(parts)


def test_frames_that_state_no_size_are_decoded_in_bounded_steps() -> None:
    data = jsonl(400)
    c = zstandard.ZstdCompressor(level=3, write_content_size=False).compressobj()
    body = c.compress(data) + c.flush()
    assert body[4] & 0xC0 == 0 and not body[4] & 0x20  # no Frame_Content_Size in its header
    assert decompress(body, len(data)) == data
    e = refused(body, len(data) - 1)
    assert (e.status, e.message) == (413, f"the body is larger than {len(data) - 1} bytes once decompressed")


def test_the_limit_is_exact_whether_the_size_is_stated_or_not() -> None:
    for stated in (True, False):
        bomb = rle_bomb(4 * MiB, stated=stated)
        assert decompress(bomb, 4 * MiB) == b" " * (4 * MiB)
        assert refused(bomb, 4 * MiB - 1).status == 413


def test_a_bomb_that_states_its_size_is_refused_before_anything_is_decoded() -> None:
    bomb = rle_bomb(50 * MiB, stated=True)
    assert len(bomb) < 1700  # 1.6 KB stating 50 MiB
    e = refused(bomb)
    assert (e.status, e.message) == (413, "the body is larger than 4194304 bytes once decompressed (its zstd "
                                          "frames state 52428800 bytes at least)")
    # the sizes stated by several frames add up
    e = refused(rle_bomb(3 * MiB, stated=True) * 2)
    assert e.status == 413 and "state 6291456 bytes at least" in e.message


def test_a_bomb_that_states_no_size_never_grows_the_process_past_the_limit(tmp_path: Path) -> None:
    """2 GiB in 64 KB, refused at 4 MiB: the process's peak memory grows by far less than what the frame holds
    (python-zstandard's one-shot decompress would allocate it all)."""
    script = textwrap.dedent("""
        import resource, sys
        sys.path[:0] = sys.argv[1:]
        from zstd_frames import rle_bomb
        from opencws.backend.zstd_body import Refused, decompress
        bomb = rle_bomb(2 << 30, stated=False)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            decompress(bomb, 4 << 20)
        except Refused as e:
            print(e.status, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    here = Path(__file__).resolve().parent
    out = subprocess.run([sys.executable, "-c", script, str(here), str(here.parent.parent / "src")],
                         capture_output=True, text=True, timeout=120, check=True).stdout.split()
    status, grown_mib = int(out[0]), int(out[1])
    assert status == 413
    assert grown_mib < 64, f"the peak RSS grew by {grown_mib} MiB for a limit of 4 MiB"


def test_a_body_cut_anywhere_is_refused_as_truncated_except_between_frames() -> None:
    first = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(jsonl(30))
    second = zstandard.ZstdCompressor(level=3).compress(jsonl(30, seed=2))
    body = first + second
    for cut in range(1, len(body)):
        if cut == len(first):
            assert decompress(body[:cut], 4 * MiB) == jsonl(30)
            continue
        e = refused(body[:cut])
        assert e.status == 400 and e.message.startswith("invalid zstd body: "), (cut, e.message)
        if cut >= 4 and cut != len(first) + 1 and not len(first) < cut < len(first) + 4:
            assert "truncated: frame" in e.message, (cut, e.message)


def test_a_corrupt_frame_is_refused() -> None:
    body = bytearray(zstandard.ZstdCompressor(level=3, write_checksum=True).compress(jsonl(50)))
    for at in (len(body) // 3, len(body) // 2, len(body) - 2):
        bad = bytearray(body)
        bad[at] ^= 0x5A
        e = refused(bytes(bad))
        assert e.status == 400 and e.message.startswith("invalid zstd body: "), e.message


def test_bytes_after_the_last_frame_are_refused() -> None:
    frame = zstandard.ZstdCompressor(level=3).compress(b'{"a": 1}\n')
    e = refused(frame + b"garbage")
    assert (e.status, e.message) == (400, f"invalid zstd body: 7 bytes after frame 1 (from byte {len(frame)}) "
                                          "are not a zstd frame")
    assert refused(frame + b"\x00").status == 400
    assert refused(frame + frame + b"\n").message.endswith("1 bytes after frame 2 (from byte "
                                                           f"{2 * len(frame)}) are not a zstd frame")


def test_a_body_that_is_not_zstd_or_is_empty_is_refused() -> None:
    e = refused(gzip.compress(b"{}"))
    assert (e.status, e.message) == (400, "invalid zstd body: not a zstd frame (it starts with 1f 8b 08 00, not "
                                          "28 b5 2f fd)")
    assert refused(b"").message == "invalid zstd body: empty (not even one frame)"


def test_a_frame_needing_a_window_over_8_mib_is_refused() -> None:
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=24, write_content_size=False)
    c = zstandard.ZstdCompressor(compression_params=params).compressobj()
    body = c.compress(b"{}\n") + c.flush()
    e = refused(body)
    assert (e.status, e.message) == (400, f"invalid zstd body: frame 1 needs a window of {16 * MiB} bytes (at most "
                                          f"{MAX_WINDOW_BYTES}: RFC 9659; zstd levels up to 19 stay within it)")


def test_reserved_bits_and_block_types_are_refused() -> None:
    frame = bytearray(zstandard.ZstdCompressor(level=3).compress(b'{"a": 1}\n'))
    bad = bytearray(frame)
    bad[4] |= 0x08
    assert refused(bytes(bad)).message == "invalid zstd body: frame 1 (byte 0) sets a reserved bit"
    reserved_block = b"\x28\xb5\x2f\xfd\x00\x58" + (1 | 3 << 1 | 8 << 3).to_bytes(3, "little") + b"x" * 8
    assert refused(reserved_block).message == ("invalid zstd body: frame 1 has a block of the reserved type "
                                               "(byte 6)")
