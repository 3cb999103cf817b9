"""String matchers for `~"patterns"` (anchored globs where `*` matches any run of characters, `/` included)
and `r"regexps"` (unanchored search). Simple globs become `str` method calls, the rest one combined regex.

Regular expressions run on RE2 (`google-re2`), as in Datadog's agent (Go's regexp is RE2): matching time is
linear in the input, so attacker-controlled values (command lines, paths) cannot make a rule hang. The
syntax is RE2's: no backreferences nor lookaround (refused when the rule loads)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import re2

Matcher = Callable[[str], bool]

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # errors are raised (and reported with the rule), not logged to stderr


class RegexError(ValueError):
    """A regular expression RE2 does not accept."""


def compile_regex(source: str) -> Matcher:
    """A predicate: does RE2 find `source` in a string (an unanchored search)? Raises RegexError with RE2's
    message when `source` does not compile."""
    try:
        regexp = re2.compile(source, _RE2_OPTIONS)
    except re2.error as e:
        msg = e.args[0] if e.args else str(e)
        if isinstance(msg, bytes):
            msg = msg.decode("utf-8", "replace")
        raise RegexError(str(msg)) from None
    # The module's `search` builds match objects and maps offsets back to characters (about 20 µs a call
    # here); a one-pattern RE2 set only answers "does it match" (about 2 µs). The set is the binding's
    # lower layer, so fall back to `search` if a version lacks it.
    low = getattr(re2, "_re2", None)
    set_type = getattr(low, "Set", None)
    if set_type is not None:
        options = re2.Options()
        options.log_errors = False
        options.never_capture = True
        rset = set_type(low.RE2.Anchor.UNANCHORED, options)  # type: ignore[union-attr]
        if rset.Add(source.encode("utf-8", "surrogatepass")) == 0 and rset.Compile():
            match = rset.Match
            return lambda v: bool(match(v.encode("utf-8", "surrogatepass")))
    search = regexp.search
    return lambda v: search(v) is not None


def glob_regex(pattern: str) -> str:
    """The regex source matching a whole string against a glob (only `*` is special)."""
    return ".*".join(re.escape(part) for part in re.split(r"\*+", pattern))


def _shape(pattern: str) -> tuple[str, str]:
    """Classify a glob: ("exact"|"prefix"|"suffix"|"contains"|"glob", key)."""
    p = re.sub(r"\*+", "*", pattern)
    stars = p.count("*")
    if stars == 0:
        return "exact", p
    if p == "*":
        return "any", ""
    if stars == 1 and p.endswith("*"):
        return "prefix", p[:-1]
    if stars == 1 and p.startswith("*"):
        return "suffix", p[1:]
    if stars == 2 and p.startswith("*") and p.endswith("*"):
        return "contains", p[1:-1]
    return "glob", p


def build_matcher(patterns: Iterable[str] = (), regexes: Iterable[str] = ()) -> Matcher:
    """A predicate true when a string matches any of the globs or regexes."""
    exact: set[str] = set()
    prefixes: list[str] = []
    suffixes: list[str] = []
    contains: list[str] = []
    globs: list[str] = []
    match_all = False
    for p in patterns:
        kind, key = _shape(p)
        if kind == "any":
            match_all = True
        elif kind == "exact":
            exact.add(key)
        elif kind == "prefix":
            prefixes.append(key)
        elif kind == "suffix":
            suffixes.append(key)
        elif kind == "contains":
            contains.append(key)
        else:
            globs.append(key)
    if match_all:
        return lambda v: True
    parts: list[Matcher] = []
    if exact:
        fs = frozenset(exact)
        parts.append(fs.__contains__)
    if prefixes:
        pt = tuple(prefixes)
        parts.append(lambda v: v.startswith(pt))
    if suffixes:
        st = tuple(suffixes)
        parts.append(lambda v: v.endswith(st))
    if contains:
        if len(contains) == 1:
            (c,) = contains
            parts.append(lambda v: c in v)
        else:
            ct = tuple(contains)
            parts.append(lambda v: any(c in v for c in ct))
    if globs:
        parts.append(_globs_matcher(globs))
    rx = list(regexes)
    if rx:
        parts.append(compile_regex("|".join(f"(?:{r})" for r in rx)))
    if not parts:
        return lambda v: False
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda v: a(v) or b(v)
    tp = tuple(parts)
    return lambda v: any(m(v) for m in tp)


def _globs_matcher(globs: list[str]) -> Matcher:
    """Globs with inner stars (`/home/*/.ssh/id_*`): a head/tail test, then the middle parts found in order
    (leftmost placement is always right when `*` is the only wildcard). No regex, no backtracking."""
    specs = []
    for g in globs:
        parts = re.split(r"\*+", g)
        specs.append((parts[0], parts[-1], tuple(parts[1:-1]), len(parts[0]) + len(parts[-1])))
    heads = tuple(h for h, _, _, _ in specs)
    specs_t = tuple(specs)

    def match(v: str) -> bool:
        if all(heads) and not v.startswith(heads):
            return False
        for head, tail, mids, fixed in specs_t:
            if len(v) < fixed or not v.startswith(head) or not v.endswith(tail):
                continue
            pos, end = len(head), len(v) - len(tail)
            for mid in mids:
                j = v.find(mid, pos, end)
                if j < 0:
                    break
                pos = j + len(mid)
            else:
                return True
        return False

    return match
