"""The syntax tree of a SECL expression. Nodes keep their source span for error carets.

`&&`/`||` chains are n-ary (`Logical`) so that long flat expressions stay shallow; `depth` is the nesting
depth of the subtree, bounded by the parser (see `parser.MAX_DEPTH`) so later passes may recurse safely.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, eq=False)
class Node:
    pos: int
    end: int

    @property
    def depth(self) -> int:
        """Composite nodes carry `_depth`, set by the parser; a leaf is depth 1."""
        return getattr(self, "_depth", 1)


@dataclass(slots=True, eq=False)
class BoolLit(Node):
    value: bool


@dataclass(slots=True, eq=False)
class IntLit(Node):
    value: int
    duration: bool = False


@dataclass(slots=True, eq=False)
class StrLit(Node):
    """A string literal. `kind` is "string", "pattern" (`~"..."`) or "regex" (`r"..."`)."""

    value: str
    kind: str = "string"


@dataclass(slots=True, eq=False)
class Ident(Node):
    """A field, a macro or a constant: resolved by the compiler."""

    name: str


@dataclass(slots=True, eq=False)
class Variable(Node):
    """`${name}` used as an operand."""

    name: str


@dataclass(slots=True, eq=False)
class ArrayLit(Node):
    items: list[Node] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Unary(Node):
    op: str  # "!", "-", "^"
    operand: Node
    _depth: int = 1


@dataclass(slots=True, eq=False)
class Binary(Node):
    """A comparison (`== != < <= > >= =~ !~`), a bit operation (`& | ^`) or arithmetic (`+ -`)."""

    op: str
    left: Node
    right: Node
    op_pos: int = 0
    _depth: int = 1


@dataclass(slots=True, eq=False)
class InArray(Node):
    """`operand in array` / `operand not in array`; the array is an ArrayLit, a macro Ident or a Variable."""

    operand: Node
    array: Node
    negated: bool
    op_pos: int = 0
    _depth: int = 1


@dataclass(slots=True, eq=False)
class Logical(Node):
    """An n-ary `&&` (op "and") or `||` (op "or")."""

    op: str
    operands: list[Node]
    op_pos: int = 0
    _depth: int = 1
