"""Iterator registers: `process.ancestors[_].x` (7.33's spelling: any ancestor, each use on its own) and named
registers `process.ancestors[A].x` (today's Datadog: every condition on `A` is about the same ancestor).

A named register is quantified at the smallest boolean condition that holds all its uses (macros expanded):
that condition is true when some ancestor, bound to the register, makes it true. While it is evaluated, the
event is seen through `Bound`, which answers `register(name)` with the bound ancestor.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from opencws.secl import ast
from opencws.secl.fields import STRING, make_getter

REGISTER = re.compile(r"\[([^\]]*)\]")
ITERATOR = "process.ancestors"  # the only iterator of the event model
_ANCESTORS = make_getter(("process",), "o.ancestors", STRING, multi=True)


class Bound:
    """An event seen with a register bound to one ancestor: attributes are the event's."""

    __slots__ = ("_entry", "_event", "_reg")

    def __init__(self, event: Any, reg: str, entry: Any) -> None:
        self._event = event
        self._reg = reg
        self._entry = entry

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._event, attr)

    def register(self, reg: str) -> Any:
        return self._entry if reg == self._reg else self._event.register(reg)


def split(name: str) -> tuple[str, str, list[str]]:
    """`process.ancestors[A].file.name` → (`process.ancestors.file.name`, `process.ancestors`, ["A"])."""
    return REGISTER.sub("", name), name[: name.index("[")], REGISTER.findall(name)


def named_register(name: str) -> str | None:
    """The named register of a field (`A`), None for none or `[_]`."""
    m = REGISTER.search(name)
    return m.group(1) if m is not None and m.group(1) != "_" else None


class Counter:
    """Uses of each named register in a subtree, macros expanded (memoized per node)."""

    def __init__(self, macros: Mapping[str, Any]) -> None:
        self.macros = macros
        self.memo: dict[int, dict[str, int]] = {}
        self.walking: set[str] = set()  # macros being walked: a cycle is reported when the macro compiles

    def count(self, node: ast.Node) -> dict[str, int]:
        hit = self.memo.get(id(node))
        if hit is not None:
            return hit
        out: dict[str, int] = {}
        children: list[ast.Node] = []
        macro = self.macros.get(node.name) if isinstance(node, ast.Ident) else None
        if isinstance(node, ast.Logical):
            children = node.operands
        elif isinstance(node, ast.Binary):
            children = [node.left, node.right]
        elif isinstance(node, ast.InArray):
            children = [node.operand, node.array]
        elif isinstance(node, ast.Unary):
            children = [node.operand]
        elif macro is not None:
            if macro.id in self.walking:
                return out
            children = [macro.node]
            self.walking.add(macro.id)
        elif isinstance(node, ast.Ident):
            reg = named_register(node.name)
            if reg is not None:
                out[reg] = 1
        for child in children:
            for reg, n in self.count(child).items():
                out[reg] = out.get(reg, 0) + n
        if macro is not None:
            self.walking.discard(macro.id)
        self.memo[id(node)] = out
        return out


def exists(reg: str, inner: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """True when `inner` holds for the event with `reg` bound to some ancestor."""
    ancestors = _ANCESTORS

    def fn(e: Any) -> bool:
        for a in ancestors(e):
            if inner(Bound(e, reg, a)):
                return True
        return False

    return fn


def any_ancestor(e: Any) -> bool:
    """Whether the event's process has an ancestor (a register over a condition that is always true)."""
    return bool(_ANCESTORS(e))
