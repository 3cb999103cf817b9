"""SECL fields of the event types OpenCWS adds to Datadog's set: mknod, symlink, setgroups."""

from __future__ import annotations

import stat

from secl_events import event, file_event, process

from opencws.model.event import File, FileEvent
from opencws.secl import compile_expression


def matches(expr: str, e) -> bool:
    return compile_expression(expr).evaluate(e)


def test_mknod_fields_read_the_node_its_requested_mode_and_device():
    node = FileEvent(path="/dev/evil", name="evil", mode=stat.S_IFCHR | 0o666, device=(1 << 8) | 3,
                     destination=File(mode=stat.S_IFCHR | 0o666))
    e = event("mknod", file=node, retval=0)
    assert matches('mknod.file.path =~ "/dev/*" && mknod.file.destination.mode & S_IFMT == S_IFCHR', e)
    assert matches("mknod.file.destination.rights == 0o666 && mknod.file.device == 259", e)
    assert matches("mknod.retval == 0", e)


def test_symlink_fields_read_the_link_and_its_target():
    e = file_event("symlink", "/tmp/x/link", dest=File(path="/etc/shadow"), mode=stat.S_IFLNK | 0o777)
    assert matches('symlink.file.path == "/tmp/x/link" && symlink.file.destination.path == "/etc/shadow"', e)
    assert matches('symlink.file.name == "link"', e)


def test_setgroups_fields_read_the_new_groups():
    e = event("setgroups", proc=process(credentials_dest={"groups": [0, 27, 1000]}), retval=0)
    assert matches("setgroups.groups == 27", e)
    assert matches("setgroups.groups in [0] && setgroups.retval == 0", e)
    assert not matches("setgroups.groups == 4", e)
    assert not matches("setgroups.groups == 0", event("setgroups", proc=process(credentials_dest={})))
