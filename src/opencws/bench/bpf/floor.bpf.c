// SPDX-License-Identifier: GPL-2.0
/* The benchmark's floor: empty programs on the syscall hook sites, to measure what attaching them costs
 * before any program body runs. `opencws bench probe` attaches a subset of these per configuration:
 * both raw sites (the floor), one raw site, or a single per-syscall tracepoint. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("raw_tracepoint/sys_enter")
int floor_enter(void *ctx)
{
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int floor_exit(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int floor_exit_openat(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int floor_enter_unlinkat(void *ctx)
{
	return 0;
}

/* the per-syscall tracepoints the probe adds for a chown's owner before the call */
SEC("tracepoint/syscalls/sys_enter_chown")
int floor_enter_chown(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_fchown")
int floor_enter_fchown(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_lchown")
int floor_enter_lchown(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_fchownat")
int floor_enter_fchownat(void *ctx)
{
	return 0;
}
