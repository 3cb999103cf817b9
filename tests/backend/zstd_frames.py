"""zstd frames made by hand for the tests: bombs (RLE blocks: 4 bytes each for 128 KiB of content) that state
their size or not, without compressing anything."""

from __future__ import annotations

BLOCK = 128 << 10


def rle_bomb(total: int, *, stated: bool, byte: bytes = b" ") -> bytes:
    """One zstd frame of `total` bytes (a multiple of 128 KiB) of `byte`, in RLE blocks; its header states the
    size when `stated` (8 bytes of Frame_Content_Size), else nothing. Its window: 2 MiB."""
    assert total % BLOCK == 0 and total > 0
    header = b"\x28\xb5\x2f\xfd" + (b"\xc0" if stated else b"\x00") + bytes([(21 - 10) << 3])
    if stated:
        header += total.to_bytes(8, "little")
    blocks = total // BLOCK
    middle = (1 << 1 | BLOCK << 3).to_bytes(3, "little") + byte
    last = (1 | 1 << 1 | BLOCK << 3).to_bytes(3, "little") + byte
    return header + middle * (blocks - 1) + last
