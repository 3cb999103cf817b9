/* File operations through io_uring, one at a time, for the probe's tests (raw io_uring_setup/enter: no liburing).
 *
 * usage: uring_calls [-a] [-s] [-p] OP ARG... [-- OP ARG...]...
 *   -a: every request with IOSQE_ASYNC (run by an io-wq worker thread, not inline in the submitter)
 *   -p: a ring with a SQPOLL thread (the kernel thread submits what the program writes in the ring)
 *   -s: write "submitted" on stderr once a request is submitted, before waiting for its completion
 *   openat DFD PATH FLAGS MODE | openat2 DFD PATH FLAGS MODE | openat_fixed DFD PATH FLAGS MODE (into a fixed
 *   file slot) | unlinkat DFD PATH FLAGS | mkdirat DFD PATH MODE | renameat OLDDFD OLD NEWDFD NEW FLAGS |
 *   linkat OLDDFD OLD NEWDFD NEW FLAGS | symlinkat TARGET NEWDFD LINK | setxattr PATH NAME VALUE FLAGS |
 *   fsetxattr FD NAME VALUE FLAGS | ftruncate FD LENGTH
 * Prints each operation's result (the CQE's res) on a line.
 */
#include <linux/io_uring.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef IORING_OP_FTRUNCATE
#define IORING_OP_FTRUNCATE 55 /* (Linux 6.9; Debian 12's headers are 6.1's) */
#endif

static int ring_fd;
static unsigned *sq_tail, *sq_mask, *sq_array, *sq_flags, *cq_head, *cq_tail, *cq_mask;
static int sqpoll;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void setup(void)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	if (sqpoll) {
		p.flags = IORING_SETUP_SQPOLL;
		p.sq_thread_idle = 1000; /* ms */
	}
	ring_fd = syscall(__NR_io_uring_setup, 8, &p);
	if (ring_fd < 0)
		die("io_uring_setup");
	size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	char *sq = mmap(0, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQ_RING);
	char *cq = mmap(0, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_CQ_RING);
	sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		    ring_fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
		die("mmap");
	sq_tail = (unsigned *)(sq + p.sq_off.tail);
	sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	sq_array = (unsigned *)(sq + p.sq_off.array);
	sq_flags = (unsigned *)(sq + p.sq_off.flags);
	cq_head = (unsigned *)(cq + p.cq_off.head);
	cq_tail = (unsigned *)(cq + p.cq_off.tail);
	cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	/* a sparse table of fixed files, for openat_fixed */
	struct io_uring_rsrc_register reg;
	memset(&reg, 0, sizeof(reg));
	reg.nr = 4;
	reg.flags = IORING_RSRC_REGISTER_SPARSE;
	if (syscall(__NR_io_uring_register, ring_fd, IORING_REGISTER_FILES2, &reg, sizeof(reg)) < 0)
		die("io_uring_register");
}

static int run(struct io_uring_sqe *tmpl, int announce)
{
	unsigned tail = *sq_tail;
	unsigned idx = tail & *sq_mask;
	sqes[idx] = *tmpl;
	sq_array[idx] = idx;
	__atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (sqpoll) { /* (the SQPOLL thread submits it; wake it up when it sleeps) */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if ((__atomic_load_n(sq_flags, __ATOMIC_RELAXED) & IORING_SQ_NEED_WAKEUP) &&
		    syscall(__NR_io_uring_enter, ring_fd, 0, 0, IORING_ENTER_SQ_WAKEUP, NULL, 0) < 0)
			die("io_uring_enter (wakeup)");
	} else if (syscall(__NR_io_uring_enter, ring_fd, 1, 0, 0, NULL, 0) != 1) {
		die("io_uring_enter (submit)");
	}
	if (announce) {
		fputs("submitted\n", stderr);
		fflush(stderr);
	}
	while (__atomic_load_n(cq_tail, __ATOMIC_ACQUIRE) == *cq_head)
		if (syscall(__NR_io_uring_enter, ring_fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
			die("io_uring_enter (wait)");
	struct io_uring_cqe *c = &cqes[*cq_head & *cq_mask];
	int res = c->res;
	__atomic_store_n(cq_head, *cq_head + 1, __ATOMIC_RELEASE);
	return res;
}

static struct open_how how; /* (read by the kernel at prep, before the operation completes) */

int main(int argc, char **argv)
{
	int async = 0, announce = 0, i = 1;
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (!strcmp(argv[i], "-a"))
			async = 1;
		else if (!strcmp(argv[i], "-s"))
			announce = 1;
		else if (!strcmp(argv[i], "-p"))
			sqpoll = 1;
	}
	setup();
	while (i < argc) {
		char **a = &argv[i];
		int n = 0;
		while (i + n < argc && strcmp(argv[i + n], "--"))
			n++;
		i += n + 1;
		struct io_uring_sqe s;
		memset(&s, 0, sizeof(s));
		const char *op = a[0];
		if (!strcmp(op, "openat") || !strcmp(op, "openat_fixed")) {
			s.opcode = IORING_OP_OPENAT;
			s.fd = atoi(a[1]);
			s.addr = (uintptr_t)a[2];
			s.open_flags = strtol(a[3], 0, 0);
			s.len = strtol(a[4], 0, 0);
			if (!strcmp(op, "openat_fixed"))
				s.file_index = 1; /* slot 0 */
		} else if (!strcmp(op, "openat2")) {
			s.opcode = IORING_OP_OPENAT2;
			s.fd = atoi(a[1]);
			s.addr = (uintptr_t)a[2];
			how.flags = strtol(a[3], 0, 0);
			how.mode = strtol(a[4], 0, 0);
			s.addr2 = (uintptr_t)&how;
			s.len = sizeof(how);
		} else if (!strcmp(op, "unlinkat")) {
			s.opcode = IORING_OP_UNLINKAT;
			s.fd = atoi(a[1]);
			s.addr = (uintptr_t)a[2];
			s.unlink_flags = strtol(a[3], 0, 0);
		} else if (!strcmp(op, "mkdirat")) {
			s.opcode = IORING_OP_MKDIRAT;
			s.fd = atoi(a[1]);
			s.addr = (uintptr_t)a[2];
			s.len = strtol(a[3], 0, 0);
		} else if (!strcmp(op, "renameat") || !strcmp(op, "linkat")) {
			s.opcode = op[0] == 'r' ? IORING_OP_RENAMEAT : IORING_OP_LINKAT;
			s.fd = atoi(a[1]);
			s.addr = (uintptr_t)a[2];
			s.len = atoi(a[3]);
			s.addr2 = (uintptr_t)a[4];
			s.rename_flags = strtol(a[5], 0, 0); /* (hardlink_flags: the same field) */
		} else if (!strcmp(op, "symlinkat")) {
			s.opcode = IORING_OP_SYMLINKAT;
			s.addr = (uintptr_t)a[1];
			s.fd = atoi(a[2]);
			s.addr2 = (uintptr_t)a[3];
		} else if (!strcmp(op, "ftruncate")) {
			s.opcode = IORING_OP_FTRUNCATE;
			s.fd = atoi(a[1]);
			s.off = strtoll(a[2], 0, 0);
		} else if (!strcmp(op, "setxattr") || !strcmp(op, "fsetxattr")) {
			s.opcode = op[0] == 's' ? IORING_OP_SETXATTR : IORING_OP_FSETXATTR;
			if (op[0] == 's')
				s.addr3 = (uintptr_t)a[1];
			else
				s.fd = atoi(a[1]);
			s.addr = (uintptr_t)a[2];
			s.addr2 = (uintptr_t)a[3];
			s.len = strlen(a[3]);
			s.xattr_flags = strtol(a[4], 0, 0);
		} else {
			fprintf(stderr, "unknown operation %s\n", op);
			return 2;
		}
		if (async)
			s.flags |= IOSQE_ASYNC;
		printf("%d\n", run(&s, announce));
		fflush(stdout);
	}
	return 0;
}
