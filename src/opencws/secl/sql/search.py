"""A search expression: SECL compiled twice, to a SQL prefilter and to the exact evaluator.

Search expressions may name no event type (they then apply to every event) and may use `evt.name` (the
event's type, as in the event's JSON) on top of the rule fields. An expression naming fields of one event
type applies to events of that type only, as a rule does; naming several event types is refused with the
compiler's message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opencws.model.codec import event_from_json
from opencws.secl.compiler import Compiler, Macro
from opencws.secl.errors import SeclError
from opencws.secl.fields import BOOL, STRING, Registry, build_registry
from opencws.secl.parser import parse
from opencws.secl.sql.clickhouse import ClickHouse
from opencws.secl.sql.generator import Generator, Where

MAX_SEARCH_LENGTH = 16_384


def _search_registry() -> Registry:
    r = build_registry()
    r.add("evt.name", STRING, ("evt",), "o.name", None)
    return r


SEARCH_REGISTRY = _search_registry()


@dataclass
class Search:
    text: str
    event_type: str | None
    where: Where
    _fn: Callable[[Any], Any] | None
    # The parts of an event's JSON the expression reads: top-level keys, and whether a process's ancestors
    # and parent entry are read (None: all of it). The bulk of an event is its ancestors.
    reads: tuple[frozenset[str], bool, bool] | None = None

    @property
    def matches_every_event(self) -> bool:
        """The empty expression: no event needs decoding to be judged."""
        return self._fn is None and self.event_type is None

    def matches(self, event: Any) -> bool:
        """SECL's answer on a model event (`opencws.model.codec.event_from_json`)."""
        if self.event_type is not None:
            evt = event.evt
            if evt is None or evt.name != self.event_type:
                return False
        return True if self._fn is None else bool(self._fn(event))

    def matches_json(self, event: dict[str, Any]) -> bool:
        """SECL's answer on an event's JSON value (hot path of searches: only the parts the expression
        reads are decoded into the model)."""
        if self.matches_every_event:
            return True
        if self.reads is not None:
            top, ancestors, parent = self.reads
            event = {k: v for k, v in event.items() if k in top}
            p = event.get("process")
            if isinstance(p, dict) and not (ancestors and parent):
                event["process"] = {
                    k: v for k, v in p.items() if (ancestors or k != "ancestors") and (parent or k != "parent")
                }
        return self.matches(event_from_json(event))


def _reads(fields: set[str]) -> tuple[frozenset[str], bool, bool] | None:
    chains = []
    for name in fields:
        f = SEARCH_REGISTRY.get(name)
        if f is None:
            return None
        if f.iterator:
            chains.append(("process", "ancestors"))
        elif f.source is None or not f.source[0]:
            return None
        else:
            chains.append(f.source[0])
    parent = any("@parent" in c or "parent" in c for c in chains)
    ancestors = parent or any(c[:2] == ("process", "ancestors") for c in chains)
    return frozenset({c[0] for c in chains} | {"evt"}), ancestors, parent


def compile_search(
    text: str, dialect: type[Generator] = ClickHouse, macros: dict[str, Macro] | None = None
) -> Search:
    """Parse and type-check `text` (empty: every event); raise SeclError with its caret when invalid.
    `macros`: a policy's macros, for rules run as searches."""
    if len(text) > MAX_SEARCH_LENGTH:
        raise SeclError(f"search expression longer than {MAX_SEARCH_LENGTH} characters")
    if not text.strip():
        return Search(text, None, dialect(SEARCH_REGISTRY).where(None), None)
    parsed = parse(text)
    compiler = Compiler(text, macros, registry=SEARCH_REGISTRY)
    v = compiler.compile(parsed.node)
    if v.type != BOOL or v.multi:
        raise compiler.error(f"a search must be a boolean condition, but {v.describe()}", parsed.node)
    fn = compiler.function(v)
    event_type = compiler.event_type
    where = dialect(SEARCH_REGISTRY, macros=macros).where(parsed.node, event_type)
    return Search(text, event_type, where, fn, _reads(compiler.fields_used))
