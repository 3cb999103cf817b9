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
    # The parts of an event's JSON the expression reads, as a tree of keys (`ALL`: the whole value there;
    # None: all of the event). The bulk of an event is its process's ancestors, mostly not read.
    reads: dict[str, Any] | None = None

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
            event = _pruned(event, self.reads)
        return self.matches(event_from_json(event))


ALL: dict[str, Any] = {}  # (by identity) the whole value
# A process's links to other processes: read through their own attribute chains only, never by a field of
# the process itself. `{"*": ALL, ...}` is a process read whole but for the links not named beside it.
_LINKS = frozenset(("ancestors", "parent"))


def _pruned(value: Any, tree: dict[str, Any]) -> Any:
    if tree is ALL:
        return value
    if isinstance(value, list):
        return [_pruned(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    if "*" in tree:
        return {
            k: _pruned(v, tree[k]) if k in _LINKS else v for k, v in value.items() if k in tree or k not in _LINKS
        }
    return {k: _pruned(v, tree[k]) for k, v in value.items() if k in tree}


def _reads(fields: set[str]) -> dict[str, Any] | None:
    """The keys an expression reading `fields` needs (each field's object whole; `@parent`: the parent
    entry, else the first ancestor)."""
    paths: list[tuple[str, ...]] = [("evt",)]
    for name in fields:
        f = SEARCH_REGISTRY.get(name)
        if f is None:
            return None
        if f.iterator:
            paths.append(("process", "ancestors", *SEARCH_REGISTRY.entry_chain(name)))
        elif f.source is None or not f.source[0]:
            return None
        elif "@parent" in f.source[0]:
            i = f.source[0].index("@parent")
            head, tail = f.source[0][:i], f.source[0][i + 1 :]
            paths += [(*head, "parent", *tail), (*head, "ancestors", *tail)]
        else:
            paths.append(f.source[0])
    root: dict[str, Any] = {}
    for path in sorted(paths, key=len):
        node = root
        for k in path[:-1]:
            node = node.setdefault(k, {})
            if node is ALL:
                break
        else:
            if path == ("process",):
                root.setdefault("process", {})["*"] = ALL
            else:
                node[path[-1]] = ALL
    return root


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
