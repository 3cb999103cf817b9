"""ctypes bindings for the few libbpf 1.x functions the probe uses (Debian's libbpf.so.1).

libbpf's log goes through `libbpf_set_print`; we keep the recent lines so that a refused program can be
reported with the end of the verifier log.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import mmap
import os
import threading

from opencws.probe.errors import ProbeError

c_void_p = ctypes.c_void_p
c_int = ctypes.c_int
c_char_p = ctypes.c_char_p

PRINT_FN = ctypes.CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)
SAMPLE_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p, ctypes.c_size_t)

LOG_WARN, LOG_INFO, LOG_DEBUG = 0, 1, 2

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_libc = ctypes.CDLL(None, use_errno=True)
_libc.vsnprintf.argtypes = [c_void_p, ctypes.c_size_t, c_char_p, c_void_p]
_libc.vsnprintf.restype = c_int
_PRINT_BYTES = 1 << 24
"""libbpf prints a refused program's whole verifier log as one message (its log buffer is 16 MiB at most); a
va_list is read once, so the buffer must hold it all: anonymous memory, whose pages exist once written."""
_print_buf: mmap.mmap | None = None

log_lines: collections.deque[str] = collections.deque(maxlen=4000)
"""Recent libbpf log lines (warnings, info and the verifier log of a failed load)."""


@PRINT_FN
def _print(level: int, fmt: bytes, ap: int) -> int:
    if level >= LOG_DEBUG:
        return 0
    global _print_buf
    if _print_buf is None:
        _print_buf = mmap.mmap(-1, _PRINT_BYTES)
    address = ctypes.addressof(ctypes.c_char.from_buffer(_print_buf))
    n = _libc.vsnprintf(address, _PRINT_BYTES, fmt, ap)
    if n > 0:
        text = _print_buf[:min(n, _PRINT_BYTES - 1)].decode(errors="replace")
        log_lines.extend(text.splitlines())
    return 0


def _sig(lib: ctypes.CDLL, name: str, restype, *argtypes) -> None:
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


def lib() -> ctypes.CDLL:
    """The loaded libbpf, with signatures declared and the log captured."""
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        path = ctypes.util.find_library("bpf")
        candidates = ["libbpf.so.1", path] if path else ["libbpf.so.1"]
        last: OSError | None = None
        for cand in candidates:
            try:
                lb = ctypes.CDLL(cand, use_errno=True)
                break
            except OSError as exc:
                last = exc
        else:
            raise ProbeError(f"libbpf not found ({last}): install Debian's libbpf1 (scripts/setup.sh does it)")
        _sig(lb, "libbpf_set_print", c_void_p, PRINT_FN)
        _sig(lb, "bpf_object__open_file", c_void_p, c_char_p, c_void_p)
        _sig(lb, "bpf_object__load", c_int, c_void_p)
        _sig(lb, "bpf_object__close", None, c_void_p)
        _sig(lb, "bpf_object__find_program_by_name", c_void_p, c_void_p, c_char_p)
        _sig(lb, "bpf_object__find_map_by_name", c_void_p, c_void_p, c_char_p)
        _sig(lb, "bpf_map__fd", c_int, c_void_p)
        _sig(lb, "bpf_map__set_max_entries", c_int, c_void_p, ctypes.c_uint32)
        _sig(lb, "bpf_map__max_entries", ctypes.c_uint32, c_void_p)
        _sig(lb, "bpf_map__set_pin_path", c_int, c_void_p, c_char_p)
        _sig(lb, "bpf_program__attach", c_void_p, c_void_p)
        _sig(lb, "bpf_program__set_autoload", c_int, c_void_p, ctypes.c_bool)
        _sig(lb, "bpf_program__name", c_char_p, c_void_p)
        _sig(lb, "bpf_link__destroy", c_int, c_void_p)
        _sig(lb, "bpf_map_update_elem", c_int, c_int, c_void_p, c_void_p, ctypes.c_uint64)
        _sig(lb, "bpf_map_lookup_elem", c_int, c_int, c_void_p, c_void_p)
        _sig(lb, "bpf_map_delete_elem", c_int, c_int, c_void_p)
        _sig(lb, "bpf_map_get_next_key", c_int, c_int, c_void_p, c_void_p)
        _sig(lb, "ring_buffer__new", c_void_p, c_int, SAMPLE_FN, c_void_p, c_void_p)
        _sig(lb, "ring_buffer__poll", c_int, c_void_p, c_int)
        _sig(lb, "ring_buffer__consume", c_int, c_void_p)
        _sig(lb, "ring_buffer__free", None, c_void_p)
        _sig(lb, "libbpf_num_possible_cpus", c_int)
        lb.libbpf_set_print(_print)
        _lib = lb
        return lb


def errno_message(default: int = 0) -> tuple[int, str]:
    err = ctypes.get_errno() or default
    return err, os.strerror(err) if err else "unknown error"


def verifier_tail(lines: int = 25) -> str:
    """The end of the last verifier log libbpf printed (or of its log when there is none)."""
    logs = list(log_lines)
    start = None
    for i in range(len(logs) - 1, -1, -1):
        if "BEGIN PROG LOAD LOG" in logs[i]:
            start = i
            break
    chosen = logs[start:] if start is not None else logs
    chosen = [ln for ln in chosen if "CO-RE relocating" not in ln]
    return "\n".join(chosen[-lines:])
