"""The server's malloc tuning: big intake buffers come from the heap and stay there once freed."""

import ctypes
import platform

import pytest

from opencws.backend.server import MMAP_THRESHOLD_BYTES, tune_malloc


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
    )]  # fmt: skip


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt and mallinfo2 are glibc's")
def test_a_large_buffer_is_served_from_the_heap_once_tuned() -> None:
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _Mallinfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    assert tune_malloc()
    size = 16 << 20  # above glibc's default mmap threshold (128 KiB, at most 32 MiB), below ours
    assert size < MMAP_THRESHOLD_BYTES
    before = libc.mallinfo2().hblkhd  # bytes in mmapped blocks
    p = libc.malloc(size)
    try:
        assert p
        assert libc.mallinfo2().hblkhd == before  # not a fresh mapping: heap memory
    finally:
        libc.free(p)
