"""SECL syntax tree → a SQL condition, one `<node>_sql` method per node kind.

Each method returns a `Fragment` (its SQL and whether it is *exact*: true for exactly the events the node
matches) or None when the node cannot be expressed on the typed columns (a field without a column, a bit
operation, a variable...). The result is always a superset of SECL's answer:
- `a && b`: the parts that translate (a missing part only widens the set); exact when all parts are;
- `a || b`: nothing unless every part translates;
- `!a`: only when `a` is exact (the negation of a superset is not a superset).
Literal values go into `params` and the SQL holds placeholders: request text never becomes SQL.
A dialect (`clickhouse.py`) overrides placeholders and function spellings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from opencws.secl import ast
from opencws.secl.constants import CONSTANTS
from opencws.secl.fields import INT, STRING, Registry
from opencws.secl.sql.columns import FIELD_COLUMNS, JSON_COLUMN, JSON_KEYS, Column

_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


@dataclass(frozen=True, slots=True)
class Fragment:
    sql: str
    exact: bool
    conjuncts: tuple[Fragment, ...] = ()  # of an AND: its parts (flattened)


@dataclass(slots=True)
class Where:
    """A condition on the events table: SQL with placeholders, their values, and whether it is exact."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    exact: bool = True
    # `sql` split into its conjuncts on plain columns and those reading array columns, when it has both:
    # the store reads the arrays only for rows the first part keeps (PREWHERE). Else empty.
    plain: str = ""
    arrays: str = ""


def glob_to_like(pattern: str) -> str:
    """A SECL glob (`*` = any run of characters, `/` and newlines included) as a LIKE pattern."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return re.sub(r"\*+", "%", escaped)


class Generator:
    """Standard SQL; dialects override `placeholder` and the function methods."""

    TYPES = {STRING: "String", INT: "Int64"}

    def __init__(
        self,
        registry: Registry,
        columns: dict[str, Column] = FIELD_COLUMNS,
        macros: dict[str, Any] | None = None,
    ) -> None:
        self.registry = registry
        arrays = sorted({c.name for c in columns.values() if c.multi})
        self._array_column = re.compile(r"\b(?:" + "|".join(arrays) + r")\b") if arrays else re.compile(r"(?!)")
        self.columns = columns
        self.macros = macros or {}  # id → compiler.Macro (its `node`)
        self.params: dict[str, Any] = {}

    # --- entry point --------------------------------------------------------------------------------

    def where(self, node: ast.Node | None, event_type: str | None = None) -> Where:
        """The condition for `node` (None: every event) restricted to `event_type` when given."""
        parts: list[Fragment] = []
        if event_type is not None:
            parts.append(Fragment(f"evt_name = {self.param(event_type, STRING)}", True))
        frag = self.sql(node) if node is not None else None
        exact = node is None or (frag is not None and frag.exact)
        if frag is not None:
            parts.append(frag)
        sql = " AND ".join(f"({p.sql})" for p in parts) if parts else "1"
        conjuncts = [c for p in parts for c in (p.conjuncts or (p,))]
        on_arrays = [c for c in conjuncts if self._array_column.search(c.sql)]
        plain = [c for c in conjuncts if c not in on_arrays]
        if not (on_arrays and plain):
            return Where(sql, self.params, exact)
        both = [" AND ".join(f"({c.sql})" for c in cs) for cs in (plain, on_arrays)]
        return Where(sql, self.params, exact, *both)

    def sql(self, node: ast.Node) -> Fragment | None:
        method = getattr(self, f"{_SNAKE.sub('_', type(node).__name__).lower()}_sql", None)
        return None if method is None else method(node)

    # --- hooks a dialect overrides ------------------------------------------------------------------

    def placeholder(self, name: str, typ: str) -> str:
        return f":{name}"

    def param(self, value: Any, typ: str) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return self.placeholder(name, typ)

    def like(self, column: str, pattern: str) -> str:
        return f"{column} LIKE {pattern}"

    def regex(self, column: str, pattern: str) -> str:
        raise NotImplementedError

    def contains(self, column: str, text: str) -> str:
        """The column's text contains `text` (a placeholder)."""
        raise NotImplementedError

    def has(self, column: str, value: str) -> str:
        raise NotImplementedError

    def any_like(self, column: str, pattern: str) -> str:
        raise NotImplementedError

    def any_regex(self, column: str, pattern: str) -> str:
        raise NotImplementedError

    # --- nodes --------------------------------------------------------------------------------------

    def logical_sql(self, node: ast.Logical) -> Fragment | None:
        frags = [self.sql(op) for op in node.operands]
        if node.op == "and":
            kept = [f for f in frags if f is not None]
            if not kept:
                return None
            exact = len(kept) == len(frags) and all(f.exact for f in kept)
            conjuncts = tuple(c for f in kept for c in (f.conjuncts or (f,)))
            return Fragment(" AND ".join(f"({f.sql})" for f in kept), exact, conjuncts)
        if any(f is None for f in frags):
            return None
        return Fragment(" OR ".join(f"({f.sql})" for f in frags), all(f.exact for f in frags))  # type: ignore[union-attr]

    def unary_sql(self, node: ast.Unary) -> Fragment | None:
        if node.op != "!":
            return None
        inner = self.sql(node.operand)
        if inner is None or not inner.exact:
            return None
        return Fragment(f"NOT ({inner.sql})", True)

    def ident_sql(self, node: ast.Ident) -> Fragment | None:
        """A boolean macro: its expression (the compiler has checked it and its cycles)."""
        macro = self.macros.get(node.name)
        return None if macro is None else self.sql(macro.node)

    def bool_lit_sql(self, node: ast.BoolLit) -> Fragment:
        return Fragment("1" if node.value else "0", True)

    def binary_sql(self, node: ast.Binary) -> Fragment | None:
        op = node.op
        column, value = self.column_of(node.left), self.literal(node.right)
        if column is None:
            column, value = self.column_of(node.right), self.literal(node.left)
            op = {"=~": "=~", "!~": "!~"}.get(op) or _MIRROR.get(op, "")
        if column is None or value is None:
            return self.json_key_sql(node)
        return self.compare(column, op, value)

    def json_key_sql(self, node: ast.Binary) -> Fragment | None:
        """`field == "N"` for a field found in the event's JSON by its key (`columns.JSON_KEYS`): a prefilter."""
        for ident, lit in ((node.left, node.right), (node.right, node.left)):
            key = JSON_KEYS.get(ident.name) if isinstance(ident, ast.Ident) else None
            value = self.literal(lit)
            if key is not None and node.op == "==" and value is not None and value[0] == "string" \
                    and value[1].isdecimal():
                return Fragment(self.contains(JSON_COLUMN, self.param(f'"{key}":{int(value[1])}', STRING)), False)
        return None

    def in_array_sql(self, node: ast.InArray) -> Fragment | None:
        column = self.column_of(node.operand)
        array = node.array
        if isinstance(array, ast.Ident) and array.name in self.macros:
            array = self.macros[array.name].node  # a list macro
        if column is None or not isinstance(array, ast.ArrayLit):
            return None
        items = [self.literal(item) for item in array.items]
        if any(i is None for i in items):
            return None
        if not column.multi and all(kind == ("int" if column.type == INT else "string") for kind, _ in items):  # type: ignore[misc]
            values = ", ".join(self.param(v, column.type) for _, v in items)  # type: ignore[misc]
            sql, exact = f"{column.name} IN ({values})", True
        else:
            frags = [self.compare(column, "==", item) for item in items]  # type: ignore[arg-type]
            if any(f is None for f in frags):
                return None
            sql = " OR ".join(f"({f.sql})" for f in frags)  # type: ignore[union-attr]
            exact = all(f.exact for f in frags)  # type: ignore[union-attr]
        if node.negated:
            if not exact or column.multi:
                return None  # `not in` on a list means "no value is in": kept for the evaluator
            return Fragment(f"NOT ({sql})", True)
        return Fragment(sql, exact)

    # --- leaves -------------------------------------------------------------------------------------

    def column_of(self, node: ast.Node) -> Column | None:
        if not isinstance(node, ast.Ident):
            return None
        f = self.registry.fields.get(node.name)
        if f is None:
            return None
        return self.columns.get(f.canonical)

    def literal(self, node: ast.Node) -> tuple[str, Any] | None:
        """(kind, value) of a literal operand: kind "string", "pattern", "regex" or "int"."""
        if isinstance(node, ast.StrLit):
            return node.kind, node.value
        if isinstance(node, ast.IntLit) and not node.duration:
            return "int", node.value
        if isinstance(node, ast.Unary) and node.op == "-" and isinstance(node.operand, ast.IntLit):
            return "int", -node.operand.value
        if isinstance(node, ast.Ident) and node.name in CONSTANTS and node.name not in self.registry.fields:
            return "int", CONSTANTS[node.name]
        return None

    def compare(self, column: Column, op: str, value: tuple[str, Any]) -> Fragment | None:
        kind, v = value
        c = column.name
        if (kind == "int") != (column.type == INT):
            return None  # a type error the compiler reports; nothing to translate
        if kind == "int":
            if column.multi or op not in ("==", "!=", "<", "<=", ">", ">="):
                return None
            return Fragment(f"{c} {'=' if op == '==' else op} {self.param(v, INT)}", True)
        if op in ("=~", "!~"):
            # `=~` takes a pattern or a regex; a plain string is a pattern there.
            kind = "pattern" if kind == "string" else kind
            op = "==" if op == "=~" else "!="
        if op not in ("==", "!="):
            return None
        if kind == "string":
            frag = (
                Fragment(self.has(c, self.param(v, STRING)), True)
                if column.multi
                else Fragment(f"{c} = {self.param(v, STRING)}", True)
            )
        elif kind == "pattern":
            p = self.param(glob_to_like(v), STRING)
            frag = Fragment(self.any_like(c, p) if column.multi else self.like(c, p), True)
        elif kind == "regex":
            p = self.param(v, STRING)
            frag = Fragment(self.any_regex(c, p) if column.multi else self.regex(c, p), True)
        else:  # pragma: no cover
            return None
        if op == "!=":
            if column.multi:
                return None  # "some value differs": left to the evaluator
            return Fragment(f"NOT ({frag.sql})", frag.exact)
        return frag
