"""errno constants are negative, as Datadog defines them: they compare with return values directly."""

from __future__ import annotations

from secl_events import event

from opencws.model.event import FileEvent
from opencws.secl import compile_expression, load_policies


def mkdir(outcome: str = "Success", retval: int | None = None):
    return event("mkdir", file=FileEvent(path="/etc/cron.d/x", name="x"), outcome=outcome, retval=retval)


def test_a_refused_mkdir_matches_the_errno_name():
    assert compile_expression("mkdir.retval == EACCES").evaluate(mkdir("Refused"))
    assert compile_expression("mkdir.retval == EACCES").evaluate(mkdir(retval=-13))
    assert compile_expression("mkdir.retval in [EACCES, EPERM]").evaluate(mkdir(retval=-1))
    assert not compile_expression("mkdir.retval == EACCES").evaluate(mkdir("Success"))
    assert not compile_expression("mkdir.retval == ENOENT").evaluate(mkdir(retval=-13))


def test_errno_constants_are_negative():
    assert compile_expression("EACCES == -13 && EPERM == -1 && ENOENT == -2 && mkdir.retval == 0").evaluate(
        mkdir("Success")
    )


def test_the_old_negated_spelling_is_warned_about():
    rule = compile_expression("mkdir.retval == -EACCES")
    assert not rule.evaluate(mkdir(retval=-13))  # -EACCES is 13
    (w,) = rule.warnings
    assert "'-EACCES' is 13" in w.message and "write 'EACCES'" in w.message
    assert (w.pos, w.end) == (16, 23)
    assert compile_expression("mkdir.retval == EACCES").warnings == []


def test_the_default_policy_uses_the_datadog_spelling():
    from opencws.secl.policies import DEFAULT_POLICY

    ps = load_policies([DEFAULT_POLICY])
    assert not ps.errors and not [w for w in ps.warnings if "errno" in w.message]
