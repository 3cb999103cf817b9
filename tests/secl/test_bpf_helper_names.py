"""bpf() helpers are named as Datadog writes them, in rules and in events: the kernel's `BPF_FUNC_x`
upper-cased without `FUNC_` (`BPF_PROBE_WRITE_USER`)."""

from __future__ import annotations

import pytest
from secl_events import bpf_event

from opencws.model import names
from opencws.secl import SeclError, compile_expression, load_policies
from opencws.secl.constants import CONSTANTS


def test_constants_use_datadog_spelling():
    assert CONSTANTS["BPF_PROBE_READ"] == 4 and CONSTANTS["BPF_OVERRIDE_RETURN"] == 58
    assert CONSTANTS["BPF_MAP_LOOKUP_ELEM"] == 1  # also the command of the same name and value
    assert "BPF_FUNC_probe_read" not in CONSTANTS


def test_the_names_the_probe_reports_are_datadogs():
    # The probe gives helper ids; the event carries their names.
    assert names.value_name(names.BPF_HELPERS, 4) == "BPF_PROBE_READ"
    assert names.value_name(names.BPF_HELPERS, 36) == "BPF_PROBE_WRITE_USER"
    assert names.value_name(names.BPF_HELPERS, 0) == "BPF_UNSPEC"


@pytest.mark.parametrize("spelling", ["BPF_OVERRIDE_RETURN", "BPF_FUNC_override_return"])
def test_events_in_either_spelling_match_datadog_rules(spelling: str):
    e = bpf_event("BPF_PROG_LOAD", prog_type="BPF_PROG_TYPE_KPROBE", helpers=[spelling])
    assert compile_expression("bpf.prog.helpers == BPF_OVERRIDE_RETURN").evaluate(e)
    assert not compile_expression("bpf.prog.helpers == BPF_SEND_SIGNAL").evaluate(e)


def test_the_kernel_spelling_in_a_rule_points_at_datadogs():
    with pytest.raises(SeclError, match="spelled as in Datadog: 'BPF_PROBE_READ'"):
        compile_expression("bpf.prog.helpers == BPF_FUNC_probe_read")
    with pytest.raises(SeclError, match="spelled as in Datadog: 'BPF_PROBE_READ'"):
        compile_expression("bpf.prog.helpers in [BPF_FUNC_probe_read]")


def test_todays_datadog_bpf_helper_rules_load(compat_dir):
    ps = load_policies([compat_dir / "datadog-default-1.69.3.policy"])
    ids = {"bpf_override_return_usage", "bpf_probe_write_user_usage", "bpf_send_signal_usage"}
    assert ids <= {r.id for r in ps.rules}
