"""SECL → SQL: a generator with one method per syntax-tree node, and dialects that override what differs.

The SQL is a *prefilter*: it selects a superset of the events an expression matches (exactly the set when
every part maps to a typed column), and the SECL evaluator runs on what it returns. It knows a dialect and
the columns of the events table, never a store or a driver. Values are always bound parameters.

from opencws.secl.sql import compile_search
q = compile_search('open.file.path == "/etc/shadow"')
q.where.sql, q.where.params, q.event_type, q.matches(event)
"""

from opencws.secl.sql.search import SEARCH_REGISTRY, Search, compile_search

__all__ = ["SEARCH_REGISTRY", "Search", "compile_search"]
