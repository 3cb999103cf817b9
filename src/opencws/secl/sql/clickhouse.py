"""The ClickHouse dialect: what both current ClickHouse (and chdb) and the 18.16 server accept.

Placeholders are ClickHouse's typed query parameters (`{name:String}`); an engine whose server predates them
renders the same placeholders in its driver's own binding syntax. ClickHouse's `match()` lets `.` match a
newline where RE2's default (SECL's evaluator) does not, hence the `(?-s)` prefix.
"""

from __future__ import annotations

from opencws.secl.sql.generator import Generator


class ClickHouse(Generator):
    def placeholder(self, name: str, typ: str) -> str:
        return f"{{{name}:{self.TYPES[typ]}}}"

    def regex(self, column: str, pattern: str) -> str:
        return f"match({column}, concat('(?-s)', {pattern}))"

    def contains(self, column: str, text: str) -> str:
        return f"position({column}, {text}) > 0"

    def has(self, column: str, value: str) -> str:
        return f"has({column}, {value})"

    def any_like(self, column: str, pattern: str) -> str:
        return f"arrayExists(x -> x LIKE {pattern}, {column})"

    def any_regex(self, column: str, pattern: str) -> str:
        return f"arrayExists(x -> match(x, concat('(?-s)', {pattern})), {column})"
