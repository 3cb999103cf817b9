"""Field helpers: values derived from the event (flags among the arguments)."""

from __future__ import annotations

from opencws.secl.fields import args_flags


def test_args_flags_are_taken_from_dashed_arguments_only():
    args = ["ls", "-la", "--color=auto", "--all", "x", "ab", "-", "--", "a-b"]
    assert args_flags(args) == ["l", "a", "la", "all"]
    assert args_flags(None) == [] and args_flags(["-x=1", "-"]) == []


def test_datadog_fields_derived_from_the_event():
    """`*.file.extension` (from the last dot of the name, as Datadog's), `event.origin` (this agent's events all
    come from its eBPF probe)."""
    from secl_events import exec_event, open_event

    from opencws.secl import compile_expression

    def holds(expr: str, event) -> bool:
        return compile_expression(expr).evaluate(event)

    assert holds('open.file.extension == ".yaml"', open_event("/etc/kubernetes/manifests/a.yaml"))
    assert holds('open.file.extension == ".gz"', open_event("/tmp/a.tar.gz"))
    assert holds('open.file.extension == ".bashrc"', open_event("/root/.bashrc"))
    assert holds('open.file.extension == ""', open_event("/etc/passwd"))
    assert holds('exec.file.extension == ".sh" && event.origin == "ebpf"', exec_event("/tmp/x.sh"))
    assert holds('exec.argv0 == ""', exec_event("/tmp/x.sh"))  # a stored event carries no argv[0]


def test_exit_cause_and_code_from_the_wait_status_and_cgroup_ids_from_the_agents_entries():
    import dataclasses

    from secl_events import event, process

    from opencws.secl import compile_expression

    def holds(expr: str, ev) -> bool:
        return compile_expression(expr).evaluate(ev)

    exited = dataclasses.replace(event("exit"), exit_status=3 << 8)
    assert holds("exit.cause == EXITED && exit.code == 3", exited)
    dumped = dataclasses.replace(event("exit"), exit_status=0x80 | 11)
    assert holds("exit.cause == COREDUMPED && exit.code == 11", dumped)
    killed = dataclasses.replace(event("exit"), exit_status=9)
    assert holds("exit.cause == SIGNALED && exit.code == 9", killed)
    in_cgroup = event("exec", proc=dataclasses.replace(process("/bin/sh"), cgroup_id=4242))
    assert holds('exec.cgroup.id == "4242" && cgroup.file.inode == 4242 && process.parent.cgroup.id == ""', in_cgroup)
