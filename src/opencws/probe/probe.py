"""The probe: loads the BPF object, attaches the hooks the enabled event types need, reads the ring buffer.

    with Probe() as probe:
        probe.set_event_types({"open", "unlink"})     # exec, fork, exit always flow
        for event in probe.poll(timeout_ms=100):
            ...

Filtering in the kernel (the policy decides what to push here):
- `set_event_types`: types no rule uses return at once in the kernel (and a hook no type needs is detached);
- `set_approvers(type, basenames=, paths=, flags_mask=)`: once a type has approvers, only approved events pass;
- `add_discarder_inode` / `add_discarder_pid`: never send these (inode+mount+identity, or process) for these types,
  until `invalidate_discarders()` (or a mount change, which the kernel does itself; unlink and rename drop
  the discarder of the inode they touch).
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from opencws.probe import credcache, libbpf
from opencws.probe.build import object_path
from opencws.probe.capabilities import BTF_PATH, missing_capabilities
from opencws.probe.errors import DecodeError, ProbeError
from opencws.probe.events import KernelEvent
from opencws.probe.eventtypes import ALWAYS_ON, COUNTER_NAMES, EV_MAX, EventType
from opencws.probe.hooks import (
    ACTED_HOOKS,
    ACTED_TRACEPOINT,
    AT_EXIT_CAPABLE,
    EXT4_HOOKS,
    EXT4_TRACEPOINT,
    HOOKS,
    URING_HOOKS,
    URING_TRACEPOINT,
    Hook,
    hooks_needed,
)
from opencws.probe.records import MAX_FILE_RECORD, RING_PAD, decode, decode_ring
from opencws.probe.ringbuf import RingReader
from opencws.probe.syscalls import CRED_TYPES, canonical_map, interested_map, interested_map_i386

NR_SYSCALLS = 512
READ_BYTES = 2 << 20
"""Records decoded by one `poll` of the mmap reader, at most (about 6,000 file events)."""
_U32 = struct.Struct("<I")
_ENABLED = 1
_AT_EXIT = 2
"""`enabled` map values (probe.bpf.c ENABLED, AT_EXIT)."""
_U64 = struct.Struct("<Q")
_DISCARDER = struct.Struct("<II")
_DD_THREAD = struct.Struct("<QQII")  # struct dd_thread (bpf/ddcontext.h): address, start time, pid
GENERATION_ALWAYS = 0xFFFFFFFF
"""A discarder of this generation survives every invalidation (probe.h)."""
_INODE_KEY = struct.Struct("<QII")

APPROVERS_ACTIVE = 1
APPROVE_BY_PATH = 2
"""approver_active bits: the type needs an approver; some are exact paths (the kernel then resolves the full
path before deciding)."""

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3


def fnv1a64(data: bytes) -> int:
    """The hash the kernel computes over basenames and paths for the approver maps."""
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


@dataclass(frozen=True, slots=True)
class Counters:
    seen: int
    filtered: int
    sent: int
    lost: int


def io_uring_traceable() -> bool:
    """The kernel has io_uring's tracepoints (tracefs mounted first)."""
    return os.path.exists(URING_TRACEPOINT)


def _ensure_mounted(target: str, fstype: str) -> None:
    if os.path.ismount(target):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    os.makedirs(target, exist_ok=True)
    if libc.mount(fstype.encode(), target.encode(), fstype.encode(), 0, None) != 0:
        err = ctypes.get_errno()
        raise ProbeError(f"cannot mount {fstype} at {target}: {os.strerror(err)} "
                         f"(run as root, or mount it: mount -t {fstype} {fstype} {target})")


def _bitmask(types: Iterable[str | int | EventType] | None) -> int:
    if types is None:
        return (1 << EV_MAX) - 1
    mask = 0
    for t in types:
        mask |= 1 << EventType.parse(t)
    return mask


class _Map:
    """A BPF map by fd, with bytes keys and values."""

    def __init__(self, fd: int, name: str, value_size: int, percpu: int = 0):
        self.fd = fd
        self.name = name
        self.value_size = value_size
        self.percpu = percpu

    def update(self, key: bytes, value: bytes) -> None:
        lb = libbpf.lib()
        if lb.bpf_map_update_elem(self.fd, key, value, 0) != 0:
            _, msg = libbpf.errno_message()
            raise ProbeError(f"updating map {self.name}: {msg}")

    def lookup(self, key: bytes) -> bytes | None:
        size = self.value_size * max(self.percpu, 1)
        buf = ctypes.create_string_buffer(size)
        if libbpf.lib().bpf_map_lookup_elem(self.fd, key, buf) != 0:
            return None
        return buf.raw

    def delete(self, key: bytes) -> None:
        libbpf.lib().bpf_map_delete_elem(self.fd, key)


def chrooted_tasks(proc: Path = Path("/proc")) -> Iterator[tuple[int, str]]:
    """(tid, root) of each thread whose root is not "/" (a thread can chroot alone after unshare(CLONE_FS)); a
    root that cannot be read for another reason than the task being gone is given as "unreadable: <why>" and
    counts as one (so that no discarder ever hides what such a task opens)."""
    for task in proc.glob("[0-9]*/task/[0-9]*"):
        try:
            root = os.readlink(task / "root")
        except (FileNotFoundError, ProcessLookupError):  # gone
            continue
        except OSError as exc:
            root = f"unreadable: {exc.strerror}"
        if root != "/":
            yield int(task.name), root


DD_THREADS_PIN = Path("/sys/fs/bpf/opencws/dd_threads_v1")
"""Where the dd context registrations live (bpf/ddcontext.h): pinned, so that a restarted agent still knows the
threads that registered before (an application registers each thread once). A stale entry is harmless: it is
checked against its thread's start time. The suffix is the layout's version (a new layout, a new map)."""


def _pin_dd_threads(lb: ctypes.CDLL, obj: int) -> None:
    m = lb.bpf_object__find_map_by_name(obj, b"dd_threads")
    if m:
        DD_THREADS_PIN.parent.mkdir(exist_ok=True)
        lb.bpf_map__set_pin_path(m, os.fsencode(DD_THREADS_PIN))


class Probe:
    """The kernel capture layer. Not thread-safe: one thread polls."""

    def __init__(self, object_file: str | os.PathLike[str] | None = None, *,
                 ring_buffer_bytes: int | None = None,
                 event_types: Iterable[str | int | EventType] | None = None,
                 reader: str = "mmap", lazy: bool = True):
        """reader: `mmap` reads the ring buffer pages directly (fast); `libbpf` uses ring_buffer__poll with a
        ctypes callback per record. lazy (default): file events are views over the bytes read, checked in
        full at once and their fields decoded when read (see `records.decode_ring`); False: every field of
        every event decoded at once (several times dearer)."""
        self._lazy = lazy
        self._ignored_pids: set[int] = set()
        self.decode_ring = decode_ring
        """The loop the mmap reader runs: the compiled one when built (see `records.DECODER`)."""
        if reader not in ("mmap", "libbpf"):
            raise ValueError(f"reader must be mmap or libbpf, not {reader!r}")
        self._reader_kind = reader
        self._ring: RingReader | None = None
        self._object_file = Path(object_file) if object_file else None
        self._ring_bytes = ring_buffer_bytes
        self._initial_types = event_types
        self._obj: int | None = None
        self._rb: int | None = None
        self._links: dict[str, int] = {}
        self._maps: dict[str, _Map] = {}
        self.io_uring = False
        """io_uring file operations are captured (the kernel has io_uring's tracepoints); set at start."""
        self.acted = False
        self.ext4 = False
        """The inode each covered call acted on is known from the kernel (its `timestamp` tracepoints); set at start."""
        self._pending: list[bytes] = []
        self._enabled: set[EventType] = set()
        self._at_exit: set[EventType] = set()
        self._basename_masks: dict[int, int] = {}
        self._path_masks: dict[int, int] = {}
        self._standins: set[int] = set()
        self.decode_errors = 0
        """Records that did not match their layout (see last_decode_error)."""
        self.last_decode_error: str | None = None
        self._sample_cb = libbpf.SAMPLE_FN(self._on_sample)

    # ------------------------------------------------------------------ life cycle

    def __enter__(self) -> Probe:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Load the object, create the ring buffer reader and attach the needed hooks."""
        if self._obj is not None:
            return
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        problem = missing_capabilities()
        if problem:
            raise ProbeError(problem)
        if not BTF_PATH.exists():
            raise ProbeError(f"no kernel BTF at {BTF_PATH}: the kernel needs CONFIG_DEBUG_INFO_BTF=y")
        _ensure_mounted("/sys/kernel/tracing", "tracefs")
        _ensure_mounted("/sys/fs/bpf", "bpf")
        path = self._object_file or object_path()
        lb = libbpf.lib()
        obj = lb.bpf_object__open_file(os.fsencode(path), None)
        if not obj:
            _, msg = libbpf.errno_message()
            raise ProbeError(f"cannot open BPF object {path}: {msg}")
        self._obj = obj
        # a kernel without io_uring (or without its tracepoints): the probe runs without those two programs (their
        # CO-RE reads of io_uring's requests would fail the whole load)
        self.io_uring = io_uring_traceable()
        if not self.io_uring:
            for name in URING_HOOKS:
                lb.bpf_program__set_autoload(lb.bpf_object__find_program_by_name(obj, name.encode()), False)
        _pin_dd_threads(lb, obj)
        # a kernel without the `timestamp` tracepoints (before 6.13): a rewritten path string is then told only by the
        # outcome checks (FI_REWRITTEN), not named from the kernel's inode
        self.acted = os.path.exists(ACTED_TRACEPOINT)
        if not self.acted:
            for name in ACTED_HOOKS:
                lb.bpf_program__set_autoload(lb.bpf_object__find_program_by_name(obj, name.encode()), False)
        # a kernel without ext4's tracepoints: a chown's owner before comes from the call's start alone
        self.ext4 = os.path.exists(EXT4_TRACEPOINT)
        if not self.ext4:
            for name in EXT4_HOOKS:
                lb.bpf_program__set_autoload(lb.bpf_object__find_program_by_name(obj, name.encode()), False)
        if self._ring_bytes:
            rb_map = lb.bpf_object__find_map_by_name(obj, b"events")
            lb.bpf_map__set_max_entries(rb_map, self._ring_bytes)
        libbpf.log_lines.clear()
        if lb.bpf_object__load(obj) != 0:
            err, msg = libbpf.errno_message()
            hint = ""
            if err == 1:
                hint = " (EPERM: not root, lockdown, or a program type this kernel refuses)"
            elif err == 22 or err == 13 or err == 7:
                hint = " (the verifier refused a program)"
            raise ProbeError(f"loading {path} failed: {msg}{hint}\n--- end of the libbpf/verifier log ---\n"
                             f"{libbpf.verifier_tail()}")
        ncpu = lb.libbpf_num_possible_cpus()
        sizes = {"interested": 4, "enabled": 4, "counters": 8, "approver_active": 4, "flags_approvers": 4,
                 "basename_approvers": 4, "path_approvers": 4, "discarder_inodes": 8, "discarder_pids": 8,
                 "generation": 4, "selinuxfs_mounts": 4, "pid_discarders_any": 4, "selinuxfs_standins": 4,
                 "chroot_seen": 4, "compat_canon": 4, "dd_threads": _DD_THREAD.size,
                 "cred_cache": credcache.CREDS.size}
        for name, vsize in sizes.items():
            m = lb.bpf_object__find_map_by_name(obj, name.encode())
            if not m:
                raise ProbeError(f"map {name} missing from {path}")
            self._maps[name] = _Map(lb.bpf_map__fd(m), name, vsize, percpu=ncpu if name == "counters" else 0)
        for nr, canon in canonical_map().items():
            self._maps["compat_canon"].update(_U32.pack(nr), _U32.pack(canon))
        events_map = lb.bpf_object__find_map_by_name(obj, b"events")
        events_fd = lb.bpf_map__fd(events_map)
        if self._reader_kind == "mmap":
            self._ring = RingReader(events_fd, lb.bpf_map__max_entries(events_map))
        else:
            rb = lb.ring_buffer__new(events_fd, self._sample_cb, None, None)
            if not rb:
                _, msg = libbpf.errno_message()
                raise ProbeError(f"cannot create the ring buffer reader: {msg}")
            self._rb = rb
        self.set_event_types(self._initial_types if self._initial_types is not None else list(EventType))

    def close(self) -> None:
        lb = libbpf.lib()
        for link in self._links.values():
            lb.bpf_link__destroy(link)
        self._links.clear()
        if self._rb:
            lb.ring_buffer__free(self._rb)
            self._rb = None
        if self._ring:
            self._ring.close()
            self._ring = None
        if self._obj:
            lb.bpf_object__close(self._obj)
            self._obj = None
        self._maps.clear()

    # ------------------------------------------------------------------ hooks and event types

    @property
    def attached_hooks(self) -> list[str]:
        return sorted(self._links)

    @property
    def event_types(self) -> set[EventType]:
        return set(self._enabled)

    @property
    def resolved_at_exit(self) -> set[EventType]:
        return set(self._at_exit)

    def set_event_types(self, types: Iterable[str | int | EventType], *,
                        resolve_at_exit: Iterable[str | int | EventType] = ()) -> None:
        """Enable exactly these types (plus exec, fork, exit); attach/detach hooks to match.

        resolve_at_exit: unlink, rmdir, rename resolved when the syscall returns rather than before it
        (hooks.AT_EXIT_CAPABLE: no sys_enter hook; a removed file then has its path but no inode fields)."""
        enabled = {EventType.parse(t) for t in types} | set(ALWAYS_ON)
        at_exit = {EventType.parse(t) for t in resolve_at_exit} & AT_EXIT_CAPABLE
        enabled_map = self._maps["enabled"]
        for t in EventType:
            value = (_ENABLED | (_AT_EXIT if t in at_exit else 0)) if t in enabled else 0
            enabled_map.update(_U32.pack(t), _U32.pack(value))
        creds_were_on = bool(CRED_TYPES & self._enabled)
        wanted, wanted_i386 = interested_map(enabled), interested_map_i386(enabled)
        interested = self._maps["interested"]
        for nr in range(NR_SYSCALLS):  # (one value per number: the x86_64 type | the i386 type << 8)
            interested.update(_U32.pack(nr), _U32.pack(wanted.get(nr, 0) | wanted_i386.get(nr, 0) << 8))
        self._enabled = enabled
        self._at_exit = at_exit
        needed = {h.program for h in hooks_needed(enabled, at_exit)}
        if not self.io_uring:
            needed -= URING_HOOKS
        if not self.acted:
            needed -= ACTED_HOOKS
        if not self.ext4:
            needed -= EXT4_HOOKS
        sys_exit_was_on = "sys_exit" in self._links
        for hook in HOOKS:
            if hook.program in needed and hook.program not in self._links:
                self._attach(hook)
            elif hook.program not in needed and hook.program in self._links:
                libbpf.lib().bpf_link__destroy(self._links.pop(hook.program))
        if "sys_exit" in self._links and not sys_exit_was_on:
            self._note_chroots()  # those made while sys_exit was not there to see them (it sees the next ones)
        if CRED_TYPES & enabled and not creds_were_on:
            # the cache missed the changes made while no credential type was on (or before the start)
            credcache.resync(self._maps["cred_cache"].fd)

    def detach(self, program: str) -> None:
        """Detach one attached hook until the next `set_event_types` (benchmarks: what that hook costs)."""
        link = self._links.pop(program, None)
        if link:
            libbpf.lib().bpf_link__destroy(link)

    def _note_chroots(self) -> None:
        """Tell the kernel when some process already runs in a chroot (its root is not "/"): inode discarders
        then check each task's root (see task_in_chroot in probe.bpf.c)."""
        if any(chrooted_tasks()):
            self._maps["chroot_seen"].update(_U32.pack(0), _U32.pack(1))

    def _attach(self, hook: Hook) -> None:
        lb = libbpf.lib()
        prog = lb.bpf_object__find_program_by_name(self._obj, hook.program.encode())
        if not prog:
            raise ProbeError(f"program {hook.program} missing from the BPF object")
        link = lb.bpf_program__attach(prog)
        if not link:
            _, msg = libbpf.errno_message()
            raise ProbeError(f"attaching {hook.program} to {hook.kind}/{hook.target} failed: {msg}\n"
                             f"{libbpf.verifier_tail(10)}")
        self._links[hook.program] = link

    # ------------------------------------------------------------------ reading

    def _on_sample(self, ctx: int, data: int, size: int) -> int:
        self._pending.append(ctypes.string_at(data, size))
        return 0

    def poll_raw(self, timeout_ms: int = 100, limit: int = 0) -> list[bytes]:
        """Wait up to timeout_ms for records; return the raw records (the benchmark's fast path), at most
        `limit` when given (mmap reader only)."""
        if self._ring:
            self._ring.wait(timeout_ms)
            return self._ring.read(limit)
        if not self._rb:
            raise ProbeError("the probe is not started")
        rc = libbpf.lib().ring_buffer__poll(self._rb, timeout_ms)
        if rc < 0 and -rc != 4:  # EINTR is fine
            raise ProbeError(f"ring_buffer__poll: {os.strerror(-rc)}")
        out, self._pending = self._pending, []
        return out

    def ring_positions(self) -> tuple[int, int]:
        """The mmap reader's (consumer, producer) positions: bytes read and written since the ring was made;
        their difference is what waits to be read."""
        if not self._ring:
            raise ProbeError("ring positions need the started mmap reader")
        return self._ring.consumed(), self._ring.produced()

    def decode_all(self, records: Iterable[bytes]) -> list[KernelEvent]:
        out: list[KernelEvent] = []
        for rec in records:
            try:
                out.append(decode(rec, self._lazy))
            except DecodeError as exc:
                self.decode_errors += 1
                self.last_decode_error = str(exc)
        return out

    def poll(self, timeout_ms: int = 100) -> list[KernelEvent]:
        """Decoded events available within timeout_ms (malformed records are counted, not raised).

        The mmap reader copies everything readable at once and decodes it in one loop (`decode_ring`); the
        file events it returns are views that keep that copy alive while they are."""
        ring = self._ring
        if ring is None:
            return self.decode_all(self.poll_raw(timeout_ms))
        ring.wait(timeout_ms)
        # at most READ_BYTES of records a call (the rest stays for the next): the events of one call then stay
        # in the CPU's caches; a copy that may cut a record takes MAX_FILE_RECORD more (see decode_ring)
        cons, buf, end, whole = ring.region(READ_BYTES + MAX_FILE_RECORD, RING_PAD)
        if not end:
            return []
        events, used, errors = self.decode_ring(buf, end, self._lazy, None if whole else end - MAX_FILE_RECORD)
        if not used and not whole:  # one record larger than a read: read everything there is
            cons, buf, end, whole = ring.region(0, RING_PAD)
            events, used, errors = self.decode_ring(buf, end, self._lazy)
        ring.release(cons + used)
        if errors:
            self.decode_errors += len(errors)
            self.last_decode_error = errors[-1]
        return events

    def events(self, timeout_ms: int = 100) -> Iterator[KernelEvent]:
        """Decoded events forever (stop by breaking out)."""
        while True:
            yield from self.poll(timeout_ms)

    def counters(self) -> dict[str, Counters]:
        """Per event type: seen in the kernel, filtered in the kernel, sent, lost (ring buffer full)."""
        m = self._maps["counters"]
        out: dict[str, Counters] = {}
        for t in EventType:
            values = []
            for which in range(len(COUNTER_NAMES)):
                raw = m.lookup(_U32.pack(t * len(COUNTER_NAMES) + which)) or b""
                values.append(sum(v for (v,) in _U64.iter_unpack(raw)))
            out[t.event_name] = Counters(*values)
        return out

    # ------------------------------------------------------------------ approvers

    def set_approvers(self, event_type: str | int | EventType, *, basenames: Iterable[str | bytes] = (),
                      paths: Iterable[str | bytes] = (), flags_mask: int = 0) -> None:
        """From now on, events of this type pass only if their file's basename or absolute path is one of
        these, or their flags (open flags, AT_* flags...) intersect flags_mask. Replaces earlier approvers
        of this type."""
        t = EventType.parse(event_type)
        self.clear_approvers(t)
        bit = 1 << t
        for table, values, name in ((self._basename_masks, basenames, "basename_approvers"),
                                    (self._path_masks, paths, "path_approvers")):
            for v in values:
                h = fnv1a64(os.fsencode(v))
                table[h] = table.get(h, 0) | bit
                self._maps[name].update(_U64.pack(h), _U32.pack(table[h]))
        self._maps["flags_approvers"].update(_U32.pack(t), _U32.pack(flags_mask))
        active = APPROVERS_ACTIVE | (APPROVE_BY_PATH if any(m & bit for m in self._path_masks.values()) else 0)
        self._maps["approver_active"].update(_U32.pack(t), _U32.pack(active))

    def clear_approvers(self, event_type: str | int | EventType) -> None:
        """The type passes unfiltered again (a rule of that type without approvers)."""
        t = EventType.parse(event_type)
        bit = 1 << t
        self._maps["approver_active"].update(_U32.pack(t), _U32.pack(0))
        self._maps["flags_approvers"].update(_U32.pack(t), _U32.pack(0))
        for table, name in ((self._basename_masks, "basename_approvers"), (self._path_masks, "path_approvers")):
            for h in [h for h, mask in table.items() if mask & bit]:
                table[h] &= ~bit
                if table[h]:
                    self._maps[name].update(_U64.pack(h), _U32.pack(table[h]))
                else:
                    del table[h]
                    self._maps[name].delete(_U64.pack(h))

    # ------------------------------------------------------------------ discarders

    @property
    def discarder_generation(self) -> int:
        raw = self._maps["generation"].lookup(_U32.pack(0))
        return _U32.unpack(raw[:4])[0] if raw else 0

    def add_discarder_inode(self, inode: int, mount_id: int,
                            event_types: Iterable[str | int | EventType] | None = None,
                            generation: int | None = None, *, inode_generation: int) -> None:
        """Events of these types (default: all) on this inode are dropped in the kernel.

        inode_generation: the inode's identity beside its number (`FileInfo.inode_generation`): the discarder
        holds for that inode only, never for another one born on the same number (0: the filesystem gives no
        identity: it then holds for any inode of that number until one is seen born; the agent adds none).
        generation: that of the event it was learned from (`FileInfo.generation`): a discarder is only as good
        as what the agent saw, and whatever invalidated discarders since (a mount, a rename) invalidates it too.
        Default: the current one."""
        gen = self.discarder_generation if generation is None else generation
        value = _DISCARDER.pack(gen, _bitmask(event_types))
        self._maps["discarder_inodes"].update(_INODE_KEY.pack(inode, mount_id, inode_generation), value)

    def remove_discarder_inode(self, inode: int, mount_id: int, *, inode_generation: int) -> None:
        self._maps["discarder_inodes"].delete(_INODE_KEY.pack(inode, mount_id, inode_generation))

    def add_discarder_pid(self, pid: int, event_types: Iterable[str | int | EventType] | None = None) -> None:
        """Events of these types (default: all but exec/fork/exit) from this process are dropped."""
        mask = _bitmask(event_types) & ~_bitmask(ALWAYS_ON)
        self._maps["discarder_pids"].update(_U32.pack(pid), _DISCARDER.pack(self.discarder_generation, mask))
        self._maps["pid_discarders_any"].update(_U32.pack(0), _U32.pack(1))

    def remove_discarder_pid(self, pid: int) -> None:
        self._maps["discarder_pids"].delete(_U32.pack(pid))
        self._ignored_pids.discard(pid)

    def ignore_pid(self, pid: int) -> None:
        """Nothing of this process but exec, fork and exit leaves the kernel, across every invalidation (the
        kernel's own on mounts and renames included): for the agent itself, whose map updates are bpf() calls."""
        mask = _bitmask(None) & ~_bitmask(ALWAYS_ON)
        self._maps["discarder_pids"].update(_U32.pack(pid), _DISCARDER.pack(GENERATION_ALWAYS, mask))
        self._maps["pid_discarders_any"].update(_U32.pack(0), _U32.pack(1))
        self._ignored_pids.add(pid)

    def invalidate_discarders(self) -> None:
        """Forget every discarder (rules reloaded): they stop applying at once (not `ignore_pid`'s)."""
        m = self._maps["generation"]
        new = (self.discarder_generation + 1) & 0xFFFFFFFF
        m.update(_U32.pack(0), _U32.pack(0 if new == GENERATION_ALWAYS else new))
        self._maps["pid_discarders_any"].update(_U32.pack(0), _U32.pack(1 if self._ignored_pids else 0))

    # ------------------------------------------------------------------ dd context (bpf/ddcontext.h)

    def dd_threads(self) -> dict[int, tuple[int, int]]:
        """The threads that registered a dd context record (`opencws.tracing`): tid -> (pid, record address)."""
        m = self._maps["dd_threads"]
        out: dict[int, tuple[int, int]] = {}
        key, nxt = None, ctypes.create_string_buffer(4)
        while libbpf.lib().bpf_map_get_next_key(m.fd, key, nxt) == 0:
            key = nxt.raw
            nxt = ctypes.create_string_buffer(4)
            raw = m.lookup(key)
            if raw is not None:
                addr, _start, pid, _ = _DD_THREAD.unpack(raw)
                out[_U32.unpack(key)[0]] = (pid, addr)
        return out

    # ------------------------------------------------------------------ selinuxfs

    def declare_selinuxfs_mount(self, mount_id: int) -> None:
        """Treat this mount as selinuxfs (a stand-in for kernels without SELinux, used by tests)."""
        self._maps["selinuxfs_mounts"].update(_U32.pack(mount_id), _U32.pack(1))
        self._standins.add(mount_id)
        self._maps["selinuxfs_standins"].update(_U32.pack(0), _U32.pack(len(self._standins)))

    def forget_selinuxfs_mount(self, mount_id: int) -> None:
        self._maps["selinuxfs_mounts"].delete(_U32.pack(mount_id))
        self._standins.discard(mount_id)
        self._maps["selinuxfs_standins"].update(_U32.pack(0), _U32.pack(len(self._standins)))
