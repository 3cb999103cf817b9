"""The per-thread records the OpenCWS probe reads: each thread's current span id and trace id, in its own memory.

A record is 16 bytes: the span id, then the low 64 bits of the trace id (native little-endian u64s; span id 0:
in no span). A thread registers its record with the probe once, by the marker syscall the probe watches
(`prctl(DD_PRCTL_OPTION, address, DD_PRCTL_MAGIC, 0, 0)`, see `opencws/probe/bpf/ddcontext.h`; the kernel itself
refuses the option with EINVAL, so the call is harmless without the agent). From then on publishing a span is two
stores into the record: no syscall, no network.

Why one record per thread (and not one per process with a TLS offset): Python threads have no stable native TLS
address the probe could compute from the task, and a thread registering its own record keys it by the tid the
kernel reports in every event. Records are never freed while their thread may run (the probe may read one at any
of the thread's syscalls): a record is dropped only once its thread is gone (the kernel forgot it at exit).
"""

from __future__ import annotations

import ctypes
import os
import threading

DD_PRCTL_OPTION = 0x4F435753
"""prctl option ("OCWS") the probe recognises at sys_exit (bpf/ddcontext.h)."""
DD_PRCTL_MAGIC = 0x3130787464646464
"""Second argument check, and the record layout's version ("ddddtx01")."""
RECORD_SIZE = 16
TRACE_ID_MASK = (1 << 64) - 1
"""Trace ids are 128 bits in OpenTelemetry; the CWS event's `dd.trace_id` is their low 64 bits (as Datadog
keeps 128-bit ids: the low half is the 64-bit trace id older tracers use)."""

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


class Record:
    """One thread's record: `ids[0]` the span id, `ids[1]` the trace id's low 64 bits (a memoryview of u64)."""

    __slots__ = ("_buf", "_cell", "address", "ids", "tid")

    def __init__(self, tid: int):
        self.tid = tid
        self._buf = bytearray(RECORD_SIZE)  # (exported by the views below: never resized, never moved)
        self._cell = (ctypes.c_char * RECORD_SIZE).from_buffer(self._buf)
        self.address = ctypes.addressof(self._cell)
        self.ids = memoryview(self._buf).cast("Q")


class Registry:
    """The records of this process's threads, registered with the probe by their own thread."""

    PRUNE_ABOVE = 256
    """Records of threads gone are dropped when a new thread registers and more than this many exist."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[int, Record] = {}
        self.local = threading.local()
        """Per thread: `record` and its `ids` (set together by the thread's first `current()`)."""

    def current(self) -> Record:
        """The calling thread's record (made and registered on the thread's first call)."""
        try:
            return self.local.record
        except AttributeError:
            return self._register()

    def _register(self) -> Record:
        tid = threading.get_native_id()
        record = Record(tid)
        with self._lock:
            if len(self._records) > self.PRUNE_ABOVE:
                self._prune()
            self._records[tid] = record
        _prctl(DD_PRCTL_OPTION, record.address, DD_PRCTL_MAGIC, 0, 0)
        self.local.record = record
        self.local.ids = record.ids
        return record

    def _prune(self) -> None:
        for tid in list(self._records):
            if not os.path.exists(f"/proc/self/task/{tid}"):
                del self._records[tid]

    def unregister_all(self) -> int:
        """Zero every record and unregister every thread of this process from the calling one (the kernel
        accepts a tid of the same process); how many there were."""
        with self._lock:
            records, self._records = self._records, {}
            self.local = threading.local()  # (a new install binds the new one: every thread registers again)
        for record in records.values():
            record.ids[0] = 0
            record.ids[1] = 0
            _prctl(DD_PRCTL_OPTION, 0, DD_PRCTL_MAGIC, record.tid, 0)
        return len(records)

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's records belong to the parent's threads (the child's one thread has a
        new tid and registers its own record on its next publication)."""
        self._lock = threading.Lock()
        self._records = {}
        for name in ("record", "ids"):  # (the child's one thread: the local object stays, the hook holds it)
            self.local.__dict__.pop(name, None)

    def registered_tids(self) -> list[int]:
        with self._lock:
            return sorted(self._records)
