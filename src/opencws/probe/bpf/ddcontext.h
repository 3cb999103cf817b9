/* The dd context: the APM span and trace a thread is in, published by the application (opencws.tracing).
 *
 * A thread registers a 16-byte record of its own memory (span id, then trace id: little-endian u64s, a span id of
 * 0 meaning "in no span") with a marker syscall the probe sees at sys_exit:
 *     prctl(DD_PRCTL_OPTION, address, DD_PRCTL_MAGIC, tid, 0)
 * address 0 unregisters `tid` (a thread of the calling process; 0: the calling thread). The kernel refuses the
 * option (EINVAL): the call has no other effect. Every record the probe sends for a registered thread whose
 * span id is not 0 ends with a `struct dd_trailer` (header flag HF_DD, counted in the header's size). Exec and
 * exit forget the thread (a reused tid never inherits ids); an entry also remembers its task's start time, so
 * that an entry outliving its thread can never apply to a new one. Included by probe.bpf.c (after its helpers);
 * the layout is mirrored by opencws/probe/records.py and opencws/tracing. */
#ifndef OPENCWS_DDCONTEXT_H
#define OPENCWS_DDCONTEXT_H

#define DD_PRCTL_OPTION 0x4f435753u           /* "OCWS" */
#define DD_PRCTL_MAGIC 0x3130787464646464ULL  /* "ddddtx01": the record layout's version */
#define NR_prctl 157
#define HF_DD (1u << 16)                      /* the record ends with a struct dd_trailer */
#define INTERNAL_DD 27                        /* `interested` value of prctl (syscalls.py) */

struct dd_trailer {                           /* 16 bytes, the last of the record */
	__u64 span_id;
	__u64 trace_id;                           /* the low 64 bits of the 128-bit trace id */
};

struct dd_thread {
	__u64 addr;                               /* the thread's record (user memory of its process) */
	__u64 start_time;                         /* task->start_boottime of the thread that registered */
	__u32 pid;                                /* its process (unregistering is for the same process only) */
	__u32 pad;
};

/* thread id -> the record it registered */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct dd_thread);
} dd_threads SEC(".maps");

/* The marker prctl returned (whatever it returned: the kernel does not know the option). */
static __noinline int dd_register(struct pt_regs *regs)
{
	if ((__u32)regs->di != DD_PRCTL_OPTION || regs->dx != DD_PRCTL_MAGIC)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	if (t->thread_info.status & TS_COMPAT)
		return 0; /* (i386 157 is another syscall) */
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	__u64 addr = regs->si;
	if (addr) {
		struct dd_thread v = {.addr = addr, .start_time = t->start_boottime, .pid = pid_tgid >> 32};
		bpf_map_update_elem(&dd_threads, &tid, &v, BPF_ANY);
		return 0;
	}
	if (regs->r10)
		tid = (__u32)regs->r10;
	struct dd_thread *v = bpf_map_lookup_elem(&dd_threads, &tid);
	if (v && v->pid == pid_tgid >> 32)
		bpf_map_delete_elem(&dd_threads, &tid);
	return 0;
}

/* A thread that exits or execs (a new program: not the one that registered) */
static __always_inline void dd_forget(__u32 tid)
{
	bpf_map_delete_elem(&dd_threads, &tid);
}

/* Append the current thread's span and trace ids to the record (`size` bytes so far, at most REC_MASK) when it
 * registered some and is in a span; the record's new size. Records sent for another thread than the current
 * one (an io_uring completion run by a worker) use the ids of the thread in the header, read in the current
 * process's memory only when it is the same process. */
#ifdef OPENCWS_NO_DD /* the baseline of `opencws bench probe`: records without the lookup */
static __always_inline __u32 dd_append(void *rec, __u32 size)
{
	return size;
}
#else
static __always_inline __u32 dd_append(void *rec, __u32 size)
{
	struct rec_header *h = rec;
	__u32 tid = h->tid;
	struct dd_thread *v = bpf_map_lookup_elem(&dd_threads, &tid);
	if (!v)
		return size;
	struct task_struct *t = bpf_get_current_task_btf();
	if (t->tgid != h->pid || (t->pid == tid && t->start_boottime != v->start_time))
		return size;
	struct dd_trailer *d = rec + BOUND(size, 16383);
	if (bpf_probe_read_user(d, sizeof(*d), (void *)v->addr) || !d->span_id)
		return size;
	h->flags |= HF_DD;
	return size + sizeof(*d);
}
#endif

#endif
