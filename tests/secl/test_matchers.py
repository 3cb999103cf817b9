"""Glob matchers against a reference: the glob translated to a regex, on generated patterns and values.

The matcher never builds that regex (it tests heads, tails and middle parts in order): any shortcut it takes
must give the regex's answer. The alphabet is small so that parts repeat and overlap, where shortcuts break."""

from __future__ import annotations

import fnmatch
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from secl_events import exec_event, open_event

from opencws.secl import Rule, RuleSet, SeclError, compile_expression
from opencws.secl.matchers import build_matcher, glob_regex

PATTERNS = st.text(alphabet="ab/*", max_size=9)
ANY_VALUES = st.text(alphabet="ab/", max_size=12)


@st.composite
def near(draw, pattern: str) -> str:
    """A value made from the pattern (each `*` filled in), then perhaps cut or grown by one character: the
    values where a matcher's shortcuts go wrong (independent random values rarely fit a pattern at all)."""
    value = "".join(draw(st.text(alphabet="ab/", max_size=3)) if c == "*" else c for c in pattern)
    edit = draw(st.sampled_from(["none", "delete", "insert"]))
    at = draw(st.integers(0, len(value)))
    if edit == "delete" and value:
        value = value[:min(at, len(value) - 1)] + value[min(at, len(value) - 1) + 1:]
    elif edit == "insert":
        value = value[:at] + draw(st.sampled_from("ab/")) + value[at:]
    return value


@st.composite
def pattern_and_values(draw, how_many: int) -> tuple[str, list[str]]:
    pattern = draw(PATTERNS)
    values = draw(st.lists(st.one_of(near(pattern), ANY_VALUES), min_size=1, max_size=how_many))
    return pattern, values


def clean_path(pattern: str) -> str:
    """The pattern as an absolute path in clean form: one `/` between parts, none at the end."""
    return "/" + "/".join(part for part in pattern.split("/") if part) if pattern.strip("/") else "/a"


def reference(patterns: list[str], value: str) -> bool:
    return any(re.fullmatch(glob_regex(p), value, re.S) is not None for p in patterns)


def test_the_regex_translation_is_a_glob_where_only_the_star_is_special():
    # fnmatch is an independent reference on an alphabet without its other wildcards ('?', '[')
    for p, v in [("/usr/*bin*bin", "/usr/bin"), ("/usr/*bin*bin", "/usr/sbin/bin"), ("a.b", "axb"),
                 ("*", ""), ("a**", "a/b/c"), ("/etc/*", "/etc/a/b"), ("(x)+", "(x)+")]:
        assert (re.fullmatch(glob_regex(p), v, re.S) is not None) == fnmatch.fnmatchcase(v, p), (p, v)


def test_a_middle_part_never_overlaps_the_tail():
    m = build_matcher(["/usr/*bin*bin"])
    assert not m("/usr/bin") and not m("/usr/bbin") and m("/usr/binbin") and m("/usr/x/bin/sbin")
    assert not build_matcher(["a*aa*a"])("aaa") and build_matcher(["a*aa*a"])("aaaa")


@settings(max_examples=600, deadline=None)
@given(pattern_and_values(8))
def test_one_glob_matches_as_its_regex(case: tuple[str, list[str]]):
    pattern, values = case
    m = build_matcher([pattern])
    for v in values:
        assert m(v) == reference([pattern], v), v


@settings(max_examples=200, deadline=None)
@given(st.lists(pattern_and_values(4), min_size=1, max_size=4))
def test_several_globs_match_as_their_regexes(cases: list[tuple[str, list[str]]]):
    patterns = [p for p, _ in cases]
    m = build_matcher(patterns)
    for v in [v for _, vs in cases for v in vs]:
        assert m(v) == reference(patterns, v), v


@settings(max_examples=60, deadline=None)
@given(st.lists(pattern_and_values(3), min_size=1, max_size=4))
def test_a_ruleset_of_path_globs_matches_as_their_regexes(cases: list[tuple[str, list[str]]]):
    """The ruleset's prefilter (heads by top directory, tails, then the matcher) on absolute paths."""
    globs = [clean_path(p) for p, _ in cases]  # (a path pattern must be in clean form to load)
    values = [v for _, vs in cases for v in vs]
    rules = [Rule(f"r{i}", e, compiled=compile_expression(e))
             for i, e in enumerate(f'open.file.path =~ "{g}"' for g in globs)]
    rs = RuleSet(rules)
    for v in ["/" + v for v in values]:
        expected = {r.id for r, g in zip(rules, globs, strict=True) if reference([g], v)}
        assert set(rs.match(open_event(v))) == expected, v


def test_a_backtracking_regex_does_not_hang_on_attacker_data():
    rule = compile_expression(r'exec.args =~ r"^(a|a)*$"')
    e = exec_event("/usr/bin/x", ["a" * 29 + "b"])
    start = time.perf_counter()
    assert not rule.evaluate(e)
    assert rule.evaluate(exec_event("/usr/bin/x", ["a" * 29]))
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("regex", [r"(a)\1", r"foo(?=bar)", r"(?<!x)y"])
def test_regex_features_re2_lacks_are_load_errors(regex: str):
    with pytest.raises(SeclError) as exc:
        compile_expression(f'exec.args =~ r"{regex}"')
    e = exc.value
    assert "invalid regular expression" in e.message and "RE2" in e.message
