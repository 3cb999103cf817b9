"""The intake's hot path compiled: one C pass per body (`opencws.backend._intake`), driven from here.

The C pass parses each JSON line (or the body's one object), checks it against tables built here from the
event schema the way `opencws.schema.structs` builds its Structs, and writes its events-table row in
RowBinary at once; it accepts a subset of what `intake._accept_plain` accepts (no escapes, Int64 integers
only...: see the header of `_intake.c`) and for that subset gives the same rows and contexts. Anything else
makes it answer None, and `intake.accept_body` takes the Python path as before. Python is still asked about
what is rare: each `process.ancestors` text not seen yet (`Lineages.find`, then kept in C and matched by
memcmp) and the context key of each (lineage, day) of a batch (the bookkeeping of `_accept_plain`). The
objects of `CACHED_FIELDS` (a process's parent and credentials) are checked once per distinct text in C too,
then matched by memcmp.

Without the built extension (`setup.py build_ext`), `compiled()` is None and the intake is all Python.
"""

from __future__ import annotations

import datetime
import logging
import threading
from typing import Any

from opencws.backend.lineages import LINEAGES, Lineage, Lineages, parent_key
from opencws.backend.store import tables
from opencws.backend.store.contexts import new_key
from opencws.backend.store.rowbinary import Cut, text_bytes
from opencws.schema.generate import event_schema
from opencws.schema.structs import CUT_FIELDS

try:
    from opencws.backend import _intake
except ImportError:  # not built: the Python path
    _intake = None  # type: ignore[assignment]

_EPOCH = datetime.date(1970, 1, 1)
# Objects whose texts repeat from event to event: each distinct text is checked once, then matched by memcmp
# (a process's executable is not: its text differs from event to event more often than not).
CACHED_FIELDS = frozenset({("ProcessContext", "parent"), ("ProcessContext", "credentials")})
_SCALARS = {"string", "integer", "boolean"}


def schema_nodes(schema: dict[str, Any]) -> list[list[tuple[bytes, int, int, int, bool, int, bool]]]:
    """The event schema unrolled into the C pass's tables: one node per object of the event (by path, so that
    each value the row needs has its slot), each a list of (key, kind, item kind, child node, required, slot,
    cached: its texts checked once, `CACHED_FIELDS`).
    Mirrors `structs._build`: `$ref` objects, arrays, string/integer/boolean, date-time strings, `type`-less
    values free-form; `process.ancestors` is left to the ancestors registry. Raises ValueError for a schema
    the C pass cannot follow (the intake then stays in Python)."""
    assert _intake is not None
    k = _intake
    definitions = schema.get("definitions", {})
    captures = {path: slot for slot, path in enumerate(k.CAPTURES)}
    found: set[str] = set()
    nodes: list[list[tuple[bytes, int, int, int, bool, int, bool]]] = []

    def node(name: str, spec: dict[str, Any], path: str, depth: int) -> int:
        if depth > 32:
            raise ValueError(f"the schema nests too deep at {path!r} (a cycle?)")
        index = len(nodes)
        nodes.append([])
        required = set(spec.get("required", ()))
        props = []
        for key, prop in spec["properties"].items():
            where = f"{path}.{key}" if path else key
            slot = captures.get(where, -1)
            if slot >= 0:
                found.add(where)
            item, child = 0, 0
            if (name, key) in CUT_FIELDS:
                if prop.get("type") != "array":
                    raise ValueError(f"{where}: a cut field must be an array")
                kind = k.K_ANCESTORS
            elif "$ref" in prop:
                kind = k.K_OBJECT
                target = prop["$ref"].rsplit("/", 1)[1]
                child = node(target, definitions[target], where, depth + 1)
            elif prop.get("type") == "array":
                kind, items = k.K_ARRAY, prop["items"]
                if "$ref" in items:
                    item = k.K_OBJECT
                    target = items["$ref"].rsplit("/", 1)[1]
                    child = node(target, definitions[target], f"{where}[]", depth + 1)
                else:
                    item = _scalar(where, items)
            else:
                kind = _scalar(where, prop)
            cached = (name, key) in CACHED_FIELDS and kind == k.K_OBJECT
            props.append((key.encode(), kind, item, child, key in required, slot, cached))
        if len(props) > 64:
            raise ValueError(f"{path or 'the event'}: more than 64 properties")
        nodes[index] = props
        return index

    node("Event", schema, "", 0)
    missing = set(captures) - found
    if missing:
        raise ValueError(f"the schema has no {sorted(missing)}")
    return nodes


def _scalar(where: str, prop: dict[str, Any]) -> int:
    assert _intake is not None
    kind = prop.get("type")
    if kind is None:
        return _intake.K_ANY
    if prop.get("format") == "date-time":
        return _intake.K_DATE
    if kind in _SCALARS and not prop.keys() - {"type", "description", "format"}:
        return {"string": _intake.K_STRING, "integer": _intake.K_INT, "boolean": _intake.K_BOOL}[kind]
    raise ValueError(f"{where}: no compiled check for {prop}")


class CompiledIntake:
    """The C pass over bodies for one `Lineages` (whose checked ancestors texts it also keeps, in C)."""

    def __init__(self, lineages: Lineages = LINEAGES) -> None:
        assert _intake is not None
        if list(_intake.COLUMNS) != tables.COLUMN_NAMES:
            raise ValueError("the events table's columns are not the ones the C pass writes")
        self.lineages = lineages
        self.parser = _intake.Parser(schema_nodes(event_schema()), self._learn, Cut)

    def _learn(self, text: bytes, max_depth: int) -> tuple[Lineage, bytes, bytes, bytes, int] | None:
        """An ancestors text the C pass does not know: its entry and what the rows need of it."""
        entry = self.lineages.find(text, max_depth)
        if entry is None:
            return None
        first, paths, names = entry.facts
        return entry, text_bytes(first), paths.rowbinary, names.rowbinary, entry.depth  # type: ignore[attr-defined]

    def accept(
        self, body: bytes, lines: bool, max_documents: int, max_depth: int, now: int, serial: int
    ) -> tuple[list[Any], bytes, list[tuple[Any, ...]], list[tuple[Lineage, tuple[int, Any], str]]] | None:
        """(rows, their RowBinary, the contexts rows, the keys to note once stored) of a body whose documents
        are all plainly valid, else None. `lines`: JSON lines (else one object; an array gives None)."""
        contexts: list[tuple[Any, ...]] = []
        new: list[tuple[Lineage, tuple[int, Any, bytes], str]] = []
        # (by the text, not the Lineage: a text the C registry and `Lineages` both forgot may come back as
        # another Lineage within a batch; one context per text and day, as on the Python path)
        pending: dict[tuple[bytes, int], str] = {}

        def key_for(lineage: Lineage, day: int, piece: bytes, before: int) -> str:
            """As `_accept_plain`: the key of the copy stored before, or one made once per batch. `piece`: the
            text cut, whose first `before` bytes are the parent's and `,"ancestors":` (0: the ancestors' alone)."""
            date = _EPOCH + datetime.timedelta(days=day)
            where = (serial, date, parent_key(piece, before))
            key = lineage.keys.get(where)
            if key is None:
                key = pending.get((piece, day))
                if key is None:
                    key = pending[(piece, day)] = new_key()
                    contexts.append((date, key, piece))
                    new.append((lineage, where, key))
            return key

        result = self.parser.accept(body, lines, max_documents, max_depth, now, bool(serial), key_for)
        if result is None:
            return None
        rows, encoded = result
        return rows, encoded, contexts, new


_compiled: dict[int, tuple[Lineages, CompiledIntake | None]] = {}
_lock = threading.Lock()
log = logging.getLogger(__name__)


def compiled(lineages: Lineages = LINEAGES) -> CompiledIntake | None:
    """The C pass for `lineages`, made once; None when the extension is not built, or cannot follow the
    schema (said once in the log: the intake then stays in Python)."""
    if _intake is None:
        return None
    found = _compiled.get(id(lineages))
    if found is not None and found[0] is lineages:
        return found[1]
    with _lock:
        found = _compiled.get(id(lineages))
        if found is None or found[0] is not lineages:
            try:
                made: CompiledIntake | None = CompiledIntake(lineages)
            except ValueError as e:
                log.warning("the compiled intake pass is off (the Python path takes every body): %s", e)
                made = None
            found = _compiled[id(lineages)] = (lineages, made)
        return found[1]
