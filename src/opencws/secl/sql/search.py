"""A search expression: SECL compiled twice, to a SQL prefilter and to the exact evaluator.

Search expressions may name no event type (they then apply to every event) and may use `evt.name` (the
event's type, as in the event's JSON) and `dd.span_id` / `dd.trace_id` (the APM span and trace ids, as decimal text) on top of the
rule fields. An expression naming fields of one event
type applies to events of that type only, as a rule does; naming several event types is refused with the
compiler's message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    # The APM span and trace of the event (`dd`): no SECL rule field in Datadog's agent, searchable here. Their
    # decimal text (as Datadog's log correlation attributes of these names): the ids are unsigned 64-bit, SECL's
    # integers signed.
    for key in ("span_id", "trace_id"):
        r.add(f"dd.{key}", STRING, ("dd",), f"'' if o.{key} is None else str(o.{key})", None)
    return r


SEARCH_REGISTRY = _search_registry()


@dataclass
class Search:
    text: str
    event_type: str | None
    where: Where
    _fn: Callable[[Any], Any] | None

    @property
    def matches_every_event(self) -> bool:
        """The empty expression: no event needs decoding to be judged."""
        return self._fn is None and self.event_type is None

    def matches(self, event: Any) -> bool:
        """SECL's answer on a model event (`opencws.model.codec.event_from_json`, or a view of its JSON:
        `opencws.model.view`)."""
        if self.event_type is not None:
            evt = event.evt
            if evt is None or evt.name != self.event_type:
                return False
        return True if self._fn is None else bool(self._fn(event))


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
    return Search(text, event_type, where, fn)
