"""Where Datadog's versions disagree, one behaviour applied everywhere (see docs/secl.md):

- glob `*` crosses `/` (agent 7.33, the seed schema's era; 7.34+ stops it at `/` in `.path` fields), in every
  way a pattern is written and on every evaluation path (closures, rule sets and their gates, partial
  evaluation);
- strings and patterns decode `\\"`, `\\\\`, `\\n`, `\\t`, `\\r` (7.33's Go unquoting of them; today's agent
  decodes none) and keep any other backslash as written (as today's agent, so its `\\Device\\...` patterns
  load); regexes are raw but for `\\"`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from secl_events import open_event

from opencws.secl import RuleSet, compile_search, load_policies
from opencws.secl.lexer import PATTERN, REGEX, STRING, tokenize

DEEP = open_event("/etc/cron.d/sub/dir/job")


@pytest.mark.parametrize(
    "cond",
    [
        'open.file.path =~ "/etc/cron.d/*"',
        'open.file.path == ~"/etc/cron.d/*"',
        'open.file.path in [~"/etc/cron.d/*"]',
        'open.file.path =~ "/etc/*/job"',
        'open.file.path =~ "*/dir/job"',
        'open.file.path in [~"/etc/*/job", "/x"]',
        'open.file.name =~ "j*"',
        'process.ancestors.file.path =~ "/usr/*"',
        'open.file.path =~ "/etc/cron.d/**"',  # ** is * here
    ],
)
def test_star_crosses_slashes_in_every_spelling(cond: str):
    assert compile_search(cond).evaluate(DEEP)


def policy(tmp_path: Path, text: str):
    p = tmp_path / "p.policy"
    p.write_text(text)
    ps = load_policies([p])
    assert not ps.errors, ps.errors
    return ps


def test_star_crosses_slashes_in_rule_sets_gates_and_partial_evaluation(tmp_path: Path):
    ps = policy(
        tmp_path,
        "macros:\n  - id: cron_dirs\n    values: ['~\"/etc/cron.d/*\"']\n"
        "rules:\n"
        "  - id: cron\n    expression: open.file.path in cron_dirs\n"
        '  - id: inner\n    expression: open.file.path =~ "/etc/*/job"\n',
    )
    rs = RuleSet(ps.rules)
    assert rs.match(DEEP) == rs.match_all(DEEP) == ["cron", "inner"]
    assert rs.could_match("open", "open.file.path", "/etc/cron.d/sub/dir/job")
    assert not rs.could_match("open", "open.file.path", "/var/x")


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        (r'"a\"b"', STRING, 'a"b'),
        (r'"a\\b"', STRING, "a\\b"),
        (r'"a\nb\tc\rd"', STRING, "a\nb\tc\rd"),
        (r'"C:\Users\x"', STRING, "C:\\Users\\x"),  # other escapes kept as written
        (r'"\0"', STRING, "\\0"),
        (r'~"\Device\*\windows\**"', PATTERN, "\\Device\\*\\windows\\**"),
        (r'~"a\"b*"', PATTERN, 'a"b*'),
        (r'r"^a\d+\.\"x"', REGEX, '^a\\d+\\."x'),
    ],
)
def test_escapes(text: str, kind: str, value: str):
    (tok, _) = tokenize(text)
    assert (tok.kind, tok.value) == (kind, value)


def test_escapes_mean_the_same_in_macro_values_and_inline(tmp_path: Path):
    e = open_event('/tmp/a"b')
    ps = policy(
        tmp_path,
        "macros:\n  - id: odd\n    values: ['/tmp/a\"b']\n"
        'rules:\n  - id: inline\n    expression: \'open.file.path == "/tmp/a\\"b"\'\n'
        "  - id: via_macro\n    expression: open.file.path in odd\n",
    )
    assert RuleSet(ps.rules).match(e) == ["inline", "via_macro"]
