"""Each distinct `process.ancestors` text the intake receives, checked once: the same text comes in every
event of every process of a lineage (three quarters of a typical event's bytes).

The hot path decodes an event with its ancestors left as text (`opencws.schema.structs.cut_event_decoder`)
and looks that text up here, byte for byte (a dict keyed by the bytes compares them whole). A text not seen
yet is decoded and checked as strictly as the whole event would have been (`ancestors_decoder`, the dates,
the free-form nesting), and what the rows need of it is kept (`rows.lineage_of`). A text that fails is not
kept: its event takes the slow path, which says why.

Each entry also remembers the key of its stored copy per store, day and parent (`opencws.backend.store.contexts`:
the text cut out of an event is its parent's and its ancestors' when they are next to each other, see
`intake._parent_before`), set only once that copy is stored (`Outcome.stored`), so that no event names a copy that might
not be there.
"""

from __future__ import annotations

import datetime
import hashlib
import threading
from dataclasses import dataclass, field

import msgspec

from opencws.backend.bodies import depth_exceeds
from opencws.backend.store.rowbinary import encoded
from opencws.backend.store.rows import Lineage as Facts
from opencws.backend.store.rows import lineage_of
from opencws.schema.structs import ancestors_dates_checker, ancestors_decoder

MAX_BYTES = 64 << 20
MAX_KEYS = 16  # (store, day, parent) triples an entry remembers the key of


@dataclass(slots=True, eq=False)
class Lineage:
    facts: Facts
    depth: int  # its free-form parts nest at most this deep (the limit it was checked against)
    # (store serial, day, `parent_key` of the parent cut with the ancestors) → key of the stored copy
    keys: dict[tuple[int, datetime.date, bytes], str] = field(default_factory=dict)


class Lineages:
    """The cache, bounded by the bytes of the texts it keeps (the oldest go first)."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: dict[bytes, Lineage] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, text: bytes, max_depth: int) -> Lineage | None:
        """The entry of `process.ancestors`' JSON text, or None when that text is not plainly valid."""
        entry = self._entries.get(text)
        if entry is not None and entry.depth <= max_depth:
            return entry
        return self._learn(text, max_depth)

    def _learn(self, text: bytes, max_depth: int) -> Lineage | None:
        try:
            ancestors = ancestors_decoder().decode(text)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return None
        dates_valid = ancestors_dates_checker()
        for a in ancestors:
            if not dates_valid(a):
                return None
            dest = a.credentials.destination if a.credentials else None
            if isinstance(dest, dict | list) and depth_exceeds(dest, max_depth):
                return None
        first, paths, names = lineage_of(ancestors)
        entry = Lineage((first, encoded(paths), encoded(names)), max_depth)
        with self._lock:
            old = self._entries.pop(text, None)
            if old is not None:
                entry.keys = old.keys
                self._bytes -= len(text)
            self._entries[text] = entry
            self._bytes += len(text)
            while self._bytes > self.max_bytes:
                oldest = next(iter(self._entries))
                del self._entries[oldest]
                self._bytes -= len(oldest)
        return entry

    @staticmethod
    def stored(entry: Lineage, where: tuple[int, datetime.date, bytes], key: str) -> None:
        """The copy of `entry`'s text for (store serial, day, parent) is stored under `key`: later events name
        it."""
        if len(entry.keys) >= MAX_KEYS and where not in entry.keys:
            entry.keys.clear()
        entry.keys[where] = key


def parent_key(piece: bytes, before: int) -> bytes:
    """What tells the parents cut with one ancestors text apart: a digest of the first `before` bytes of the
    text cut, `piece` (the parent's text and `,"ancestors":`; b"" when `before` is 0: no parent cut). A digest,
    not the text, so that the keys an entry remembers stay small; 128 bits of BLAKE2b, so that no client can
    make two parents share a key."""
    return hashlib.blake2b(memoryview(piece)[:before], digest_size=16).digest() if before else b""


LINEAGES = Lineages()
