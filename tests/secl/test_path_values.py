"""Values compared with path fields are refused where Datadog refuses them, with the clean form shown."""

from __future__ import annotations

import pytest

from opencws.secl import SeclError, compile_expression
from opencws.secl.paths import clean_path


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ('open.file.path == "/etc/"', "not in clean form (write '/etc')"),
        ('open.file.path == "/etc/./shadow"', "not in clean form (write '/etc/shadow')"),
        ('open.file.path == "/etc/../etc/shadow"', "not in clean form (write '/etc/shadow')"),
        ('open.file.path in ["/tmp", "/var/tmp/"]', "'/var/tmp/' for 'open.file.path': not in clean form"),
        (
            'open.file.path =~ "/etc/*/"',
            "path pattern '/etc/*/' for 'open.file.path': not in clean form (write '/etc/*')",
        ),
        ('open.file.path == ~"/usr/lib/../bin/*"', "write '/usr/bin/*'"),
        ('open.file.path =~ "*"', "matches every path"),
        ('open.file.path == ~"*"', "matches every path"),
        ('open.file.path in [~"/tmp/*", ~"**"]', "matches every path"),
        ('process.ancestors.file.path == "/usr/bin/"', "write '/usr/bin'"),
        ('rename.file.destination.path == "/a/b/.."', "write '/a'"),
    ],
)
def test_refused_with_the_clean_form(expr: str, message: str):
    with pytest.raises(SeclError) as exc:
        compile_expression(expr)
    assert message in exc.value.message


@pytest.mark.parametrize(
    "expr",
    [
        'open.file.path == "/"',
        'open.file.path == ""',
        'open.file.path == "/etc/shadow"',
        'open.file.path =~ "/etc/*"',
        'open.file.path =~ "*/.ssh/*"',
        'open.file.path == ~"/usr/**"',
        'open.file.name == "x/"',  # not a path field
        'open.file.name =~ "*"',
        'open.file.path == "/proc/${process.pid}/maps"',
    ],
)
def test_accepted(expr: str):
    compile_expression(expr)


@pytest.mark.parametrize(
    ("path", "clean"),
    [
        ("/a/b/", "/a/b"),
        ("/a/./b", "/a/b"),
        ("/a/../..", "/"),
        ("//a//b", "/a/b"),
        ("/", "/"),
        ("a/..", "."),
        ("*/x/", "*/x"),
    ],
)
def test_clean_form_is_gos_path_clean(path: str, clean: str):
    assert clean_path(path) == clean


def test_repeated_slashes_in_a_path_value_are_refused_with_the_clean_form():
    from opencws.secl import SeclError, compile_expression

    try:
        compile_expression('open.file.path == "/etc//shadow"')
    except SeclError as e:
        assert "/etc/shadow" in str(e) and "clean" in str(e)
    else:
        raise AssertionError("a path with '//' was accepted")
