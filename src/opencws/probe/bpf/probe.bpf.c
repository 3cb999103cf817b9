// SPDX-License-Identifier: GPL-2.0
/* OpenCWS kernel probe.
 *
 * One sys_enter and one sys_exit program (tp_btf: the raw tracepoints with typed arguments, so pt_regs
 * and the task are read without helper calls) dispatch by syscall number; an array map (`interested`)
 * makes every other syscall return after one lookup. Process life cycle comes from the
 * sched tp_btf hooks, which cost nothing to the syscall path. Paths are resolved in the kernel by
 * walking the dentry cache (down from the dirfd/cwd/root along the user string, then up to the
 * task's root across mounts); a walk that cannot complete is reported as such, never guessed.
 * Loops are bpf_loop callbacks so that the verifier checks each body once.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "probe.h"

char LICENSE[] SEC("license") = "GPL";

#define NR_SYSCALLS 512
#define AT_FDCWD -100
#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_REMOVEDIR 0x200
#define AT_SYMLINK_FOLLOW 0x400
#define O_NOFOLLOW 0x20000
#define O_CREAT 0x40
#define O_WRONLY 0x1
#define O_TRUNC 0x200
#define UMOUNT_NOFOLLOW 0x8
#define SELINUX_MAGIC 0xf97cff8c
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#define APPROVE_BY_PATH 2          /* approver_active bit: path approvers exist for the type */
#define UTIME_NOW_SENTINEL 0xffffffffffffffffULL
#define S_IFMT_BITS 0170000
#define S_IFDIR_BITS 0040000

#define REC_SIZE 20480
#define REC_MASK 16383
#define PMASK (PATH_BUF - 1)
#define MAX_COMPONENTS (PATH_BUF / 2) /* a string of PATH_MAX bytes has at most this many ("./" repeated) */
#define MAX_CHILDREN 4096
#define MAX_DEPTH (PATH_BUF / 2 + 64) /* components of a path of PATH_BUF bytes, and mount crossings */
#define MAX_SUBMOUNTS 512
#define MAX_INSN_CHUNKS 32768 /* of 32 instructions: 1M, the kernel's own limit on a program's size */

/* x86_64 syscall numbers (the probe supports x86_64 only) */
#define NR_write 1
#define NR_open 2
#define NR_truncate 76
#define NR_ftruncate 77
#define NR_rename 82
#define NR_mkdir 83
#define NR_rmdir 84
#define NR_creat 85
#define NR_link 86
#define NR_unlink 87
#define NR_chmod 90
#define NR_fchmod 91
#define NR_chown 92
#define NR_fchown 93
#define NR_lchown 94
#define NR_setuid 105
#define NR_setgid 106
#define NR_setreuid 113
#define NR_setregid 114
#define NR_setresuid 117
#define NR_setresgid 119
#define NR_setfsuid 122
#define NR_setfsgid 123
#define NR_capset 126
#define NR_utime 132
#define NR_mount 165
#define NR_umount2 166
#define NR_move_mount 429
#define I_CTIME_QUERIED (1u << 31)
#define MOVE_MOUNT_T_SYMLINKS 0x10
#define MOVE_MOUNT_F_EMPTY_PATH 0x4
#define RENAME_EXCHANGE (1 << 1)
#define CLONE_NEWNS 0x00020000
/* mount(2) flags that change an existing mount instead of making one: MS_REMOUNT, MS_UNBINDABLE, MS_PRIVATE,
 * MS_SLAVE, MS_SHARED */
#define MS_CHANGES_EXISTING ((1 << 5) | (1 << 17) | (1 << 18) | (1 << 19) | (1 << 20))
#define NR_setxattr 188
#define NR_lsetxattr 189
#define NR_fsetxattr 190
#define NR_removexattr 197
#define NR_lremovexattr 198
#define NR_fremovexattr 199
#define NR_utimes 235
#define NR_openat 257
#define NR_mkdirat 258
#define NR_fchownat 260
#define NR_futimesat 261
#define NR_unlinkat 263
#define NR_renameat 264
#define NR_linkat 265
#define NR_fchmodat 268
#define NR_utimensat 280
#define NR_renameat2 316
#define NR_bpf 321
#define NR_openat2 437
#define NR_open_by_handle_at 304
#define NR_fchmodat2 452
#define NR_setxattrat 463
#define NR_removexattrat 466
#define NR_mknod 133
#define NR_symlink 88
#define NR_symlinkat 266
#define NR_setgroups 116
#define NR_mknodat 259
#define NR_unshare 272
#define NR_setns 308
#define NR_ioctl 16
#define AT_EMPTY_PATH 0x1000
#define O_TMPFILE_BIT 0x400000     /* __O_TMPFILE */
#define FMODE_CREATED_BIT 0x100000 /* file->f_mode: this open created the file */

/* `interested` values beyond the event types: syscalls watched for the probe's own state */
#define INTERNAL_MOUNTS 28         /* mount, umount2, move_mount whose type is off, pivot_root: a success bumps
				      the discarder generation (a mount id may be reused; paths change) */
#define INTERNAL_CHROOT 29         /* chroot: from now on a task may be in a chroot (chroot_seen) */
#define INTERNAL_CRED 30           /* unshare, setns: may change the credentials (user namespaces) */
#define INTERNAL_BIRTH 31          /* mknod, mknodat: a new inode (a stale inode discarder must go) */
#define INTERNAL_IDENTITY 26       /* ioctl: FS_IOC_SETVERSION gives an inode another identity (inode_identity) */

/* i386 syscalls (int $0x80 from a 32-bit or a 64-bit task: the entry code sets TS_COMPAT in thread_info.status
 * until the return to user mode, so both tracepoints see it) */
#define TS_COMPAT 0x0002
#define IV_UID16 1                 /* 16-bit uid/gid arguments (0xffff: -1) */
#define IV_TIME32 2                /* times with a 32-bit time_t */
#define IV_NO_FLAGS 4              /* oldumount: umount2 without flags */

/* `enabled` values */
#define ENABLED 1
#define AT_EXIT 2                  /* unlink/rmdir/rename: resolved at sys_exit (no sys_enter needed) */

/* ------------------------------------------------------------------ maps */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

/* syscall number -> event type it may produce as an x86_64 syscall | the type as an i386 one << 8 (0: return at
 * once, without looking at the ABI) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SYSCALLS);
	__type(key, __u32);
	__type(value, __u32);
} interested SEC(".maps");

/* i386 syscall number -> the x86_64 number of the syscall it acts as | IV_* variant bits << 16 (syscalls.py) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NR_SYSCALLS);
	__type(key, __u32);
	__type(value, __u32);
} compat_canon SEC(".maps");

/* event type -> 1 when some consumer wants it */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EV_MAX);
	__type(key, __u32);
	__type(value, __u32);
} enabled SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EV_MAX * NR_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* event type -> 1 when approvers are active for it (the event then needs an approver to pass) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EV_MAX);
	__type(key, __u32);
	__type(value, __u32);
} approver_active SEC(".maps");

/* event type -> flags mask: an event whose flags_arg has one of these bits is approved */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EV_MAX);
	__type(key, __u32);
	__type(value, __u32);
} flags_approvers SEC(".maps");

/* FNV-1a 64 of a basename -> bitmask of event types it approves */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u32);
} basename_approvers SEC(".maps");

/* FNV-1a 64 of an absolute path -> bitmask of event types it approves */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u32);
} path_approvers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct inode_key);
	__type(value, struct discarder);
} discarder_inodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct discarder);
} discarder_pids SEC(".maps");

/* [0]: nonzero when some pid discarder may exist (skips a hash lookup per event otherwise) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} pid_discarders_any SEC(".maps");

/* [0]: a task may be in a chroot (set by a chroot() here, by the loader when /proc shows one); until then no
 * task is, and task_in_chroot costs one lookup */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} chroot_seen SEC(".maps");

/* [0]: discarder generation; a discarder of another generation is ignored */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} generation SEC(".maps");

/* thread id -> its credentials as last seen (fork, exec, every credential-changing syscall): the "before"
 * of a setuid/setgid/capset without a sys_enter hook. Filled for the tasks running at start from /proc. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct ocws_creds);
} cred_cache SEC(".maps");

/* mount ids to treat as selinuxfs (tests declare a stand-in tmpfs here) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} selinuxfs_mounts SEC(".maps");

/* [0]: number of stand-in selinuxfs mounts declared (skips a hash lookup per write() while none) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} selinuxfs_standins SEC(".maps");

struct inflight {
	__u32 nr;
	__u32 type;
	__u32 plen;
	__u32 flags_arg;
	struct file_info fi;
	struct ocws_creds creds;
	__u64 over_ino;                /* rename: the inode the destination named before the call (0: none) */
	__u32 over_mode, over_uid, over_gid, over_nlink;
	__u64 dentry, dmnt;            /* unlink/rmdir: the dentry the walk found (checked at sys_exit), its mount */
	__u32 dropped, pad;            /* filtered at sys_enter: only the check at sys_exit is left to do */
	char path[PATH_BUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct inflight);
} inflight SEC(".maps");

/* chown: the file's owner when the call began, read at sys_enter (see owner_at_enter) */
struct owner_before {
	__u64 inode;                   /* struct inode * the walk (or the fd) found; 0: none */
	__u64 seq;                     /* owner_seq[inode] then */
	__u64 ino;
	__u32 dev, nr;                 /* its device; the syscall (orig_ax) */
	__u32 uid, gid;
	__u32 stamped, clean;          /* the kernel stamped `inode` in this call; no other chown stamped it since */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct owner_before);
} owner_before SEC(".maps");

/* inode (struct inode *) -> a value that changes at every stamp of a chown on it: a chown by another thread
 * between a call's sys_enter and its own stamp shows as a changed value */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} owner_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} owner_seq_next SEC(".maps");

/* chown on ext4: the owner of the first inodes ext4 starts a journal handle on during the call (owner_ext4) */
#define LOCKED_MAX 4
struct owner_locked {
	__u32 nr, n;                   /* the syscall (orig_ax); inodes kept */
	__u64 inode[LOCKED_MAX];       /* struct inode * */
	__u64 ino[LOCKED_MAX];
	__u32 dev[LOCKED_MAX], uid[LOCKED_MAX], gid[LOCKED_MAX];
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct owner_locked);
} owner_locked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct owner_locked);
} owner_locked_heap SEC(".maps");

struct rec_buf {
	__u8 b[REC_SIZE];
};

/* A syscall as the handlers see it, whatever the ABI it came through */
struct sysc {
	__u64 a[6];                    /* arguments (i386: ebx, ecx, edx, esi, edi, ebp, zero-extended) */
	__u32 nr;                      /* the x86_64 number of the syscall (an i386 one translated) */
	__u32 raw_nr;                  /* the number the task used (records carry it, with HF_I386) */
	__u32 type;                    /* the `interested` type */
	__u32 variant;                 /* IV_* */
	__u32 hflags;                  /* HF_I386, HF_IO_URING or 0 */
	__u32 kstr;                    /* string arguments are in kernel memory (io_uring's copies) */
	__u32 uflags;                  /* io_uring: U_* */
	__u32 pad;
	__u64 file;                    /* io_uring: the request's file (an fd-less operation on a fixed file) */
	__s64 ret;                     /* the return value (set by handle_file_exit) */
	__u32 counted;                 /* already counted as seen (at sys_enter) */
	__u32 pad2;
};

/* The inodes the kernel stamped (ctime) during a covered syscall of a thread (see note_acted) */
#define ACTED_MAX 6
struct acted {
	__u32 nr;                      /* the syscall (orig_ax) during which they were stamped */
	__u32 n;
	__u64 inode[ACTED_MAX];        /* struct inode *, in stamping order, without repeats */
	/* unlink/rmdir: the first two inodes as they were when stamped (the removed one is gone by sys_exit) */
	__u64 parent[2];               /* the inode of its dentry's parent */
	__u64 dentry[2];               /* its dentry (0: several: a file with another cached name, which one goes is unknown) */
	__u64 ino[2];
	__u32 mode[2], uid[2], gid[2], nlink[2];
	__u32 i_generation[2];
	__u32 name_len[2];
	char name[2][256];
};

#define U_SAVED_HEADER 1               /* io_uring: emit the submitter's header (work.uring_h) */
#define U_FIXED_SLOT 2                 /* io_uring: an open into a fixed file slot (the result is no fd) */
#define U_NOT_CAPTURED 4               /* io_uring: completed without its submission seen (strings unknown) */

struct work {
	char upath[PATH_BUF];
	char lbuf[PATH_BUF];           /* symlink target + the rest of the path being walked */
	char pbuf[PATH_BUF + 256];
	char sp[2][PATH_BUF];
	char spill[PATH_BUF];          /* lets the verifier accept sp[1] + len */
	char name[256];
	char extra[EXTRA_MAX];
	char extra_spill[EXTRA_MAX];
	struct file_info fi[2];
	__u32 splen[2];
	__u64 helpers[4];
	/* walk state shared with the bpf_loop callbacks */
	__u64 d, m, root_d, root_m;
	__u64 iter, iter_head, found;
	__u32 pos, len, status, off;
	__u32 comp_start, comp_len, follow, done;
	__u64 insns;
	__u32 insn_cnt, bstart;
	__u32 insn_unread; /* a chunk of instructions could not be read: the helpers are incomplete */
	__u64 hash;
	__u32 scan, cmp_diff;
	__u64 res_d, res_m;            /* what the last finish_slot resolved */
	__u32 hops, pad3;              /* symlinks followed in this walk */
	struct inode_key disc_key;     /* the target inode early_decision saw (when disc_hit) */
	struct sysc sc;                /* the syscall sys_exit handles */
	struct rec_header uring_h;     /* io_uring: the submitter, as seen at submission */
	__u32 disc_hit, pad2;
	__u32 stop_last, stop_end;     /* the walk stopped on the last component, which ends at stop_end */
	__u32 rewritten;
	struct acted act;              /* the inodes the kernel stamped during this syscall (take_acted; act.n = 0: none) */
	__u64 arg_ptr;                 /* a pointer argument of a global subprogram (which takes scalars only) */
	__u32 exchange_back;           /* handle_removal_exit sent the first move of an exchange: its caller sends the
				      second (emit_exchange_back: one call deeper would pass the verifier's 8 frames) */
	__u64 over_ino;                /* rename: the overwritten inode (from the in-flight entry) */
	__u32 over_mode, over_uid, over_gid, over_nlink;
	__u64 in_dentry, in_dmnt;      /* unlink/rmdir: the in-flight entry's dentry and mount */
	__u32 in_dropped, pad5;         /* the event's path string was rewritten during the call (FI_REWRITTEN); kept
				      here, not in a register: a live known flag would double what the verifier walks */
	struct owner_before ob;        /* chown: the owner at its start (take_acted; ob.inode = 0: none) */
	struct owner_locked ol;        /* chown on ext4: the owners under the inode lock (take_acted; ol.n = 0: none) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rec_buf);
} rec_heap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct work);
} work_heap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct inflight);
} inflight_heap SEC(".maps");

static const __u32 zero = 0;

/* kfunc (Linux 6.2+): a read-only typed view of a kernel pointer, so that fields load directly instead of
 * through one bpf_probe_read_kernel call each */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define RO(type, p) ((type *)bpf_rdonly_cast((const void *)(p), bpf_core_type_id_kernel(type)))

/* A mask the compiler cannot drop: the verifier needs to see it on the register it checks. */
#define BOUND(v, m) ({ __u64 __v = (v); asm volatile("%0 &= " #m : "+r"(__v)); __v; })

/* ------------------------------------------------------------------ small helpers */

static __always_inline struct work *get_work(void)
{
	return bpf_map_lookup_elem(&work_heap, &zero);
}

static __always_inline void count(__u32 type, __u32 which)
{
	__u32 key = type * NR_COUNTERS + which;
	__u64 *v = bpf_map_lookup_elem(&counters, &key);
	if (v)
		*v += 1;
}

/* enabled and resolved at sys_enter (not AT_EXIT) */
static __always_inline int enabled_at_enter(__u32 type)
{
	__u32 *v = bpf_map_lookup_elem(&enabled, &type);
	return v && (*v & (ENABLED | AT_EXIT)) == ENABLED;
}

static __always_inline int enabled_at_exit(__u32 type)
{
	__u32 *v = bpf_map_lookup_elem(&enabled, &type);
	return v && (*v & (ENABLED | AT_EXIT)) == (ENABLED | AT_EXIT);
}

static __always_inline __u32 current_generation(void)
{
	__u32 *g = bpf_map_lookup_elem(&generation, &zero);
	return g ? *g : 0;
}

static __always_inline void bump_generation(void)
{
	__u32 *g = bpf_map_lookup_elem(&generation, &zero);
	if (!g)
		return;
	__sync_fetch_and_add(g, 1);
	if (*g == GENERATION_ALWAYS) /* reserved (a racing bump may step over it: as good) */
		__sync_fetch_and_add(g, 1);
}

static __always_inline struct mount *real_mount(struct vfsmount *v)
{
	return (struct mount *)((char *)v - bpf_core_field_offset(struct mount, mnt));
}

/* An inode's identity beside its number (the third part of its discarders' key, file_info.i_generation):
 * i_generation, which ext2/3/4, tmpfs, xfs and btrfs draw anew for every inode they make, so that an inode born on
 * a freed number is told from the dead one. 0: the filesystem gives none (procfs, ramfs, devpts, bpffs): the agent
 * learns no inode discarder for such a file. An overlay inode has none of its own and shows its real inode's number
 * (the upper layer's, else the lower one's): its identity is that inode's (read only when i_generation is 0). */
static __always_inline __u32 inode_identity(struct inode *ino)
{
	struct inode *ti = RO(struct inode, ino);
	__u32 g = ti->i_generation;
	if (g || RO(struct super_block, ti->i_sb)->s_magic != OVERLAYFS_SUPER_MAGIC)
		return g;
	/* (the fields of struct ovl_inode after its vfs_inode, read at their distance from the inode) */
	__u64 base = bpf_core_field_offset(struct ovl_inode, vfs_inode);
	struct dentry *real = NULL;
	bpf_probe_read_kernel(&real, sizeof(real),
			      (char *)ino + (bpf_core_field_offset(struct ovl_inode, __upperdentry) - base));
	if (!real) {
		struct ovl_entry *oe = NULL;
		bpf_probe_read_kernel(&oe, sizeof(oe), (char *)ino + (bpf_core_field_offset(struct ovl_inode, oe) - base));
		if (!oe || !BPF_CORE_READ(oe, __numlower))
			return 0;
		real = BPF_CORE_READ(oe, __lowerstack[0].dentry);
	}
	struct inode *ri = BPF_CORE_READ(real, d_inode);
	return ri ? BPF_CORE_READ(ri, i_generation) : 0;
}

static __always_inline void read_creds(struct task_struct *t, struct ocws_creds *c)
{
	const struct cred *cr = BPF_CORE_READ(t, cred);
	c->uid = BPF_CORE_READ(cr, uid.val);
	c->gid = BPF_CORE_READ(cr, gid.val);
	c->euid = BPF_CORE_READ(cr, euid.val);
	c->egid = BPF_CORE_READ(cr, egid.val);
	c->suid = BPF_CORE_READ(cr, suid.val);
	c->sgid = BPF_CORE_READ(cr, sgid.val);
	c->fsuid = BPF_CORE_READ(cr, fsuid.val);
	c->fsgid = BPF_CORE_READ(cr, fsgid.val);
	c->cap_effective = BPF_CORE_READ(cr, cap_effective.val);
	c->cap_permitted = BPF_CORE_READ(cr, cap_permitted.val);
	c->cap_inheritable = BPF_CORE_READ(cr, cap_inheritable.val);
}

/* the last component of the task's cgroup v2 path: with the cgroup id, what finds the container */
static __always_inline void read_cgroup_name(struct task_struct *t, char *buf)
{
	const char *name = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, name);
	if (bpf_probe_read_kernel_str(buf, CGROUP_NAME, name) < 0)
		buf[0] = 0;
}

static __always_inline void read_tty_name(struct task_struct *t, char *buf)
{
	struct tty_struct *tty = BPF_CORE_READ(t, signal, tty);
	buf[0] = 0;
	if (tty && bpf_core_read_str(buf, TTY_NAME, &tty->name) < 0)
		buf[0] = 0;
}

/* The task's root is not the top of its mount namespace (a chroot): the same inode has another path for it
 * than for the processes an inode discarder was learned from, so no inode discarder applies to it (and its
 * records say so: the agent learns none from them). The top: the root of a mount that sits on the root of its
 * parent, up to the namespace's first mount (the host's root sits on rootfs; a container's, after pivot_root,
 * on its namespace's copy of it). Direct loads only. */
static __always_inline int task_in_chroot(void)
{
	__u32 *seen = bpf_map_lookup_elem(&chroot_seen, &zero);
	if (!seen || !*seen)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	struct fs_struct *fs = t->fs;
	if (!fs)
		return 0;
	struct vfsmount *rv = fs->root.mnt;
	if (fs->root.dentry != RO(struct vfsmount, rv)->mnt_root)
		return 1;
	struct mount *m = RO(struct mount, real_mount(rv));
	for (int i = 0; i < 4; i++) {
		struct mount *p = RO(struct mount, m->mnt_parent);
		if (p == m)
			return 0;
		if (m->mnt_mountpoint != RO(struct vfsmount, &p->mnt)->mnt_root)
			return 1;
		m = p;
	}
	return 1; /* deeper than any namespace's top: treated as a chroot (no discarder: never a missed event) */
}

static __always_inline void fill_header(struct rec_header *h, __u16 kind, __u16 type)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	h->kind = kind;
	h->type = type;
	h->size = 0;
	h->ktime = bpf_ktime_get_ns();
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->ppid = BPF_CORE_READ(t, real_parent, tgid);
	h->flags = task_in_chroot() ? HF_IN_CHROOT : 0;
	h->uid = (__u32)uid_gid;
	h->gid = uid_gid >> 32;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

#include "ddcontext.h"

static __always_inline int output(void *rec, __u32 size, __u32 type)
{
	size &= REC_MASK;
	if (size < sizeof(struct rec_header))
		return -1;
	size = dd_append(rec, size);
	((struct rec_header *)rec)->size = size;
	if (bpf_ringbuf_output(&events, rec, size, 0)) {
		count(type, CNT_LOST);
		return -1;
	}
	count(type, CNT_SENT);
	return 0;
}

/* ------------------------------------------------------------------ path walk down (user string -> dentry) */

static long submount_step(__u32 i, void *ctx)
{
	struct work *w = get_work();
	if (!w)
		return 1;
	if (!w->iter || w->iter == w->iter_head)
		return 1;
	__u64 maddr = w->iter - bpf_core_field_offset(struct mount, mnt_child);
	if ((__u64)RO(struct mount, maddr)->mnt_mountpoint == w->d) {
		w->found = maddr;
		return 1;
	}
	w->iter = (__u64)RO(struct list_head, w->iter)->next;
	return 0;
}

/* w->d is a mountpoint of w->m: step onto the root of the mount on top of it */
static __always_inline void cross_mounts(struct work *w)
{
	for (int k = 0; k < 4; k++) {
		struct dentry *d = (struct dentry *)w->d;
		__u32 dflags = BPF_CORE_READ(d, d_flags);
		if (!(dflags & bpf_core_enum_value(enum dentry_flags, DCACHE_MOUNTED)))
			return;
		struct mount *m = (struct mount *)w->m;
		w->iter_head = (__u64)((char *)m + bpf_core_field_offset(struct mount, mnt_mounts));
		w->iter = (__u64)BPF_CORE_READ(m, mnt_mounts.next);
		w->found = 0;
		bpf_loop(MAX_SUBMOUNTS, submount_step, NULL, 0);
		if (!w->found)
			return;
		struct mount *top = (struct mount *)w->found;
		w->m = w->found;
		w->d = (__u64)BPF_CORE_READ(top, mnt.mnt_root);
	}
}

static __always_inline void go_up(struct work *w)
{
	for (int k = 0; k < 8; k++) {
		if (w->d == w->root_d && w->m == w->root_m)
			return;
		struct mount *m = (struct mount *)w->m;
		if (w->d != (__u64)BPF_CORE_READ(m, mnt.mnt_root))
			break;
		struct mount *parent = BPF_CORE_READ(m, mnt_parent);
		if (parent == m)
			return;
		w->d = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
		w->m = (__u64)parent;
	}
	struct dentry *cur = (struct dentry *)w->d;
	w->d = (__u64)BPF_CORE_READ(cur, d_parent);
}

static long cmp_step(__u32 i, void *ctx)
{
	struct work *w = get_work();
	if (!w || i >= w->comp_len)
		return 1;
	if (w->name[i & 255] != w->upath[(w->comp_start + i) & PMASK]) {
		w->cmp_diff = 1;
		return 1;
	}
	return 0;
}

static long skip_slash_step(__u32 i, void *ctx)
{
	struct work *w = get_work();
	if (!w)
		return 1;
	if (w->scan < w->len && w->upath[w->scan & PMASK] == '/') {
		w->scan++;
		return 0;
	}
	return 1;
}

static long comp_scan_step(__u32 i, void *ctx)
{
	struct work *w = get_work();
	if (!w)
		return 1;
	if (w->scan >= w->len || w->upath[w->scan & PMASK] == '/')
		return 1;
	w->scan++;
	return 0;
}

static long child_step(__u32 i, void *ctx)
{
	struct work *w = get_work();
	if (!w)
		return 1;
	if (!w->iter)
		return 1;
	__u64 caddr = w->iter - bpf_core_field_offset(struct dentry, d_sib);
	struct dentry *c = RO(struct dentry, caddr);
	__u32 len = c->d_name.len;
	if (len == w->comp_len && len > 0 && len < 256) {
		bpf_probe_read_kernel(w->name, BOUND(len, 255), c->d_name.name);
		w->cmp_diff = 0;
		bpf_loop(256, cmp_step, NULL, 0);
		if (!w->cmp_diff) {
			w->found = caddr;
			return 1;
		}
	}
	w->iter = (__u64)RO(struct hlist_node, w->iter)->next;
	return 0;
}

#define ST_DONE 1
#define ST_STOP 2
#define MAX_SYMLINKS 8

/* Continue the walk through symlink f: the string becomes its target followed by the rest of the path
 * (from `next`), walked from the root when the target is absolute, else from the symlink's directory.
 * Only symlinks whose target is in memory (inode->i_link: ext4 fast symlinks, tmpfs...) can be followed;
 * -1 leaves the walk to stop there (reported unresolved). */
static __always_inline int follow_symlink(struct work *w, struct dentry *f, __u32 next)
{
	if (w->hops >= MAX_SYMLINKS)
		return -1;
	struct inode *ino = BPF_CORE_READ(f, d_inode);
	const char *target = BPF_CORE_READ(ino, i_link);
	if (!target)
		return -1;
	long n = bpf_probe_read_kernel_str(w->lbuf, PATH_BUF, target);
	if (n <= 1)
		return -1;
	__u32 tlen = n - 1;
	__u32 rest = w->len > next ? w->len - next : 0;
	if (tlen + rest >= PATH_BUF - 1)
		return -1;
	if (rest)
		bpf_probe_read_kernel(&w->lbuf[BOUND(tlen, 4095)], BOUND(rest, 4095), &w->upath[next & PMASK]);
	__u32 total = tlen + rest;
	bpf_probe_read_kernel(w->upath, BOUND(total, 4095), w->lbuf);
	w->len = total;
	w->pos = 0;
	w->hops++;
	if (w->lbuf[0] == '/') {
		w->d = w->root_d;
		w->m = w->root_m;
	}
	return 0;
}

static long walk_step(__u32 i, void *ctx)
{
	struct work *w = get_work();
	if (!w)
		return 1;
	__u32 len = w->len;
	w->scan = w->pos;
	bpf_loop(PATH_BUF, skip_slash_step, NULL, 0); /* (a run of slashes is one separator) */
	__u32 pos = w->scan;
	if (pos >= len) {
		w->pos = pos;
		w->done = ST_DONE;
		return 1;
	}
	__u32 start = pos;
	bpf_loop(256, comp_scan_step, NULL, 0);
	__u32 clen = w->scan - start;
	if (clen == 0 || clen >= 256) {
		w->pos = start;
		w->status |= FI_INCOMPLETE;
		w->done = ST_STOP;
		return 1;
	}
	__u32 next = start + clen;
	bpf_loop(PATH_BUF, skip_slash_step, NULL, 0); /* (a run of slashes is one separator) */
	int last = w->scan >= len;
	char c0 = w->upath[start & PMASK];
	if (c0 == '.' && clen == 1) {
		w->pos = next;
		return 0;
	}
	if (c0 == '.' && clen == 2 && w->upath[(start + 1) & PMASK] == '.') {
		go_up(w);
		cross_mounts(w); /* as the kernel does: ".." onto a mountpoint lands on what is mounted there */
		w->pos = next;
		return 0;
	}
	w->comp_start = start;
	w->comp_len = clen;
	w->found = 0;
	struct dentry *dir = (struct dentry *)w->d;
	w->iter = (__u64)BPF_CORE_READ(dir, d_children.first);
	bpf_loop(MAX_CHILDREN, child_step, NULL, 0);
	if (!w->found) {
		w->stop_last = last;
		w->stop_end = next;
		w->pos = start;
		w->status |= FI_INCOMPLETE | FI_NOT_CACHED;
		w->done = ST_STOP;
		return 1;
	}
	struct dentry *f = (struct dentry *)w->found;
	if (!BPF_CORE_READ(f, d_inode)) {
		if (last) {
			w->d = w->found;
			w->pos = len;
			w->status |= FI_NEGATIVE;
			w->done = ST_DONE;
		} else {
			w->pos = start;
			w->status |= FI_INCOMPLETE | FI_NOT_CACHED;
			w->done = ST_STOP;
		}
		return 1;
	}
	__u32 dflags = BPF_CORE_READ(f, d_flags);
	__u32 type = dflags & bpf_core_enum_value(enum dentry_flags, DCACHE_ENTRY_TYPE);
	if (type == bpf_core_enum_value(enum dentry_flags, DCACHE_SYMLINK_TYPE) && (!last || w->follow)) {
		if (follow_symlink(w, f, next) == 0)
			return 0;
		w->pos = start;
		w->status |= FI_INCOMPLETE | FI_SYMLINK;
		w->done = ST_STOP;
		return 1;
	}
	w->d = w->found;
	cross_mounts(w);
	w->pos = next;
	return 0;
}

/* ------------------------------------------------------------------ path walk up (dentry -> absolute path) */

static long up_step(__u32 i, void *ctx)
{
	struct work *w = get_work();
	if (!w)
		return 1;
	if (w->d == w->root_d && w->m == w->root_m) {
		w->done = 1;
		return 1;
	}
	struct dentry *d = RO(struct dentry, w->d);
	struct mount *m = RO(struct mount, w->m);
	if (w->d == (__u64)m->mnt.mnt_root) {
		__u64 parent = (__u64)m->mnt_parent;
		if (parent == w->m) {
			w->done = 1;
			return 1;
		}
		w->d = (__u64)m->mnt_mountpoint;
		w->m = parent;
		return 0;
	}
	__u64 parent = (__u64)d->d_parent;
	__u32 len = d->d_name.len;
	__u32 off = w->off;
	if (parent == w->d) {
		/* a root that is no mount's root: a file outside every tree (memfd_create's, a pseudo file): named as
		 * the kernel names it, without a leading "/" ("memfd:NAME") */
		w->done = 1;
		if (len > 0 && len < 256 && len + 1 < off && off == PATH_BUF) {
			off -= len;
			bpf_probe_read_kernel(&w->pbuf[BOUND(off, 4095)], BOUND(len, 255), d->d_name.name);
			w->off = off;
			w->done = 3;
		}
		return 1;
	}
	if (len > 255 || len + 2 > off) {
		w->done = 2;
		return 1;
	}
	off -= len;
	bpf_probe_read_kernel(&w->pbuf[BOUND(off, 4095)], BOUND(len, 255), d->d_name.name);
	off -= 1;
	w->pbuf[off & PMASK] = '/';
	w->off = off;
	w->d = parent;
	return 0;
}

static __always_inline void fill_mount(struct file_info *fi, struct dentry *d, struct mount *m)
{
	struct dentry *td = RO(struct dentry, d);
	struct mount *tm = RO(struct mount, m);
	struct super_block *sb = td->d_sb;
	fi->mount_id = tm->mnt_id;
	fi->group_id = tm->mnt_group_id;
	fi->dev = sb->s_dev;
	bpf_probe_read_kernel_str(fi->fstype, sizeof(fi->fstype), sb->s_type->name);
}

static __always_inline void fill_inode(struct file_info *fi, struct dentry *d, struct mount *m)
{
	struct dentry *td = RO(struct dentry, d);
	struct inode *ino = td->d_inode;
	struct super_block *sb = td->d_sb;
	fill_mount(fi, d, m);
	if (!ino)
		return;
	fi->flags |= FI_INODE;
	fi->ino = ino->i_ino;
	fi->i_generation = inode_identity(ino);
	fi->mode = ino->i_mode;
	fi->uid = ino->i_uid.val;
	fi->gid = ino->i_gid.val;
	fi->nlink = ino->__i_nlink;
	fi->atime_ns = ino->i_atime_sec * 1000000000ULL + ino->i_atime_nsec;
	fi->mtime_ns = ino->i_mtime_sec * 1000000000ULL + ino->i_mtime_nsec;
	/* since 6.13 bit 31 of i_ctime_nsec says the ctime was queried (multigrain timestamps): not a time */
	fi->ctime_ns = ino->i_ctime_sec * 1000000000ULL + (ino->i_ctime_nsec & ~I_CTIME_QUERIED);
	if (sb->s_magic == OVERLAYFS_SUPER_MAGIC) {
		struct inode *raw = BPF_CORE_READ(d, d_inode);
		struct ovl_inode *oi = (struct ovl_inode *)((char *)raw - bpf_core_field_offset(struct ovl_inode, vfs_inode));
		if (BPF_CORE_READ(oi, __upperdentry))
			fi->flags |= FI_UPPER_LAYER;
	}
}

static __always_inline void set_task_root(struct work *w)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fs_struct *fs = BPF_CORE_READ(t, fs);
	w->root_d = (__u64)BPF_CORE_READ(fs, root.dentry);
	w->root_m = (__u64)real_mount(BPF_CORE_READ(fs, root.mnt));
}

/* Build the absolute path of (w->d, w->m) into w->sp[slot]; then append the unresolved rest of the
 * user string when the walk stopped early; then fill the slot's file_info. */
__noinline int finish_slot(int slot)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	slot &= 1;
	struct file_info *fi = &w->fi[slot];
	struct dentry *target = (struct dentry *)w->d;
	struct mount *target_m = (struct mount *)w->m;
	w->res_d = w->d;
	w->res_m = w->m;
	__builtin_memset(fi, 0, sizeof(*fi));
	fi->flags = FI_PRESENT | w->status;
	fi->generation = current_generation();
	set_task_root(w);
	w->off = PATH_BUF;
	w->done = 0;
	bpf_loop(MAX_DEPTH, up_step, NULL, 0);
	if (w->done != 1 && w->done != 3)
		fi->flags |= FI_TRUNCATED;
	__u32 off = w->off;
	__u32 plen = PATH_BUF - off;
	if (plen == 0) {
		w->sp[slot][0] = '/';
		plen = 1;
	} else if (plen < PATH_BUF) {
		bpf_probe_read_kernel(w->sp[slot], BOUND(plen, 4095), &w->pbuf[off & PMASK]);
	}
	fi->resolved_len = plen;
	if (w->status & FI_INCOMPLETE) {
		if (w->sp[slot][(plen - 1) & PMASK] != '/' && plen < PATH_BUF - 1) {
			w->sp[slot][plen & PMASK] = '/';
			plen++;
		}
		__u32 pos = w->pos;
		__u32 rest = w->len > pos ? w->len - pos : 0;
		if (plen + rest >= PATH_BUF) {
			rest = PATH_BUF - 1 - plen;
			fi->flags |= FI_TRUNCATED;
		}
		if (rest > 0 && rest < PATH_BUF)
			bpf_probe_read_kernel(&w->sp[slot][BOUND(plen, 4095)], BOUND(rest, 4095), &w->upath[pos & PMASK]);
		plen += rest;
	} else {
		fill_inode(fi, target, target_m);
	}
	w->splen[slot] = plen & PMASK;
	fi->path_len = plen & PMASK;
	return 0;
}

static __always_inline struct file *fd_file(int fd)
{
	/* the task from BTF: files->fdt->fd are direct loads, only the array slot needs a helper */
	struct task_struct *t = bpf_get_current_task_btf();
	struct fdtable *fdt = t->files->fdt;
	if (fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	__u64 slot = (__u64)fdt->fd + (__u64)fd * sizeof(struct file *);
	/* the slot read as the first (pointer) member of a typed view: a direct load, no helper call */
	return (struct file *)RO(struct llist_node, slot)->next;
}

static __always_inline void clear_slot(struct work *w, int slot)
{
	slot &= 1;
	__builtin_memset(&w->fi[slot], 0, sizeof(struct file_info));
	w->splen[slot] = 0;
	w->status = 0;
}

/* before a walk: the slot's file_info is written by finish_slot (or fail_slot), not here */
static __always_inline void start_slot(struct work *w, int slot)
{
	w->splen[slot & 1] = 0;
	w->status = 0;
}

/* slot from a dentry and its mount (no user string) */
static __always_inline void resolve_dentry(struct work *w, int slot, __u64 d, __u64 m)
{
	start_slot(w, slot);
	w->d = d;
	w->m = m;
	w->len = 0;
	w->pos = 0;
	finish_slot(slot);
}

/* slot 1 takes slot 0 (its file and path) */
static __always_inline void slot0_to_slot1(struct work *w)
{
	__builtin_memcpy(&w->fi[1], &w->fi[0], sizeof(struct file_info));
	__u32 l = w->splen[0] & PMASK;
	w->splen[1] = l;
	if (l)
		bpf_probe_read_kernel(w->sp[1], BOUND(l, 4095), w->sp[0]);
}

static __always_inline void fail_slot(struct work *w, int slot, __u32 flags)
{
	clear_slot(w, slot);
	w->fi[slot & 1].flags = FI_PRESENT | flags;
}

/* slot from an open file */
/* Point the walk state at an open file; 1: finish_slot must follow, 0: the slot is final (bad fd). */
__noinline int target_file_at(int slot)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	__u64 f = w->arg_ptr;
	start_slot(w, slot);
	if (!f) {
		fail_slot(w, slot, FI_BAD_FD);
		return 0;
	}
	struct file *tf = bpf_rdonly_cast((void *)f, bpf_core_type_id_kernel(struct file));
	w->d = (__u64)tf->f_path.dentry;
	w->m = (__u64)real_mount(tf->f_path.mnt);
	w->len = 0;
	w->pos = 0;
	return 1;
}

/* (a global subprogram takes no kernel pointer: the address, as a number) */
static __always_inline int target_file(int slot, struct file *f)
{
	struct work *w = get_work();
	if (w)
		w->arg_ptr = (__u64)f;
	return target_file_at(slot);
}

static __noinline int resolve_file(int slot, struct file *f)
{
	if (target_file(slot, f))
		finish_slot(slot);
	return 0;
}

static __noinline int resolve_fd(int slot, int fd)
{
	return resolve_file(slot, fd_file(fd));
}

/* Walk a user path string relative to dirfd (AT_FDCWD: the cwd) down the dentry cache.
 * 1: finish_slot must follow, 0: the slot is final (unreadable string, bad dirfd). */
__noinline int walk_any_at(int slot, int dirfd, int follow, int kernel_string)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	const char *upath = (const char *)w->arg_ptr;
	start_slot(w, slot);
	long n = kernel_string ? bpf_probe_read_kernel_str(w->upath, PATH_BUF, upath)
			       : bpf_probe_read_user_str(w->upath, PATH_BUF, upath);
	if (n <= 0) {
		fail_slot(w, slot, FI_NO_USER_PATH);
		return 0;
	}
	set_task_root(w);
	w->len = n - 1;
	w->pos = 0;
	w->follow = follow;
	if (w->upath[0] == '/') {
		w->d = w->root_d;
		w->m = w->root_m;
	} else if (dirfd == AT_FDCWD) {
		struct task_struct *t = (struct task_struct *)bpf_get_current_task();
		struct fs_struct *fs = BPF_CORE_READ(t, fs);
		w->d = (__u64)BPF_CORE_READ(fs, pwd.dentry);
		w->m = (__u64)real_mount(BPF_CORE_READ(fs, pwd.mnt));
	} else {
		struct file *f = fd_file(dirfd);
		if (!f) {
			fail_slot(w, slot, FI_BAD_FD);
			return 0;
		}
		w->d = (__u64)BPF_CORE_READ(f, f_path.dentry);
		w->m = (__u64)real_mount(BPF_CORE_READ(f, f_path.mnt));
	}
	w->done = 0;
	w->hops = 0;
	w->stop_last = 0;
	bpf_loop(MAX_COMPONENTS, walk_step, NULL, 0);
	if (!w->done)
		w->status |= FI_INCOMPLETE | FI_TRUNCATED;
	return 1;
}

static __always_inline int walk_any(int slot, int dirfd, const char *upath, int follow, int kernel_string)
{
	struct work *w = get_work();
	if (w)
		w->arg_ptr = (__u64)upath;
	return walk_any_at(slot, dirfd, follow, kernel_string);
}

/* the path string of the syscall in w->sc (a user string, or io_uring's kernel copy) */
static __always_inline int walk_user(int slot, int dirfd, const char *upath, int follow)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	w->arg_ptr = (__u64)upath;
	return walk_any_at(slot, dirfd, follow, w->sc.kstr);
}

static __noinline int resolve_user(int slot, int dirfd, const char *upath, int follow)
{
	if (walk_user(slot, dirfd, upath, follow))
		finish_slot(slot);
	return 0;
}

/* A string the process passed, as it is (a symlink's target: no file to resolve) */
static __noinline int raw_slot(int slot, const char *s)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	slot &= 1;
	clear_slot(w, slot);
	long n = w->sc.kstr ? bpf_probe_read_kernel_str(w->sp[slot], PATH_BUF, s)
			    : bpf_probe_read_user_str(w->sp[slot], PATH_BUF, s);
	if (n <= 0) {
		w->fi[slot].flags = FI_PRESENT | FI_NO_USER_PATH;
		return 0;
	}
	__u32 l = (n - 1) & PMASK;
	w->splen[slot] = l;
	w->fi[slot].flags = FI_PRESENT | FI_RAW_STRING;
	w->fi[slot].path_len = l;
	w->fi[slot].resolved_len = l;
	return 0;
}

/* "/proc/self/fd/N", "/proc/<own pid>/fd/N" or "/dev/fd/N", then the end or "/rest": N (w->scan: where the end or
 * the "/rest" starts), else -1. The kernel follows such a magic link to the open file itself (an O_TMPFILE file
 * given a name, a script run by fexecve), which no walk of the dentry cache reaches. */
static __always_inline int proc_fd_number(struct work *w, const char *upath, int kstr)
{
	char *s = w->extra_spill;
	__builtin_memset(s, 0, 64);
	long n = kstr ? bpf_probe_read_kernel_str(s, 64, upath) : bpf_probe_read_user_str(s, 64, upath);
	int i;
	if (n < 10 || s[0] != '/')
		return -1;
	if (s[1] == 'd' && s[2] == 'e' && s[3] == 'v' && s[4] == '/' && s[5] == 'f' && s[6] == 'd' && s[7] == '/') {
		i = 8;
	} else {
		if (n < 16 || s[1] != 'p' || s[2] != 'r' || s[3] != 'o' || s[4] != 'c' || s[5] != '/')
			return -1;
		i = 6;
		if (s[6] == 's' && s[7] == 'e' && s[8] == 'l' && s[9] == 'f' && s[10] == '/') {
			i = 11;
		} else {
			__u32 pid = 0, tgid = bpf_get_current_pid_tgid() >> 32;
			for (int k = 0; k < 10; k++) {
				char c = s[(6 + k) & 63];
				if (c < '0' || c > '9')
					break;
				pid = pid * 10 + (c - '0');
				i = 7 + k;
			}
			if (i == 6 || pid != tgid || s[i & 63] != '/')
				return -1;
			i++;
		}
		if (s[i & 63] != 'f' || s[(i + 1) & 63] != 'd' || s[(i + 2) & 63] != '/')
			return -1;
		i += 3;
	}
	int fd = 0, digits = 0;
	for (int k = 0; k < 10; k++) {
		char c = s[(i + k) & 63];
		if (c == 0 || c == '/')
			break;
		if (c < '0' || c > '9')
			return -1;
		fd = fd * 10 + (c - '0');
		digits++;
	}
	w->scan = i + digits;
	return digits ? fd : -1;
}

/* linkat's source: the path, or the dirfd's own file (AT_EMPTY_PATH and ""), or the file a /proc/self/fd/N magic
 * link stands for (AT_SYMLINK_FOLLOW); 1: finish_slot must follow */
static __noinline int link_source(int dirfd, const char *upath, __u32 flags)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	char first = 1;
	if (flags & AT_EMPTY_PATH) {
		if (w->sc.kstr)
			bpf_probe_read_kernel(&first, 1, upath);
		else
			bpf_probe_read_user(&first, 1, upath);
		if (!first)
			return target_file(0, fd_file(dirfd));
	}
	if (flags & AT_SYMLINK_FOLLOW) {
		int fd = proc_fd_number(w, upath, w->sc.kstr);
		if (fd >= 0 && !w->extra_spill[w->scan & 63])
			return target_file(0, fd_file(fd));
	}
	return walk_user(0, dirfd, upath, flags & AT_SYMLINK_FOLLOW);
}

/* ------------------------------------------------------------------ filters */

static long bname_step(__u32 i, void *ctx)
{
	struct work *w = get_work();
	if (!w)
		return 1;
	__u32 len = w->splen[0];
	if (i >= len) {
		w->bstart = 0;
		return 1;
	}
	__u32 idx = len - 1 - i;
	if (w->sp[0][idx & PMASK] == '/') {
		w->bstart = idx + 1;
		return 1;
	}
	return 0;
}

static long hash_step(__u32 i, void *ctx)
{
	struct work *w = get_work();
	if (!w)
		return 1;
	__u32 idx = w->bstart + i;
	if (idx >= w->splen[0])
		return 1;
	w->hash ^= (__u8)w->sp[0][idx & PMASK];
	w->hash *= 0x100000001b3ULL;
	return 0;
}

static __always_inline int pid_discarded(__u32 type)
{
	__u32 *any = bpf_map_lookup_elem(&pid_discarders_any, &zero);
	if (!any || !*any)
		return 0;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct discarder *d = bpf_map_lookup_elem(&discarder_pids, &pid);
	return d && (d->generation == current_generation() || d->generation == GENERATION_ALWAYS)
		&& (d->type_mask & (1u << type));
}

static __always_inline int inode_discarded(__u32 type, struct file_info *fi)
{
	if (!(fi->flags & FI_INODE))
		return 0;
	struct inode_key k = {.ino = fi->ino, .mount_id = fi->mount_id, .i_generation = fi->i_generation};
	struct discarder *d = bpf_map_lookup_elem(&discarder_inodes, &k);
	return d && d->generation == current_generation() && (d->type_mask & (1u << type)) && !task_in_chroot();
}

/* approvers of slot 0: basename, exact path, flags */
__noinline int approved(__u32 type, __u32 flags_arg)
{
	__u32 t = type;
	__u32 *active = bpf_map_lookup_elem(&approver_active, &t);
	if (!active || !*active)
		return 1;
	__u32 *fm = bpf_map_lookup_elem(&flags_approvers, &t);
	if (fm && (*fm & flags_arg))
		return 1;
	struct work *w = get_work();
	if (!w)
		return 1;
	w->bstart = 0;
	bpf_loop(256, bname_step, NULL, 0);
	w->hash = 0xcbf29ce484222325ULL;
	bpf_loop(256, hash_step, NULL, 0);
	__u64 h = w->hash;
	__u32 *mask = bpf_map_lookup_elem(&basename_approvers, &h);
	if (mask && (*mask & (1u << type)))
		return 1;
	w->bstart = 0;
	w->hash = 0xcbf29ce484222325ULL;
	bpf_loop(PATH_BUF, hash_step, NULL, 0);
	h = w->hash;
	mask = bpf_map_lookup_elem(&path_approvers, &h);
	return mask && (*mask & (1u << type));
}

/* 1 when the event must be dropped (counted as filtered) */
static __always_inline int filtered_out(__u32 type, __u32 flags_arg, struct work *w)
{
	if (!approved(type, flags_arg) || inode_discarded(type, &w->fi[0])) {
		count(type, CNT_FILTERED);
		return 1;
	}
	return 0;
}

static __always_inline void drop_inode_discarder(struct file_info *fi)
{
	struct inode_key k = {.ino = fi->ino, .mount_id = fi->mount_id, .i_generation = fi->i_generation};
	bpf_map_delete_elem(&discarder_inodes, &k);
}

static long name_hash_step(__u32 i, void *ctx)
{
	struct work *w = get_work();
	if (!w || i >= w->comp_len)
		return 1;
	w->hash ^= (__u8)w->name[i & 255];
	w->hash *= 0x100000001b3ULL;
	return 0;
}

/* A successful chmod or chown of a path: the file the walk found (w->d) must now show the change. When it does not,
 * another thread rewrote the path string between the kernel's copy (at the start of the call) and the walk's read
 * (at its end): the kernel acted on another file. (The mode ignores S_ISGID, which the kernel may drop; ids are
 * compared only in the initial user namespace.) */
static __always_inline int outcome_differs(struct work *w, __u32 nr, __u32 mode, __u32 uid, __u32 gid, __u64 mtime)
{
	struct inode *ino = RO(struct dentry, w->d)->d_inode;
	int times = nr == NR_utime || nr == NR_utimes || nr == NR_futimesat || nr == NR_utimensat;
	if (nr != NR_chmod && nr != NR_fchmodat && nr != NR_fchmodat2 && nr != NR_chown && nr != NR_lchown &&
	    nr != NR_fchownat && !times)
		return 0;
	if (times && mtime >= UTIME_NOW_SENTINEL - 1) /* (now, or omitted: nothing to compare) */
		return 0;
	if (!ino)
		return 1;
	struct inode *ti = RO(struct inode, ino);
	if (times) /* (a path given: utimensat on an fd has none) */
		return ti->i_mtime_sec * 1000000000ULL + ti->i_mtime_nsec != mtime;
	if (nr == NR_chmod || nr == NR_fchmodat || nr == NR_fchmodat2)
		return ((ti->i_mode ^ mode) & 05777) != 0;
	struct task_struct *t = bpf_get_current_task_btf();
	if (RO(struct user_namespace, RO(struct cred, t->cred)->user_ns)->level != 0)
		return 0;
	return (uid != 0xffffffffu && ti->i_uid.val != uid) || (gid != 0xffffffffu && ti->i_gid.val != gid);
}

#define DECIDE_DROP 0
#define DECIDE_PASS 1
#define DECIDE_LATER 2

/* Decide from the target dentry alone, before the walk up to the root (the costly part) and before
 * building a record: inode discarders, flags approvers, basename approvers. DECIDE_LATER: only the
 * full path can tell (path approvers, or a walk that did not reach the target). */
__noinline int early_decision(__u32 type, __u32 flags_arg)
{
	struct work *w = get_work();
	if (!w)
		return DECIDE_LATER;
	w->disc_hit = 0;
	if (w->status & FI_INCOMPLETE)
		return DECIDE_LATER;
	/* a rewritten path is never filtered: the name it shows is not the one the kernel acted on (sys_exit only:
	 * sys_enter decides other types) */
	if ((type == EV_CHMOD || type == EV_CHOWN || type == EV_UTIMES) && w->sc.ret == 0) {
		struct rec_buf *r = bpf_map_lookup_elem(&rec_heap, &zero);
		if (r) {
			struct file_body *b = (struct file_body *)(r->b + sizeof(struct rec_header));
			if (outcome_differs(w, w->sc.nr, b->mode_arg, b->uid_arg, b->gid_arg, b->mtime_arg)) {
				w->rewritten = 1;
				return DECIDE_PASS;
			}
		}
	}
	struct dentry *d = bpf_rdonly_cast((void *)w->d, bpf_core_type_id_kernel(struct dentry));
	struct mount *m = bpf_rdonly_cast((void *)w->m, bpf_core_type_id_kernel(struct mount));
	struct inode *ino = d->d_inode;
	if (ino) {
		struct inode_key k = {.ino = ino->i_ino, .mount_id = m->mnt_id, .i_generation = inode_identity(ino)};
		w->disc_key = k;
		w->disc_hit = 1; /* disc_key names the target inode */
		struct discarder *disc = bpf_map_lookup_elem(&discarder_inodes, &k);
		if (disc && disc->generation == current_generation() && (disc->type_mask & (1u << type))
		    && !task_in_chroot())
			return DECIDE_DROP;
	}
	__u32 t = type;
	__u32 *active = bpf_map_lookup_elem(&approver_active, &t);
	if (!active || !*active)
		return DECIDE_PASS;
	__u32 *fm = bpf_map_lookup_elem(&flags_approvers, &t);
	if (fm && (*fm & flags_arg))
		return DECIDE_PASS;
	__u32 len = d->d_name.len;
	if (len == 0 || len > 255)
		return DECIDE_LATER;
	bpf_probe_read_kernel(w->name, BOUND(len, 255), d->d_name.name);
	w->comp_len = len;
	w->hash = 0xcbf29ce484222325ULL;
	bpf_loop(256, name_hash_step, NULL, 0);
	__u64 h = w->hash;
	__u32 *mask = bpf_map_lookup_elem(&basename_approvers, &h);
	if (mask && (*mask & (1u << type)))
		return DECIDE_PASS;
	return (*active & APPROVE_BY_PATH) ? DECIDE_LATER : DECIDE_DROP;
}

/* An open that returned an fd, on an inode discarded for opens: the common case of a busy machine, decided
 * here from the file alone (no walk state, no record buffer). A new inode (the open created it) is left to
 * the general path, which drops a stale discarder of its number. */
static __always_inline int open_fd_discarded(int fd, __u32 flags)
{
	struct file *f = fd_file(fd);
	if (!f)
		return 0;
	struct file *tf = RO(struct file, f);
	if ((tf->f_mode & FMODE_CREATED_BIT) || (flags & O_TMPFILE_BIT))
		return 0;
	struct inode *ino = RO(struct dentry, tf->f_path.dentry)->d_inode;
	if (!ino)
		return 0;
	struct inode_key k = {.ino = RO(struct inode, ino)->i_ino,
			      .mount_id = RO(struct mount, real_mount(tf->f_path.mnt))->mnt_id,
			      .i_generation = inode_identity(ino)};
	struct discarder *d = bpf_map_lookup_elem(&discarder_inodes, &k);
	return d && d->generation == current_generation() && (d->type_mask & (1u << EV_OPEN)) && !task_in_chroot();
}

/* An open that created its file while its process is discarded: the new inode may reuse the number of a
 * dead inode whose discarder is still there, so drop it (as the full path does) before filtering. */
static __always_inline void forget_born_inode(int fd, __u32 flags)
{
	struct file *f = fd_file(fd);
	if (!f)
		return;
	struct file *tf = RO(struct file, f);
	if (!(tf->f_mode & FMODE_CREATED_BIT) && !(flags & O_TMPFILE_BIT))
		return;
	struct inode *ino = RO(struct dentry, tf->f_path.dentry)->d_inode;
	if (!ino)
		return;
	struct inode_key k = {.ino = RO(struct inode, ino)->i_ino,
			      .mount_id = RO(struct mount, real_mount(tf->f_path.mnt))->mnt_id,
			      .i_generation = inode_identity(ino)};
	bpf_map_delete_elem(&discarder_inodes, &k);
}

/* ------------------------------------------------------------------ file records */

static __noinline int emit_file(struct rec_buf *r, __u32 type)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	struct rec_header *h = (struct rec_header *)r->b;
	struct file_body *b = (struct file_body *)(r->b + sizeof(*h));
	if (w->sc.uflags & U_SAVED_HEADER) {
		__builtin_memcpy(h, &w->uring_h, sizeof(*h));
		h->kind = REC_FILE;
		h->type = type;
	} else {
		fill_header(h, REC_FILE, type);
	}
	h->flags |= w->sc.hflags;
	__builtin_memcpy(&b->f[0], &w->fi[0], sizeof(struct file_info));
	__builtin_memcpy(&b->f[1], &w->fi[1], sizeof(struct file_info));
	if (w->sc.uflags & U_NOT_CAPTURED)
		b->f[0].flags |= FI_NOT_CAPTURED;
	__u32 pos = sizeof(*h) + sizeof(*b);
	__u32 l0 = w->splen[0] & PMASK;
	__u32 l1 = w->splen[1] & PMASK;
	__u32 le = b->extra_len;
	if (le > EXTRA_MAX - 1)
		le = EXTRA_MAX - 1;
	b->extra_len = le;
	b->f[0].path_len = l0;
	b->f[1].path_len = l1;
	if (l0)
		bpf_probe_read_kernel(&r->b[BOUND(pos, 16383)], BOUND(l0, 4095), w->sp[0]);
	pos += l0;
	if (l1)
		bpf_probe_read_kernel(&r->b[BOUND(pos, 16383)], BOUND(l1, 4095), w->sp[1]);
	pos += l1;
	if (le)
		bpf_probe_read_kernel(&r->b[BOUND(pos, 16383)], BOUND(le, 255), w->extra);
	pos += le;
	return output(r->b, pos, type);
}

static __always_inline struct file_body *begin_file(struct rec_buf *r, __s64 ret, __u32 nr)
{
	struct file_body *b = (struct file_body *)(r->b + sizeof(struct rec_header));
	__builtin_memset(b, 0, offsetof(struct file_body, f));
	b->retval = ret;
	b->syscall_nr = nr;
	return b;
}

static __always_inline void read_extra_str(struct work *w, struct file_body *b, const char *s)
{
	long n = w->sc.kstr ? bpf_probe_read_kernel_str(w->extra, EXTRA_MAX, s) : bpf_probe_read_user_str(w->extra, EXTRA_MAX, s);
	b->extra_len = n > 0 ? n - 1 : 0;
}

/* timeval[2] / timespec[2] / utimbuf -> ns; NULL -> "now". time32: the i386 layouts (32-bit fields) */
static __always_inline void read_times(struct file_body *b, const void *p, int kind, int time32)
{
	if (!p) {
		b->atime_arg = UTIME_NOW_SENTINEL;
		b->mtime_arg = UTIME_NOW_SENTINEL;
		return;
	}
	long v[4] = {};
	if (time32) {
		__s32 v32[4] = {};
		bpf_probe_read_user(v32, kind == 0 ? 8 : 16, p);
		v[0] = v32[0];
		v[1] = v32[1];
		v[2] = v32[2];
		v[3] = v32[3];
	}
	if (kind == 0) { /* utimbuf: two longs (seconds) */
		if (!time32)
			bpf_probe_read_user(v, 16, p);
		b->atime_arg = v[0] * 1000000000ULL;
		b->mtime_arg = v[1] * 1000000000ULL;
	} else {
		if (!time32)
			bpf_probe_read_user(v, 32, p);
		__u64 mul = kind == 1 ? 1000ULL : 1ULL; /* 1: timeval (us), 2: timespec (ns) */
		if (kind == 2 && (v[1] == ((1l << 30) - 1) || v[1] == ((1l << 30) - 2))) /* UTIME_NOW/OMIT */
			b->atime_arg = v[1] == ((1l << 30) - 1) ? UTIME_NOW_SENTINEL : UTIME_NOW_SENTINEL - 1;
		else
			b->atime_arg = v[0] * 1000000000ULL + v[1] * mul;
		if (kind == 2 && (v[3] == ((1l << 30) - 1) || v[3] == ((1l << 30) - 2)))
			b->mtime_arg = v[3] == ((1l << 30) - 1) ? UTIME_NOW_SENTINEL : UTIME_NOW_SENTINEL - 1;
		else
			b->mtime_arg = v[2] * 1000000000ULL + v[3] * mul;
	}
}

/* ------------------------------------------------------------------ syscalls of both ABIs */

static __always_inline __u64 uid16(__u64 v)
{
	return (v & 0xffff) == 0xffff ? 0xffffffffULL : (v & 0xffff);
}

/* Which syscall the task made and its arguments. v: its `interested` entry (nonzero). An i386 syscall's number
 * means another syscall in the x86_64 table (i386 chown32 is x86_64 getpeername...): it is translated, and its
 * arguments are the low halves of the i386 argument registers (what the kernel's compat entry passes on: a
 * 64-bit task may leave anything in the upper halves). 0: not a syscall any enabled type wants. */
static __always_inline int decode_sysc(struct pt_regs *regs, __u32 nr, __u32 v, struct sysc *s)
{
	struct task_struct *t = bpf_get_current_task_btf();
	s->raw_nr = nr;
	s->variant = 0;
	s->kstr = 0;
	s->uflags = 0;
	s->file = 0;
	s->counted = 0;
	if (!(t->thread_info.status & TS_COMPAT)) {
		s->type = v & 0xff;
		s->nr = nr;
		s->hflags = 0;
		s->a[0] = regs->di;
		s->a[1] = regs->si;
		s->a[2] = regs->dx;
		s->a[3] = regs->r10;
		s->a[4] = regs->r8;
		s->a[5] = regs->r9;
		return s->type != 0;
	}
	s->type = (v >> 8) & 0xff;
	__u32 *c = bpf_map_lookup_elem(&compat_canon, &nr);
	if (!s->type || !c || !*c)
		return 0;
	s->nr = *c & 0xffff;
	s->variant = *c >> 16;
	s->hflags = HF_I386;
	s->a[0] = (__u32)regs->bx;
	s->a[1] = (__u32)regs->cx;
	s->a[2] = (__u32)regs->dx;
	s->a[3] = (__u32)regs->si;
	s->a[4] = (__u32)regs->di;
	s->a[5] = (__u32)regs->bp;
	if (s->variant & IV_UID16) {
		s->a[1] = uid16(s->a[1]);
		s->a[2] = uid16(s->a[2]);
	}
	if (s->variant & IV_NO_FLAGS)
		s->a[1] = 0;
	return 1;
}

/* ------------------------------------------------------------------ the inodes the kernel acted on */

/* A path string is copied by the kernel once, at the start of the call; the probe reads the user's memory
 * separately, so another thread can make the two differ. The kernel's own word on which file it acted on: every
 * change of a file's ctime (chmod, chown, utimes, xattrs, a new name, a removed or moved one) goes through one of the
 * `timestamp` tracepoints with the inode, in the calling thread, during the call. Kept per thread for the covered
 * syscalls; sys_exit takes them (take_acted) and compares with the file the walk found. */
#define PF_KTHREAD_BIT 0x00200000
#define PF_IO_WORKER_BIT 0x00000010

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct acted);
} acted SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct acted);
} acted_heap SEC(".maps");

/* unlink/rmdir: the i-th inode stamped, as it is now (its dentry still names it): kept for sys_exit */
static __always_inline void note_removed(struct acted *a, __u32 i, struct inode *inode)
{
	i &= 1;
	struct hlist_node *first = inode->i_dentry.first;
	if (!first)
		return;
	struct dentry *d = RO(struct dentry, (char *)first - bpf_core_field_offset(struct dentry, d_u.d_alias));
	a->parent[i] = (__u64)RO(struct dentry, d->d_parent)->d_inode;
	a->dentry[i] = RO(struct hlist_node, first)->next ? 0 : (__u64)d;
	a->ino[i] = inode->i_ino;
	a->i_generation[i] = inode_identity(inode);
	a->mode[i] = inode->i_mode;
	a->uid[i] = inode->i_uid.val;
	a->gid[i] = inode->i_gid.val;
	a->nlink[i] = inode->__i_nlink;
	__u32 len = d->d_name.len;
	if (len > 255)
		len = 255;
	a->name_len[i] = len;
	bpf_probe_read_kernel(a->name[i], BOUND(len, 255), d->d_name.name);
}

/* the types whose path string can be rewritten under the kernel's feet and whose outcome stamps the file */
static __always_inline int racing_type(__u32 t)
{
	return t == EV_CHMOD || t == EV_CHOWN || t == EV_UTIMES || t == EV_SETXATTR || t == EV_REMOVEXATTR ||
	       t == EV_MKDIR || t == EV_UNLINK || t == EV_RMDIR || t == EV_RENAME || t == EV_LINK;
}

static __always_inline __u64 next_owner_seq(void)
{
	__u64 *next = bpf_map_lookup_elem(&owner_seq_next, &zero);
	return next ? __sync_fetch_and_add(next, 1) + 1 : 0;
}

/* A chown stamped `inode` (the owner is already changed: setattr copies it before the ctime). The first stamp of
 * the inode the calling thread read at sys_enter tells whether another chown stamped it in between (its owner at
 * sys_enter may then be stale); every stamp gives the inode a new owner_seq value. */
static __always_inline void owner_stamped(struct inode *inode, __u32 tid)
{
	__u64 key = (__u64)inode;
	__u64 *seq = bpf_map_lookup_elem(&owner_seq, &key);
	__u64 now = seq ? *seq : 0;
	struct owner_before *ob = bpf_map_lookup_elem(&owner_before, &tid);
	if (ob && ob->inode == key && !ob->stamped) {
		ob->stamped = 1;
		ob->clean = now == ob->seq;
	}
	__u64 v = next_owner_seq();
	bpf_map_update_elem(&owner_seq, &key, &v, BPF_ANY);
}

/* The `interested` entry of the syscall the calling thread is in, its number in *nr (orig_ax); NULL outside a
 * syscall (a kernel thread, an io_uring worker) */
static __always_inline __u32 *current_syscall(__u32 *nr)
{
	struct task_struct *t = bpf_get_current_task_btf();
	if (t->flags & (PF_KTHREAD_BIT | PF_IO_WORKER_BIT))
		return NULL;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!regs)
		return NULL;
	__u32 n = regs->orig_ax;
	if (n >= NR_SYSCALLS)
		return NULL;
	*nr = n;
	return bpf_map_lookup_elem(&interested, &n);
}

static __always_inline int note_acted(struct inode *inode)
{
	__u32 nr = 0;
	__u32 *tp = current_syscall(&nr);
	if (!tp || !(racing_type(*tp & 0xff) || racing_type((*tp >> 8) & 0xff)))
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	if ((*tp & 0xff) == EV_CHOWN || ((*tp >> 8) & 0xff) == EV_CHOWN) /* (either ABI's meaning of the number) */
		owner_stamped(inode, tid);
	struct acted *a = bpf_map_lookup_elem(&acted, &tid);
	if (!a || a->nr != nr) {
		struct acted *fresh = bpf_map_lookup_elem(&acted_heap, &zero);
		if (!fresh)
			return 0;
		fresh->nr = nr;
		fresh->n = 0;
		fresh->parent[0] = fresh->parent[1] = 0;
		bpf_map_update_elem(&acted, &tid, fresh, BPF_ANY);
		a = bpf_map_lookup_elem(&acted, &tid);
		if (!a)
			return 0;
	}
	__u32 n = a->n;
	for (int i = 0; i < ACTED_MAX; i++)
		if (i < n && a->inode[i] == (__u64)inode)
			return 0;
	if (n >= ACTED_MAX)
		return 0;
	a->inode[n] = (__u64)inode;
	a->n = n + 1;
	__u32 type = *tp & 0xff, type32 = (*tp >> 8) & 0xff;
	if (n < 2 && (type == EV_UNLINK || type == EV_RMDIR || type32 == EV_UNLINK || type32 == EV_RMDIR))
		note_removed(a, n, inode);
	return 0;
}

SEC("tp_btf/inode_set_ctime_to_ts")
int BPF_PROG(acted_set, struct inode *inode, struct timespec64 *ts)
{
	return note_acted(inode);
}

SEC("tp_btf/ctime_ns_xchg")
int BPF_PROG(acted_xchg, struct inode *inode, __u32 old, __u32 new, __u32 cur)
{
	return note_acted(inode);
}

SEC("tp_btf/ctime_xchg_skip")
int BPF_PROG(acted_skip, struct inode *inode, struct timespec64 *ts)
{
	return note_acted(inode);
}

/* ext4 starts a journal handle on a chown's file under its inode lock, before it changes the owner (ext4_setattr
 * starts the quota transfer's first when the owner changes; when it does not, the owner stays as it was): the owner
 * then is the one before the call, exact whatever the walk at the call's start could read (a name not in the dentry
 * cache yet, a rewritten string, an i386 call). The first LOCKED_MAX inodes of the call, each as it was at its first
 * handle (a quota file's inode may come first). Off the syscall path; returns at once outside a chown. */
SEC("tp_btf/ext4_journal_start_inode")
int BPF_PROG(owner_ext4, struct inode *inode, int blocks, int rsv_blocks, int revoke_creds, int type, unsigned long ip)
{
	__u32 nr = 0;
	__u32 *tp = current_syscall(&nr);
	if (!tp || ((bpf_get_current_task_btf()->thread_info.status & TS_COMPAT) ? (*tp >> 8) & 0xff : *tp & 0xff)
		       != EV_CHOWN)
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct owner_locked *o = bpf_map_lookup_elem(&owner_locked, &tid);
	if (!o || o->nr != nr) {
		struct owner_locked *fresh = bpf_map_lookup_elem(&owner_locked_heap, &zero);
		if (!fresh)
			return 0;
		fresh->nr = nr;
		fresh->n = 0;
		bpf_map_update_elem(&owner_locked, &tid, fresh, BPF_ANY);
		o = bpf_map_lookup_elem(&owner_locked, &tid);
		if (!o)
			return 0;
	}
	__u32 n = o->n;
	for (int i = 0; i < LOCKED_MAX; i++)
		if (i < n && o->inode[i] == (__u64)inode)
			return 0;
	if (n >= LOCKED_MAX)
		return 0;
	o->inode[n] = (__u64)inode;
	o->ino[n] = inode->i_ino;
	o->dev[n] = inode->i_sb->s_dev;
	o->uid[n] = inode->i_uid.val;
	o->gid[n] = inode->i_gid.val;
	o->n = n + 1;
	return 0;
}

/* sys_exit of a covered syscall: what the thread's hooks kept during it, into the walk state: the inodes stamped
 * (none: w->act.n = 0) and, for a chown, the owner read at its start (none: w->ob.inode = 0) and under the inode
 * lock on ext4 (none: w->ol.n = 0) */
static __noinline int take_acted(__u32 raw_nr, int chown)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	w->act.n = 0;
	struct acted *a = bpf_map_lookup_elem(&acted, &tid);
	if (a) {
		if (a->nr == raw_nr)
			__builtin_memcpy(&w->act, a, sizeof(w->act));
		bpf_map_delete_elem(&acted, &tid);
	}
	w->ob.inode = 0;
	struct owner_before *ob = chown ? bpf_map_lookup_elem(&owner_before, &tid) : NULL;
	if (ob) {
		if (ob->nr == raw_nr)
			__builtin_memcpy(&w->ob, ob, sizeof(w->ob));
		bpf_map_delete_elem(&owner_before, &tid);
	}
	w->ol.n = 0;
	struct owner_locked *ol = chown ? bpf_map_lookup_elem(&owner_locked, &tid) : NULL;
	if (ol) {
		if (ol->nr == raw_nr)
			__builtin_memcpy(&w->ol, ol, sizeof(w->ol));
		bpf_map_delete_elem(&owner_locked, &tid);
	}
	return 0;
}

/* Whether the kernel stamped `ino` during the call: 1 yes, 0 no, -1 nothing was stamped (no word from the kernel) */
static __always_inline int acted_on(struct work *w, __u64 ino)
{
	__u32 n = w->act.n;
	if (!n)
		return -1;
	for (int i = 0; i < ACTED_MAX; i++)
		if (i < n && w->act.inode[i] == ino)
			return 1;
	return 0;
}

/* A successful call on a path whose walk (w->d) ended on a file the kernel did not stamp, or on no file at all (a
 * string read while being rewritten can name nothing): the string was rewritten between the kernel's copy and the
 * probe's read (1). */
__noinline int acted_elsewhere(void)
{
	struct work *w = get_work();
	if (!w || w->sc.ret != 0 || !w->act.n)
		return 0;
	if (w->status & FI_NEGATIVE)
		return 1;
	if (w->status & FI_INCOMPLETE)
		return 0;
	return acted_on(w, (__u64)RO(struct dentry, w->d)->d_inode) == 0;
}

/* A successful rename resolved at sys_enter: the inode found then (slot 0) must be one the kernel stamped (the
 * moved file); else the string was rewritten between the probe's read and the kernel's copy, and another file moved
 * (slot 0 flagged: the moved file is not told apart from the two directories the kernel also stamped). */
__noinline int check_moved(void)
{
	struct work *w = get_work();
	if (!w || !w->act.n || !(w->fi[0].flags & FI_INODE))
		return 0;
	__u32 n = w->act.n;
	for (int i = 0; i < ACTED_MAX; i++) {
		if (i >= n)
			break;
		struct inode *ino = RO(struct inode, w->act.inode[i]);
		if (ino->i_ino == w->fi[0].ino && RO(struct super_block, ino->i_sb)->s_dev == w->fi[0].dev)
			return 0;
	}
	w->fi[0].flags |= FI_REWRITTEN;
	return 0;
}

static long path_cmp_step(__u32 i, void *ctx)
{
	struct work *w = get_work();
	if (!w || i >= w->splen[0])
		return 1;
	if (w->sp[0][i & PMASK] != w->sp[1][i & PMASK]) {
		w->cmp_diff = 1;
		return 1;
	}
	return 0;
}

/* A successful unlink/rmdir: the name the kernel removed, from its stamps (of the two inodes it stamped first, the
 * one whose dentry's parent is the other: that directory, resolved now on `mnt` when of its filesystem, and the name
 * it had), against what the probe resolved from the string: at sys_enter (`at_enter`) the dentry it found
 * (w->in_dentry), at sys_exit the path in slot 0. The same: slot 0 stays. Another (the string was rewritten during the
 * call, or named nothing: a removal of nothing cannot succeed): slot 1 takes the string's file (filtered at sys_enter:
 * resolved again from its dentry, or the string as it reads now when it named nothing), slot 0 the kernel's with the
 * inode as it was (FI_REMOVED: the name is gone), both flagged, w->rewritten set. Nothing stamped: slot 0 stays. */
__noinline int name_removed(__u64 mnt, int at_enter)
{
	struct work *w = get_work();
	if (!w || w->act.n < 2)
		return 0;
	struct acted *a = &w->act;
	__u32 v;
	if (a->parent[0] && a->parent[0] == a->inode[1])
		v = 0;
	else if (a->parent[1] && a->parent[1] == a->inode[0])
		v = 1;
	else
		return 0;
	if (!a->dentry[v & 1] || a->dentry[v & 1] == (at_enter ? w->in_dentry : w->res_d))
		return 0; /* (the dentry the probe found: the same; several names: which one went cannot be told) */
	struct inode *pi = RO(struct inode, a->inode[v ^ 1]);
	struct hlist_node *first = pi->i_dentry.first;
	if (!first || !mnt)
		return 0;
	if (at_enter && w->in_dropped) { /* (slot 0 holds nothing of it: resolved again, or the string as it is now) */
		if (w->in_dentry) {
			resolve_dentry(w, 0, w->in_dentry, w->in_dmnt);
		} else {
			raw_slot(0, (const char *)(w->sc.nr == NR_unlinkat ? w->sc.a[1] : w->sc.a[0]));
		}
	}
	struct dentry *pd = (struct dentry *)((char *)first - bpf_core_field_offset(struct dentry, d_u.d_alias));
	struct mount *m = (struct mount *)mnt;
	if (RO(struct mount, m)->mnt.mnt_sb != pi->i_sb)
		m = RO(struct super_block, pi->i_sb)->s_mounts;
	if (!m)
		return 0;
	slot0_to_slot1(w);
	resolve_dentry(w, 0, (__u64)pd, (__u64)m);
	struct file_info *f = &w->fi[0];
	__u32 l = w->splen[0] & PMASK;
	if (l == 1)
		l = 0; /* ("/" + name: no double slash) */
	__u32 nl = a->name_len[v & 1] & 255;
	if (l + 1 + nl < PATH_BUF) {
		w->sp[0][l & PMASK] = '/';
		bpf_probe_read_kernel(&w->sp[0][BOUND(l + 1, 4095)], nl, a->name[v & 1]);
		l += 1 + nl;
	}
	w->splen[0] = l & PMASK;
	w->cmp_diff = at_enter || l != w->splen[1]; /* (at sys_enter: the dentries differ) */
	if (!w->cmp_diff)
		bpf_loop(PATH_BUF, path_cmp_step, NULL, 0);
	if (!w->cmp_diff) { /* (the probe's own: back into slot 0) */
		__builtin_memcpy(&w->fi[0], &w->fi[1], sizeof(struct file_info));
		__builtin_memset(&w->fi[1], 0, sizeof(struct file_info));
		w->splen[1] = 0;
		return 0;
	}
	w->rewritten = 1;
	w->fi[1].flags |= FI_REWRITTEN;
	f->path_len = l & PMASK;
	f->resolved_len = l & PMASK;
	f->flags = (f->flags & ~(FI_INCOMPLETE | FI_NOT_CACHED | FI_NEGATIVE)) | FI_INODE | FI_REMOVED | FI_REWRITTEN;
	f->ino = a->ino[v & 1];
	f->i_generation = a->i_generation[v & 1];
	f->mode = a->mode[v & 1];
	f->uid = a->uid[v & 1];
	f->gid = a->gid[v & 1];
	f->nlink = a->nlink[v & 1];
	return 0;
}

/* The string of slot 0 named another file than the one the kernel acted on (acted_elsewhere): slot 1 takes what the
 * string named, slot 0 the file the kernel stamped first (of the walk's filesystem when one is: an overlay's own
 * inode rather than its upper layer's), named by its dentry, on the walk's mount when that mount is of its
 * filesystem, else on the first mount of that filesystem. Both flagged FI_REWRITTEN. A link (`keep_second`) keeps
 * slot 1 for its new name: slot 0 only changes (the decoy is not kept). */
__noinline int name_acted(int keep_second)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	if (!keep_second) {
		slot0_to_slot1(w);
		w->fi[1].flags |= FI_REWRITTEN;
	}
	w->fi[0].flags |= FI_REWRITTEN;
	struct mount *m = RO(struct mount, w->res_m);
	struct super_block *walk_sb = m->mnt.mnt_sb;
	__u64 pick = w->act.inode[0];
	__u32 n = w->act.n;
	for (int i = ACTED_MAX - 1; i >= 0; i--)
		if (i < n && RO(struct inode, w->act.inode[i])->i_sb == walk_sb)
			pick = w->act.inode[i];
	struct inode *ino = RO(struct inode, pick);
	struct hlist_node *first = ino->i_dentry.first;
	if (!first)
		return 0; /* (no name left: the string's file stays in slot 0, flagged) */
	/* its oldest cached name (new names go first: a link's new name is not its source) */
	for (int i = 0; i < 8; i++) {
		struct hlist_node *next = RO(struct hlist_node, first)->next;
		if (!next)
			break;
		first = next;
	}
	struct dentry *d = (struct dentry *)((char *)first - bpf_core_field_offset(struct dentry, d_u.d_alias));
	struct mount *dm = ino->i_sb == walk_sb ? (struct mount *)w->res_m : RO(struct super_block, ino->i_sb)->s_mounts;
	if (!dm)
		return 0;
	resolve_dentry(w, 0, (__u64)d, (__u64)dm);
	w->fi[0].flags |= FI_REWRITTEN;
	return 0;
}

/* ------------------------------------------------------------------ sys_enter */

/* A filtered unlink/rmdir: only its dentry is kept, for the check at sys_exit (a rewritten string shows there) */
static __noinline int keep_for_check(struct inflight *in)
{
	if (in->type != EV_UNLINK && in->type != EV_RMDIR)
		return 0;
	in->dropped = 1;
	in->plen = 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&inflight, &tid, in, BPF_ANY);
	return 0;
}

/* A rename over an existing name: the inode that name has now, which the call may free (its numbers go into the
 * event; after the call nothing names it any more) */
static __noinline int note_overwritten(struct inflight *in, int dirfd, const char *newpath)
{
	struct work *w = get_work();
	in->over_ino = 0;
	if (!w || !walk_user(1, dirfd, newpath, 0) || (w->status & (FI_INCOMPLETE | FI_NEGATIVE)))
		return 0;
	struct inode *ino = RO(struct dentry, w->d)->d_inode;
	if (!ino)
		return 0;
	struct inode *ti = RO(struct inode, ino);
	in->over_ino = ti->i_ino;
	in->over_mode = ti->i_mode;
	in->over_uid = ti->i_uid.val;
	in->over_gid = ti->i_gid.val;
	in->over_nlink = ti->__i_nlink;
	return 0;
}

/* the credentials "before" come from cred_cache: sys_enter only captures the target of a destructive call */
static __always_inline int needs_enter(__u32 type)
{
	return type == EV_UNLINK || type == EV_RMDIR || type == EV_RENAME || type == EV_UMOUNT;
}

/* chown, fchown, lchown, fchownat at their start: the owner of the file the call names, before the kernel changes it
 * (the hooks that see the resolved file before the change are kprobes, fentry and BPF-LSM, refused here). On the
 * per-syscall tracepoints of these four alone: the raw sys_enter would be a second hook site for every syscall,
 * these cost other syscalls one bitmap test (and see no i386 call). An fd (fchown, or an empty path with
 * AT_EMPTY_PATH) names its file; a path is walked (a second walk for chown alone: sys_exit walks it again to name
 * the file). sys_exit keeps the owner read here only for the very inode the kernel then stamped, with no other chown
 * of it in between (owner_stamped); otherwise the owner before is unknown (FI_OWNER_UNKNOWN). */
static __noinline int owner_at_enter(__u32 nr, __u64 a0, __u64 a1, __u64 a4)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_delete_elem(&owner_locked, &tid); /* (an earlier call's, whose sys_exit the probe did not see) */
	__u32 t = EV_CHOWN;
	__u32 *on = bpf_map_lookup_elem(&enabled, &t);
	struct work *w = get_work();
	struct inode *ino = NULL;
	if (w && on && (*on & ENABLED) && !pid_discarded(EV_CHOWN)) {
		if (nr == NR_fchown) {
			struct file *f = fd_file((int)a0);
			if (f)
				ino = RO(struct file, f)->f_inode;
		} else {
			w->sc.kstr = 0; /* (walk_user reads it) */
			int need = nr == NR_fchownat
					   ? walk_user(0, (int)a0, (const char *)a1, !(a4 & AT_SYMLINK_NOFOLLOW))
					   : walk_user(0, AT_FDCWD, (const char *)a0, nr == NR_chown);
			if (need && !(w->status & (FI_INCOMPLETE | FI_NEGATIVE)))
				ino = RO(struct dentry, w->d)->d_inode;
		}
	}
	if (!ino) { /* (an entry of an earlier call must not stand for this one) */
		bpf_map_delete_elem(&owner_before, &tid);
		return 0;
	}
	struct inode *ti = RO(struct inode, ino);
	struct owner_before ob = {};
	ob.inode = (__u64)ino;
	ob.ino = ti->i_ino;
	ob.dev = RO(struct super_block, ti->i_sb)->s_dev;
	ob.nr = nr;
	ob.uid = ti->i_uid.val;
	ob.gid = ti->i_gid.val;
	__u64 *seq = bpf_map_lookup_elem(&owner_seq, &ob.inode);
	if (seq) {
		ob.seq = *seq;
	} else {
		ob.seq = next_owner_seq();
		bpf_map_update_elem(&owner_seq, &ob.inode, &ob.seq, BPF_NOEXIST);
	}
	bpf_map_update_elem(&owner_before, &tid, &ob, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_enter_chown")
int chown_enter(struct trace_event_raw_sys_enter *ctx)
{
	return owner_at_enter(NR_chown, ctx->args[0], 0, 0);
}

SEC("tp/syscalls/sys_enter_fchown")
int fchown_enter(struct trace_event_raw_sys_enter *ctx)
{
	return owner_at_enter(NR_fchown, ctx->args[0], 0, 0);
}

SEC("tp/syscalls/sys_enter_lchown")
int lchown_enter(struct trace_event_raw_sys_enter *ctx)
{
	return owner_at_enter(NR_lchown, ctx->args[0], 0, 0);
}

SEC("tp/syscalls/sys_enter_fchownat")
int fchownat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return owner_at_enter(NR_fchownat, ctx->args[0], ctx->args[1], ctx->args[4]);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	__u32 nr = id;
	if (nr >= NR_SYSCALLS)
		return 0;
	__u32 *tp = bpf_map_lookup_elem(&interested, &nr);
	if (!tp || !*tp)
		return 0;
	struct sysc sc;
	if (!decode_sysc(regs, nr, *tp, &sc) || !needs_enter(sc.type))
		return 0;
	__u32 type = sc.type;
	nr = sc.nr;
	__u64 di = sc.a[0];
	__u64 si = sc.a[1];
	__u64 dx = sc.a[2];
	__u32 flags_arg = 0;
	if (nr == NR_unlinkat) {
		flags_arg = dx;
		type = (dx & AT_REMOVEDIR) ? EV_RMDIR : EV_UNLINK;
	}
	if (!enabled_at_enter(type))
		return 0;
	count(type, CNT_SEEN);
	/* a discarded process's rename or umount still goes through: the renamed inode's discarder and those under
	 * a moved directory must go, a freed mount id must bump the generation (sys_exit drops the event itself) */
	if (type != EV_RENAME && type != EV_UMOUNT && pid_discarded(type)) {
		count(type, CNT_FILTERED);
		return 0;
	}
	struct inflight *in = bpf_map_lookup_elem(&inflight_heap, &zero);
	struct work *w = get_work();
	if (!in || !w)
		return 0;
	w->sc.kstr = 0; /* (walk_user reads it) */
	in->nr = nr;
	in->type = type;
	in->plen = 0;
	in->flags_arg = flags_arg;
	/* what invalidates discarders whatever becomes of the event: an umount (a mount id freed for reuse), an
	 * exchange of two names (either may be a directory) */
	int invalidates = type == EV_UMOUNT || (nr == NR_renameat2 && (sc.a[4] & RENAME_EXCHANGE));
	{
		int need = 0;
		switch (nr) {
		case NR_unlink:
		case NR_rmdir:
		case NR_rename:
			need = walk_user(0, AT_FDCWD, (const char *)di, 0);
			break;
		case NR_unlinkat:
		case NR_renameat:
		case NR_renameat2:
			need = walk_user(0, (int)di, (const char *)si, 0);
			break;
		case NR_umount2:
			need = walk_user(0, AT_FDCWD, (const char *)di, !(si & UMOUNT_NOFOLLOW));
			break;
		default:
			return 0;
		}
		/* unlink/rmdir: the dentry found, which must be gone (negative or unhashed) after a success: else the
		 * string was rewritten between this read and the kernel's copy, and another name was removed */
		in->dentry = 0;
		in->dmnt = w->m;
		in->dropped = 0;
		if (need && (type == EV_UNLINK || type == EV_RMDIR) && !(w->status & (FI_INCOMPLETE | FI_NEGATIVE)))
			in->dentry = w->d;
		int decision = need ? early_decision(type, flags_arg) : DECIDE_LATER;
		if (decision == DECIDE_DROP) {
			/* dropped or not, the name goes away or changes: a discarder learned on it no longer holds */
			if (w->disc_hit)
				bpf_map_delete_elem(&discarder_inodes, &w->disc_key);
			/* a directory about to move: every path under it changes (bumped even if the rename fails) */
			if (type == EV_RENAME) {
				struct inode *ino = RO(struct dentry, w->d)->d_inode;
				if (!ino || (RO(struct inode, ino)->i_mode & S_IFMT_BITS) == S_IFDIR_BITS)
					bump_generation();
			}
			if (invalidates)
				bump_generation(); /* (before knowing whether it succeeds: sys_exit will not see it) */
			count(type, CNT_FILTERED);
			return keep_for_check(in);
		}
		if (need)
			finish_slot(0);
		/* (a string in a page not faulted in yet cannot be read here: sys_exit reads it, the kernel has faulted it
		 * in by then; such an event is not filtered on an empty path) */
		int drop = decision == DECIDE_LATER && !(w->fi[0].flags & FI_NO_USER_PATH) &&
			   filtered_out(type, flags_arg, w);
		drop_inode_discarder(&w->fi[0]);
		if (drop) {
			if (invalidates || (type == EV_RENAME && (!(w->fi[0].flags & FI_INODE) ||
								  (w->fi[0].mode & S_IFMT_BITS) == S_IFDIR_BITS)))
				bump_generation();
			return keep_for_check(in);
		}
		__builtin_memcpy(&in->fi, &w->fi[0], sizeof(struct file_info));
		__u32 l = w->splen[0] & PMASK;
		in->plen = l;
		if (l)
			bpf_probe_read_kernel(in->path, BOUND(l, 4095), w->sp[0]);
		in->over_ino = 0;
		if (type == EV_RENAME && !(nr == NR_renameat2 && (sc.a[4] & RENAME_EXCHANGE)))
			note_overwritten(in, nr == NR_rename ? AT_FDCWD : (int)dx,
					 (const char *)(nr == NR_rename ? si : sc.a[3]));
	}
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&inflight, &tid, in, BPF_ANY);
	return 0;
}

/* ------------------------------------------------------------------ sys_exit */

/* A credential-changing syscall returned (type INTERNAL_CRED: one whose event type is off, or unshare/setns):
 * "before" is what cred_cache held for the thread (kept by fork, exec and every such syscall), "after" what
 * the task has now; the cache takes "after". */
static __noinline int handle_cred_exit(__u32 nr, __s64 ret, __u32 type)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct rec_buf *r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!r)
		return 0;
	struct rec_header *h = (struct rec_header *)r->b;
	struct cred_body *b = (struct cred_body *)(r->b + sizeof(*h));
	read_creds((struct task_struct *)bpf_get_current_task(), &b->after);
	struct ocws_creds *cached = bpf_map_lookup_elem(&cred_cache, &tid);
	int known = cached != NULL;
	if (cached)
		__builtin_memcpy(&b->before, cached, sizeof(struct ocws_creds));
	bpf_map_update_elem(&cred_cache, &tid, &b->after, BPF_ANY);
	if (type >= INTERNAL_CRED)
		return 0;
	count(type, CNT_SEEN);
	if (pid_discarded(type)) {
		count(type, CNT_FILTERED);
		return 0;
	}
	fill_header(h, REC_CRED, type);
	h->flags |= w->sc.hflags;
	if (!known) {
		__builtin_memcpy(&b->before, &b->after, sizeof(struct ocws_creds));
		h->flags |= HF_CREDS_BEFORE_UNKNOWN;
	}
	b->retval = ret;
	b->syscall_nr = nr;
	b->pad = 0;
	return output(r->b, sizeof(*h) + sizeof(*b), type);
}

/* setgroups returned: the thread's supplementary groups as the kernel now has them (not the caller's list, which
 * another thread may rewrite) */
static __noinline int handle_groups_exit(__u32 nr, __s64 ret)
{
	struct work *w = get_work();
	struct rec_buf *r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!w || !r)
		return 0;
	count(EV_SETGROUPS, CNT_SEEN);
	if (pid_discarded(EV_SETGROUPS)) {
		count(EV_SETGROUPS, CNT_FILTERED);
		return 0;
	}
	struct rec_header *h = (struct rec_header *)r->b;
	struct groups_body *b = (struct groups_body *)(r->b + sizeof(*h));
	__builtin_memset(b, 0, sizeof(*b));
	fill_header(h, REC_GROUPS, EV_SETGROUPS);
	h->flags |= w->sc.hflags;
	b->retval = ret;
	b->syscall_nr = nr;
	struct task_struct *t = bpf_get_current_task_btf();
	struct group_info *gi = RO(struct cred, t->cred)->group_info;
	if (gi) {
		__u32 n = RO(struct group_info, gi)->ngroups;
		b->ngroups = n;
		if (n > GROUPS_MAX)
			n = GROUPS_MAX;
		if (n)
			bpf_probe_read_kernel(b->gids, BOUND(n * 4 - 1, 255) + 1,
					      (char *)gi + bpf_core_field_offset(struct group_info, gid));
	}
	return output(r->b, sizeof(*h) + sizeof(*b), EV_SETGROUPS);
}

/* the inode the walk state points at (w->d, w->m) is new: a discarder of its number is from a dead inode */
static __always_inline void drop_discarder_of_target(struct work *w)
{
	struct dentry *d = RO(struct dentry, w->d);
	struct inode *ino = d->d_inode;
	if (!ino)
		return;
	struct inode_key k = {.ino = RO(struct inode, ino)->i_ino, .mount_id = RO(struct mount, w->m)->mnt_id,
			      .i_generation = inode_identity(ino)};
	bpf_map_delete_elem(&discarder_inodes, &k);
}

/* `to` takes `from`'s inode and its metadata (the flags are the caller's) */
static __always_inline void copy_inode(struct file_info *to, const struct file_info *from)
{
	to->ino = from->ino;
	to->i_generation = from->i_generation;
	to->atime_ns = from->atime_ns;
	to->mtime_ns = from->mtime_ns;
	to->ctime_ns = from->ctime_ns;
	to->mode = from->mode;
	to->uid = from->uid;
	to->gid = from->gid;
	to->nlink = from->nlink;
}

/* ioctl (INTERNAL_IDENTITY): FS_IOC_SETVERSION, and ext4's own EXT4_IOC_SETVERSION, let a file's owner set its
 * i_generation (ext2/3/4), the identity inode discarders are keyed by: a file born on a freed number could take the
 * identity of the dead inode, whose discarder the agent may learn later still (its event waiting in the ring). A
 * success bumps the discarder generation, which voids every discarder learned from an event seen before it
 * (file_info.generation), as a hard link does. Never done in normal operation: the cost is nil. */
#define IOC_SETVERSION_V 0x40007602 /* _IOW('v', 2, ...) without the size (long, or int from an i386 task) */
#define IOC_SETVERSION_F 0x40006604 /* _IOW('f', 4, ...) */
static __always_inline int handle_identity_exit(__u64 cmd, __s64 ret)
{
	__u32 c = (__u32)cmd & 0xc000ffff;
	if (ret == 0 && (c == IOC_SETVERSION_V || c == IOC_SETVERSION_F))
		bump_generation();
	return 0;
}

/* mknod/mknodat created an inode (opening it later is no birth: FMODE_CREATED is not set) */
static __noinline int handle_birth_exit(__u32 nr, __s64 ret)
{
	struct work *w = get_work();
	if (!w || ret != 0)
		return 0;
	__u64 di = w->sc.a[0];
	__u64 si = w->sc.a[1];
	int need = nr == NR_mknod ? walk_user(0, AT_FDCWD, (const char *)di, 0)
				  : walk_user(0, (int)di, (const char *)si, 0);
	if (need && !(w->status & FI_INCOMPLETE))
		drop_discarder_of_target(w);
	return 0;
}

/* The second move of a RENAME_EXCHANGE (the first event was sent from these slots): the destination's file went to
 * the source's name. Slot 0 takes the destination's path, slot 1 the source's path as it is now, with the file now
 * there (the one that moved); both show that file. */
__noinline int emit_exchange_back(__u32 type)
{
	struct work *w = get_work();
	struct rec_buf *r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!w || !r)
		return 0;
	w->exchange_back = 0;
	__builtin_memcpy(&w->fi[0], &w->fi[1], sizeof(struct file_info));
	__u32 l = w->splen[1] & PMASK;
	w->splen[0] = l;
	if (l)
		bpf_probe_read_kernel(w->sp[0], BOUND(l, 4095), w->sp[1]);
	resolve_user(1, (int)w->sc.a[0], (const char *)w->sc.a[1], 0);
	struct file_info *f0 = &w->fi[0], *f1 = &w->fi[1];
	f0->flags &= ~FI_INODE;
	if (f1->flags & FI_INODE) {
		copy_inode(f0, f1);
		f0->flags |= FI_INODE;
	}
	return emit_file(r, type);
}

/* unlink, rmdir, rename resolved at sys_exit (no sys_enter hook). A removed name is found as a negative
 * dentry, or not at all: the path is then the resolved directory + the name, marked FI_REMOVED, without
 * inode fields. A renamed file is described by what now sits at the destination (the same inode). */
__noinline int handle_removal_exit(__u32 nr, __s64 ret, __u32 type)
{
	struct work *w = get_work();
	struct rec_buf *r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!w || !r)
		return 0;
	w->exchange_back = 0;
	if (!w->sc.counted)
		count(type, CNT_SEEN);
	/* a discarded process's successful rename is still resolved (the discarders it invalidates), not sent */
	int discarded = pid_discarded(type);
	if (discarded && !(type == EV_RENAME && ret == 0)) {
		count(type, CNT_FILTERED);
		return 0;
	}
	__u64 di = w->sc.a[0];
	__u64 si = w->sc.a[1];
	__u64 dx = w->sc.a[2];
	struct file_body *b = begin_file(r, ret, w->sc.raw_nr);
	int dirfd = AT_FDCWD;
	const char *p = (const char *)di;
	if (nr == NR_unlinkat || nr == NR_renameat || nr == NR_renameat2) {
		dirfd = (int)di;
		p = (const char *)si;
	}
	if (nr == NR_unlinkat)
		b->flags_arg = dx;
	if (nr == NR_renameat2)
		b->flags_arg = w->sc.a[4];
	int need = walk_user(0, dirfd, p, 0);
	int gone = 0, missing = 0;
	/* a name still there after its successful removal (or rename: not an exchange): the path string was
	 * rewritten during the call, the kernel removed another name; the one found is reported, flagged */
	w->rewritten = need && ret == 0 && !(w->status & (FI_INCOMPLETE | FI_NEGATIVE)) &&
		       !(b->flags_arg & RENAME_EXCHANGE && nr == NR_renameat2);
	if (need && ret == 0 && !w->rewritten) {
		if ((w->status & FI_NOT_CACHED) && w->stop_last) {
			w->len = w->stop_end; /* drop trailing slashes */
			gone = missing = 1;
		} else if ((w->status & FI_NEGATIVE) || type != EV_RENAME) {
			gone = 1;
		}
	}
	if (need)
		finish_slot(0);
	struct file_info *f0 = &w->fi[0];
	if (w->rewritten)
		f0->flags |= FI_REWRITTEN;
	if (gone) {
		f0->flags &= ~(FI_INCOMPLETE | FI_NOT_CACHED | FI_NEGATIVE);
		f0->flags |= FI_REMOVED;
		f0->resolved_len = f0->path_len;
		if (missing)
			fill_mount(f0, (struct dentry *)w->res_d, (struct mount *)w->res_m);
	}
	if (type == EV_RENAME) {
		__u64 a3 = w->sc.a[3];
		if (nr == NR_rename)
			resolve_user(1, AT_FDCWD, (const char *)si, 0);
		else
			resolve_user(1, (int)dx, (const char *)a3, 0);
		struct file_info *f1 = &w->fi[1];
		/* a directory moved (or a file of unknown kind, or two names exchanged: the other one may be a
		 * directory, and its inode's discarder is not dropped below): paths under it changed */
		if (ret == 0 && (!(f1->flags & FI_INODE) || (f1->mode & S_IFMT_BITS) == S_IFDIR_BITS ||
				 (b->flags_arg & RENAME_EXCHANGE)))
			bump_generation();
		if (ret == 0 && (f1->flags & FI_INODE)) {
			/* the discarder of the renamed inode no longer holds (its path changed) */
			struct inode_key k = {.ino = f1->ino, .mount_id = f1->mount_id, .i_generation = f1->i_generation};
			bpf_map_delete_elem(&discarder_inodes, &k);
			if (gone || (b->flags_arg & RENAME_EXCHANGE)) { /* (an exchange: the source's file is now there) */
				copy_inode(f0, f1);
				f0->flags = (f0->flags & ~FI_REMOVED) | FI_INODE | (f1->flags & FI_UPPER_LAYER);
			}
		}
	} else {
		clear_slot(w, 1);
		if (ret == 0)
			name_removed(w->res_m, 0);
	}
	if (discarded) {
		count(type, CNT_FILTERED);
		return 0;
	}
	if (!w->rewritten && filtered_out(type, b->flags_arg, w))
		return 0;
	emit_file(r, type);
	w->exchange_back = type == EV_RENAME && ret == 0 && (b->flags_arg & RENAME_EXCHANGE);
	return 0;
}

/* handle_removal_exit, then the second move of an exchange it sent */
static __always_inline int removal_exit(struct work *w, __u32 nr, __s64 ret, __u32 type)
{
	handle_removal_exit(nr, ret, type);
	if (w->exchange_back)
		emit_exchange_back(type);
	return 0;
}

/* A successful unlink/rmdir resolved at sys_enter: the dentry found then must be gone now (negative or unhashed).
 * Still there: the string was rewritten between the probe's read and the kernel's copy, the kernel removed another
 * name; slot 0 (resolved again from that dentry when the event was filtered at sys_enter) is flagged. (A dentry
 * freed and reused meanwhile could flag a real removal: a false alarm, never a hidden event.) */
static __noinline int check_removed(__s64 ret)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	w->rewritten = 0;
	if (ret != 0 || !w->in_dentry)
		return 0;
	struct dentry *d = RO(struct dentry, w->in_dentry);
	if (!d->d_inode || !d->d_hash.pprev)
		return 0;
	w->rewritten = 1;
	if (w->in_dropped) {
		resolve_dentry(w, 0, w->in_dentry, w->in_dmnt);
	}
	w->fi[0].flags |= FI_REWRITTEN;
	return 0;
}

/* An umount whose target string was in a page not faulted in at sys_enter: read now (the kernel faulted it in). After a
 * success the path names the mountpoint in the mount below (the unmounted one is gone: no inode, no mount fields,
 * FI_REMOVED); after a failure it is resolved as at sys_enter. */
__noinline int reread_umount(__s64 ret)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	__u64 flags = w->sc.a[1]; /* (0 for oldumount: decode_sysc) */
	resolve_user(0, AT_FDCWD, (const char *)w->sc.a[0], !(flags & UMOUNT_NOFOLLOW));
	struct file_info *f = &w->fi[0];
	if (ret == 0 && !(f->flags & FI_NO_USER_PATH)) {
		f->flags = (f->flags & ~(FI_INODE | FI_INCOMPLETE | FI_NOT_CACHED | FI_NEGATIVE)) | FI_REMOVED;
		f->resolved_len = f->path_len;
		f->mount_id = 0;
		f->group_id = 0;
		f->dev = 0;
		f->fstype[0] = 0;
	}
	return 0;
}

/* events resolved at sys_enter: restore slot 0 from the in-flight entry */
static __noinline int restore_inflight(__u32 nr)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct inflight *in = bpf_map_lookup_elem(&inflight, &tid);
	struct work *w = get_work();
	if (!in || !w)
		return -1;
	if (in->nr != nr) {
		bpf_map_delete_elem(&inflight, &tid);
		return -1;
	}
	__builtin_memcpy(&w->fi[0], &in->fi, sizeof(struct file_info));
	__u32 l = in->plen & PMASK;
	w->splen[0] = l;
	if (l)
		bpf_probe_read_kernel(w->sp[0], BOUND(l, 4095), in->path);
	__builtin_memset(&w->fi[1], 0, sizeof(struct file_info));
	w->splen[1] = 0;
	w->over_ino = in->over_ino;
	w->in_dentry = in->dentry;
	w->in_dmnt = in->dmnt;
	w->in_dropped = in->dropped;
	w->over_mode = in->over_mode;
	w->over_uid = in->over_uid;
	w->over_gid = in->over_gid;
	w->over_nlink = in->over_nlink;
	int type = in->type;
	bpf_map_delete_elem(&inflight, &tid);
	return type;
}

static long insn_chunk(__u32 i, void *ctx)
{
	struct work *w = get_work();
	if (!w)
		return 1;
	__u32 first = i * 32;
	if (first >= w->insn_cnt)
		return 1;
	__u64 src = w->insns + first * 8;
	if (bpf_probe_read_user(w->name, 256, (void *)src)) {
		/* the last chunk may end where the program's memory does: read it one instruction at a time */
		for (int k = 0; k < 32; k++) {
			if (first + k >= w->insn_cnt)
				break;
			if (bpf_probe_read_user(&w->name[(k * 8) & 248], 8, (void *)(src + k * 8))) {
				w->insn_unread = 1;
				return 1;
			}
		}
	}
	for (int k = 0; k < 32; k++) {
		if (first + k >= w->insn_cnt)
			break;
		__u8 code = w->name[(k * 8) & 255];
		__u8 regs = w->name[(k * 8 + 1) & 255];
		if (code == 0x85 && (regs >> 4) == 0) {
			__u32 imm = *(__u32 *)&w->name[((k * 8) & 248) + 4];
			if (imm < 256)
				w->helpers[(imm >> 6) & 3] |= 1ULL << (imm & 63);
		}
	}
	return 0;
}

static __noinline int handle_bpf_exit(__s64 ret, __u64 cmd, const void *attr)
{
	struct work *w = get_work();
	struct rec_buf *r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!w || !r)
		return 0;
	struct rec_header *h = (struct rec_header *)r->b;
	struct bpf_body *b = (struct bpf_body *)(r->b + sizeof(*h));
	__builtin_memset(b, 0, sizeof(*b));
	fill_header(h, REC_BPF, EV_BPF);
	h->flags |= w->sc.hflags;
	b->retval = ret;
	b->cmd = cmd;
	w->helpers[0] = w->helpers[1] = w->helpers[2] = w->helpers[3] = 0;
	if (cmd == 0) { /* BPF_MAP_CREATE */
		bpf_probe_read_user(&b->map_type, 4, attr);
		bpf_probe_read_user(b->name, 16, (const char *)attr + 28);
	} else if (cmd == 5) { /* BPF_PROG_LOAD */
		bpf_probe_read_user(&b->prog_type, 4, attr);
		bpf_probe_read_user(&b->insn_cnt, 4, (const char *)attr + 4);
		bpf_probe_read_user(&w->insns, 8, (const char *)attr + 8);
		bpf_probe_read_user(b->name, 16, (const char *)attr + 48);
		bpf_probe_read_user(&b->attach_type, 4, (const char *)attr + 68);
		w->insn_cnt = ret >= 0 ? b->insn_cnt : 0; /* a refused load is not worth a scan of 1M instructions */
		w->insn_unread = w->insn_cnt > MAX_INSN_CHUNKS * 32;
		__u32 chunks = (w->insn_cnt + 31) / 32;
		if (chunks)
			bpf_loop(chunks < MAX_INSN_CHUNKS ? chunks : MAX_INSN_CHUNKS, insn_chunk, NULL, 0);
		if (w->insn_unread || (ret < 0 && b->insn_cnt)) /* (a refused load is not scanned) */
			b->flags |= BPF_HELPERS_INCOMPLETE;
		b->helpers[0] = w->helpers[0];
		b->helpers[1] = w->helpers[1];
		b->helpers[2] = w->helpers[2];
		b->helpers[3] = w->helpers[3];
	}
	return output(r->b, sizeof(*h) + sizeof(*b), EV_BPF);
}

static __always_inline int name_is(const char *buf, const char *lit, int n)
{
	for (int i = 0; i < n; i++)
		if (buf[i] != lit[i])
			return 0;
	return 1;
}

static __noinline int handle_write_exit(__s64 ret, int fd, const char *ubuf, __u64 count_arg)
{
	/* every write() of every process comes here while selinux events are on: decide in a few loads */
	struct file *f = fd_file(fd);
	if (!f)
		return 0;
	struct file *tf = RO(struct file, f);
	if (tf->f_path.dentry->d_sb->s_magic != SELINUX_MAGIC) {
		__u32 *any = bpf_map_lookup_elem(&selinuxfs_standins, &zero);
		if (!any || !*any)
			return 0;
		__u32 mid = RO(struct mount, real_mount(tf->f_path.mnt))->mnt_id;
		if (!bpf_map_lookup_elem(&selinuxfs_mounts, &mid))
			return 0;
	}
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	struct vfsmount *vm = BPF_CORE_READ(f, f_path.mnt);
	struct work *w = get_work();
	struct rec_buf *r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!w || !r)
		return 0;
	struct dentry *root = BPF_CORE_READ(vm, mnt_root);
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	__u32 kind = 0;
	__u32 len = BPF_CORE_READ(d, d_name.len);
	__builtin_memset(w->name, 0, 32);
	bpf_probe_read_kernel(w->name, 32, BPF_CORE_READ(d, d_name.name));
	if (parent == root) {
		if (len == 7 && name_is(w->name, "enforce", 7))
			kind = SELINUX_ENFORCE;
		else if (len == 20 && name_is(w->name, "commit_pending_bools", 20))
			kind = SELINUX_COMMIT;
	} else if (BPF_CORE_READ(parent, d_parent) == root && BPF_CORE_READ(parent, d_name.len) == 8) {
		bpf_probe_read_kernel(w->name, 8, BPF_CORE_READ(parent, d_name.name));
		if (name_is(w->name, "booleans", 8))
			kind = SELINUX_BOOL;
	}
	if (!kind)
		return 0;
	count(EV_SELINUX, CNT_SEEN);
	if (pid_discarded(EV_SELINUX)) {
		count(EV_SELINUX, CNT_FILTERED);
		return 0;
	}
	struct file_body *b = begin_file(r, ret, w->sc.raw_nr);
	b->flags_arg = kind;
	__u32 n = count_arg > 63 ? 63 : count_arg;
	__builtin_memset(w->extra, 0, 64);
	if (n)
		bpf_probe_read_user(w->extra, BOUND(n, 63), ubuf);
	b->extra_len = n;
	resolve_file(0, f);
	__builtin_memset(&w->fi[1], 0, sizeof(struct file_info));
	w->splen[1] = 0;
	return emit_file(r, EV_SELINUX);
}

/* mount and move_mount: slot 0 = the mountpoint, slot 1 = the root of the new mount (mount id, group, device,
 * fs type) */
#define MNT_FOLLOW 1            /* handle_mount_exit: follow a final symlink of the target */
#define MNT_CHANGES_EXISTING 2  /* the call changed the mount on the target (no new mount to step onto) */

static __noinline int handle_mount_exit(__s64 ret, int dirfd, const char *dir, int opts, struct file *moved)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	int ok;
	if (ret == 0 && moved) {
		ok = target_file(1, moved);
	} else {
		ok = walk_user(1, dirfd, dir, opts & MNT_FOLLOW);
		if (!ok && ret == 0) /* move_mount to a NULL path with MOVE_MOUNT_T_EMPTY_PATH: the target is the dirfd */
			ok = target_file(1, fd_file(dirfd));
		/* a target of "." or "": the walk ends on the mountpoint itself, under the new mount (unless the call
		 * changed that mount itself: a remount, a propagation change) */
		if (ok && ret == 0 && !(opts & MNT_CHANGES_EXISTING) && !(w->status & FI_INCOMPLETE))
			cross_mounts(w);
	}
	if (ok)
		finish_slot(1);
	if (ret == 0 && ok && !(w->fi[1].flags & FI_INCOMPLETE)) {
		struct mount *m = (struct mount *)w->res_m;
		clear_slot(w, 0);
		set_task_root(w);
		w->d = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
		w->m = (__u64)BPF_CORE_READ(m, mnt_parent);
		w->len = 0;
		w->pos = 0;
		finish_slot(0);
	} else {
		/* the mount failed: report the target in slot 0 */
		__builtin_memcpy(&w->fi[0], &w->fi[1], sizeof(struct file_info));
		__u32 l = w->splen[1] & PMASK;
		w->splen[0] = l;
		if (l)
			bpf_probe_read_kernel(w->sp[0], BOUND(l, 4095), w->sp[1]);
		__builtin_memset(&w->fi[1], 0, sizeof(struct file_info));
		w->splen[1] = 0;
	}
	return 0;
}

/* After a successful link, its source (slot 0) and its new name (slot 1) are the same inode; two inodes: a path
 * string was rewritten during the call (which one cannot be told): the source is flagged. 1: flagged. */
static __noinline int check_link_outcome(void)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	struct file_info *f0 = &w->fi[0], *f1 = &w->fi[1];
	if (!(f0->flags & FI_INODE) || !(f1->flags & FI_INODE) || f0->ino == f1->ino)
		return 0;
	f0->flags |= FI_REWRITTEN;
	return 1;
}

/* A chown's file (slot 0) takes the owner it had when the call began (Datadog's chown.file.uid/gid). A refused call
 * changed nothing: the owner read now is that one. A success, for the file in slot 0 when the kernel stamped it in
 * this call: the owner ext4 showed under the inode lock (owner_ext4), else the owner read at the call's start with no
 * other chown of the inode in between; else unknown (uid and gid (uid_t)-1, FI_OWNER_UNKNOWN): not ext4, and the
 * string was rewritten between the reads, the walk at the start could not finish (a name not in the dentry cache
 * yet, a string in a page not faulted in), another chown raced, or an i386 call. */
static __noinline int owner_into_slot0(void)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	struct file_info *f = &w->fi[0];
	if (w->sc.ret != 0 || !(f->flags & FI_INODE))
		return 0;
	struct owner_locked *ol = &w->ol;
	__u32 n = ol->n;
	for (int i = 0; i < LOCKED_MAX; i++) {
		if (i < n && ol->ino[i] == f->ino && ol->dev[i] == f->dev && acted_on(w, ol->inode[i]) == 1) {
			f->uid = ol->uid[i];
			f->gid = ol->gid[i];
			return 0;
		}
	}
	struct owner_before *ob = &w->ob;
	if (ob->inode && ob->clean && ob->ino == f->ino && ob->dev == f->dev && acted_on(w, ob->inode) == 1) {
		f->uid = ob->uid;
		f->gid = ob->gid;
		return 0;
	}
	f->uid = 0xffffffffu;
	f->gid = 0xffffffffu;
	f->flags |= FI_OWNER_UNKNOWN;
	return 0;
}

/* Every file syscall but the selinux write (and unlink/rmdir/rename/umount resolved at sys_enter), and the io_uring
 * operations that do the same: the syscall in w->sc. */
__noinline int handle_file_exit(__s64 ret, __u32 type)
{
	struct work *w = get_work();
	if (!w)
		return 0;
	__u32 nr = w->sc.nr;
	__u32 raw_nr = w->sc.raw_nr;
	__u64 di = w->sc.a[0];
	__u64 si = w->sc.a[1];
	__u64 dx = w->sc.a[2];
	__u64 r10 = w->sc.a[3];
	__u64 r8 = w->sc.a[4];
	count(type, CNT_SEEN);
	/* a new name for an inode (a successful link) drops its discarder, and a mount bumps the generation, even
	 * from a discarded process */
	int new_name = type == EV_LINK && ret == 0;
	int discarded = pid_discarded(type);
	int fd_result = type == EV_OPEN && ret >= 0 && !(w->sc.uflags & U_FIXED_SLOT) && nr != NR_truncate &&
			nr != NR_ftruncate; /* ret is an fd */
	if (discarded && !new_name && !(type == EV_MOUNT && ret == 0)) {
		if (fd_result)
			forget_born_inode(ret, nr == NR_openat || nr == NR_open_by_handle_at ? dx : nr == NR_open ? si : 0);
		count(type, CNT_FILTERED);
		return 0;
	}
	if (fd_result && nr != NR_openat2 &&
	    open_fd_discarded(ret, nr == NR_openat || nr == NR_open_by_handle_at ? dx : nr == NR_open ? si : 0)) {
		count(type, CNT_FILTERED);
		return 0;
	}
	if (type == EV_BPF)
		return handle_bpf_exit(ret, di, (const void *)si);
	struct rec_buf *r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!r)
		return 0;
	struct file_body *b = begin_file(r, ret, raw_nr);
	w->splen[1] = 0;
	int need = 0;
	int s1_dirfd = AT_FDCWD;
	const char *s1_path = NULL;
	const char *s1_raw = NULL;
	switch (nr) {
	case NR_open:
	case NR_creat:
	case NR_openat:
	case NR_openat2:
	case NR_open_by_handle_at: {
		int dirfd = AT_FDCWD;
		const char *p = (const char *)di;
		__u32 flags = si, mode = dx;
		if (nr == NR_creat) {
			flags = O_CREAT | O_WRONLY | O_TRUNC;
			mode = si;
		} else if (nr == NR_openat) {
			dirfd = di;
			p = (const char *)si;
			flags = dx;
			mode = r10;
		} else if (nr == NR_open_by_handle_at) {
			/* (mount_fd, handle, flags): no path; a failure reports the mount_fd's file */
			flags = dx;
			mode = 0;
		} else if (nr == NR_openat2) {
			__u64 how[2] = {};
			bpf_probe_read_user(how, sizeof(how), (const void *)dx);
			dirfd = di;
			p = (const char *)si;
			flags = how[0];
			mode = how[1];
		}
		b->flags_arg = flags;
		b->mode_arg = mode;
		if (fd_result) {
			struct file *f = fd_file(ret);
			need = target_file(0, f);
			/* a new inode: a discarder of its number was learned on a dead inode that had it */
			if (need && ((RO(struct file, f)->f_mode & FMODE_CREATED_BIT) || (flags & O_TMPFILE_BIT)))
				drop_discarder_of_target(w);
		} else if (nr == NR_open_by_handle_at)
			need = target_file(0, fd_file(di));
		else
			need = walk_user(0, dirfd, p, !(flags & O_NOFOLLOW));
		break;
	}
	case NR_truncate:
	case NR_ftruncate:
		/* an open event, as Datadog reports a truncate: the file written over (O_WRONLY | O_TRUNC) */
		b->flags_arg = O_WRONLY | O_TRUNC;
		if (nr == NR_truncate)
			need = walk_user(0, AT_FDCWD, (const char *)di, 1);
		else
			need = target_file(0, w->sc.file ? (struct file *)w->sc.file : fd_file(di));
		break;
	case NR_chmod:
		b->mode_arg = si;
		need = walk_user(0, AT_FDCWD, (const char *)di, 1);
		break;
	case NR_fchmod:
		b->mode_arg = si;
		need = target_file(0, fd_file(di));
		break;
	case NR_fchmodat:
	case NR_fchmodat2:
		b->mode_arg = dx;
		if (nr == NR_fchmodat2)
			b->flags_arg = r10;
		need = walk_user(0, di, (const char *)si, !(b->flags_arg & AT_SYMLINK_NOFOLLOW));
		break;
	case NR_chown:
	case NR_lchown:
		b->uid_arg = si;
		b->gid_arg = dx;
		need = walk_user(0, AT_FDCWD, (const char *)di, nr == NR_chown);
		break;
	case NR_fchown:
		b->uid_arg = si;
		b->gid_arg = dx;
		need = target_file(0, fd_file(di));
		break;
	case NR_fchownat:
		b->uid_arg = dx;
		b->gid_arg = r10;
		b->flags_arg = r8;
		need = walk_user(0, di, (const char *)si, !(r8 & AT_SYMLINK_NOFOLLOW));
		break;
	case NR_link:
		need = walk_user(0, AT_FDCWD, (const char *)di, 0);
		s1_path = (const char *)si;
		break;
	case NR_linkat:
		b->flags_arg = r8;
		need = link_source(di, (const char *)si, r8);
		s1_dirfd = dx;
		s1_path = (const char *)r10;
		break;
	case NR_mkdir:
		b->mode_arg = si;
		need = walk_user(0, AT_FDCWD, (const char *)di, 0);
		break;
	case NR_mknod:
	case NR_mknodat:
		/* (the new inode's stale discarder was dropped by handle_birth_exit) */
		b->mode_arg = nr == NR_mknod ? si : dx;
		b->uid_arg = nr == NR_mknod ? dx : r10;
		need = nr == NR_mknod ? walk_user(0, AT_FDCWD, (const char *)di, 0)
				      : walk_user(0, di, (const char *)si, 0);
		break;
	case NR_symlink:
		need = walk_user(0, AT_FDCWD, (const char *)si, 0);
		s1_raw = (const char *)di;
		break;
	case NR_symlinkat:
		need = walk_user(0, si, (const char *)dx, 0);
		s1_raw = (const char *)di;
		break;
	case NR_mkdirat:
		b->mode_arg = dx;
		need = walk_user(0, di, (const char *)si, 0);
		break;
	case NR_utime:
		read_times(b, (const void *)si, 0, w->sc.variant & IV_TIME32);
		need = walk_user(0, AT_FDCWD, (const char *)di, 1);
		break;
	case NR_utimes:
		read_times(b, (const void *)si, 1, w->sc.variant & IV_TIME32);
		need = walk_user(0, AT_FDCWD, (const char *)di, 1);
		break;
	case NR_futimesat:
		read_times(b, (const void *)dx, 1, w->sc.variant & IV_TIME32);
		/* (a NULL path: the dirfd's own file, as utimensat) */
		need = si ? walk_user(0, di, (const char *)si, 1) : target_file(0, fd_file(di));
		break;
	case NR_utimensat:
		read_times(b, (const void *)dx, 2, w->sc.variant & IV_TIME32);
		b->flags_arg = r10;
		if (si)
			need = walk_user(0, di, (const char *)si, !(r10 & AT_SYMLINK_NOFOLLOW));
		else
			need = target_file(0, fd_file(di));
		break;
	case NR_setxattr:
	case NR_lsetxattr:
	case NR_removexattr:
	case NR_lremovexattr:
		if (nr == NR_setxattr || nr == NR_lsetxattr)
			b->flags_arg = r8;
		read_extra_str(w, b, (const char *)si);
		need = walk_user(0, AT_FDCWD, (const char *)di, nr == NR_setxattr || nr == NR_removexattr);
		break;
	case NR_setxattrat:
	case NR_removexattrat:
		/* (dfd, path, at_flags, name, args, size): the xattr flags are in struct xattr_args */
		if (nr == NR_setxattrat) {
			__u32 xflags = 0;
			bpf_probe_read_user(&xflags, 4, (const char *)r8 + 12);
			b->flags_arg = xflags;
		}
		read_extra_str(w, b, (const char *)r10);
		if (si)
			need = walk_user(0, di, (const char *)si, !(dx & AT_SYMLINK_NOFOLLOW));
		else
			need = target_file(0, fd_file(di));
		break;
	case NR_fsetxattr:
	case NR_fremovexattr:
		if (nr == NR_fsetxattr)
			b->flags_arg = r8;
		read_extra_str(w, b, (const char *)si);
		need = target_file(0, w->sc.file ? (struct file *)w->sc.file : fd_file(di));
		break;
	case NR_mount:
		b->flags_arg = r10;
		read_extra_str(w, b, (const char *)dx);
		handle_mount_exit(ret, AT_FDCWD, (const char *)si,
				  MNT_FOLLOW | ((r10 & MS_CHANGES_EXISTING) ? MNT_CHANGES_EXISTING : 0), NULL);
		need = 2;
		if (ret == 0)
			bump_generation();
		break;
	case NR_move_mount: {
		/* the new mount API (fsopen/fsmount, open_tree) attaches here: move_mount(from_dfd, from_path, to_dfd,
		 * to_path, flags); the fs type is the new mount's own (there is no user string for it) */
		b->flags_arg = r8;
		struct file *moved = NULL; /* from an fd (fsmount, open_tree): that mount's root describes it */
		char first = 1;
		if (r8 & MOVE_MOUNT_F_EMPTY_PATH)
			bpf_probe_read_user(&first, 1, (const char *)si);
		if (!first)
			moved = fd_file((int)di);
		handle_mount_exit(ret, (int)dx, (const char *)r10, (r8 & MOVE_MOUNT_T_SYMLINKS) ? MNT_FOLLOW : 0, moved);
		long n = 0;
		if (ret == 0)
			n = bpf_probe_read_kernel_str(w->extra, sizeof(w->fi[1].fstype), w->fi[1].fstype);
		b->extra_len = n > 0 ? n - 1 : 0;
		need = 2;
		if (ret == 0)
			bump_generation();
		break;
	}
	default:
		return 0;
	}
	/* a rewritten path is never filtered: the name it shows is not the one the kernel acted on */
	w->sc.ret = ret;
	w->rewritten = 0; /* (early_decision sets it) */
	/* the kernel stamped another file than the walk's: named from the kernel's inode below, never filtered */
	int elsewhere = need == 1 && w->act.n && acted_elsewhere();
	int decision = elsewhere ? DECIDE_PASS : need == 1 ? early_decision(type, b->flags_arg) : DECIDE_LATER;
	if (decision == DECIDE_DROP || discarded) {
		if (new_name) /* (see below) */
			bump_generation();
		count(type, CNT_FILTERED);
		return 0;
	}
	if (need == 1)
		finish_slot(0);
	if (w->rewritten)
		w->fi[0].flags |= FI_REWRITTEN;
	if (elsewhere) /* (slot 1: what the string named, for the types without a second file) */
		name_acted(type == EV_LINK);
	if (s1_path)
		resolve_user(1, s1_dirfd, s1_path, 0);
	else if (s1_raw)
		raw_slot(1, s1_raw);
	else if (!elsewhere && nr != NR_mount && nr != NR_move_mount)
		clear_slot(w, 1);
	if (new_name) /* the inode may also be reached through a bind mount (another discarder key): every one */
		bump_generation();
	/* a successful link whose two names show two inodes: one of the strings was rewritten during the call */
	if (new_name && check_link_outcome())
		decision = DECIDE_PASS;
	if (type == EV_CHOWN)
		owner_into_slot0();
	if (decision == DECIDE_LATER && filtered_out(type, b->flags_arg, w))
		return 0;
	return emit_file(r, type);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	/* tp_btf: regs is a typed kernel pointer, read directly (no helper call) */
	__u32 nr = regs->orig_ax;
	if (nr >= NR_SYSCALLS)
		return 0;
	__u32 *tp = bpf_map_lookup_elem(&interested, &nr);
	if (!tp || !*tp)
		return 0;
	if (*tp == INTERNAL_DD)
		return dd_register(regs);
	/* the busiest case on a machine, a native open of a discarded inode, decided first, from the registers (as
	 * handle_file_exit would: a new inode is never discarded, a discarded process changes nothing) */
	if ((*tp & 0xff) == EV_OPEN && ret >= 0 && nr != NR_openat2 && nr != NR_truncate && nr != NR_ftruncate &&
	    !(bpf_get_current_task_btf()->thread_info.status & TS_COMPAT) &&
	    open_fd_discarded(ret, nr == NR_openat || nr == NR_open_by_handle_at ? regs->dx
				   : nr == NR_open ? regs->si : 0)) {
		count(EV_OPEN, CNT_SEEN);
		count(EV_OPEN, CNT_FILTERED);
		return 0;
	}
	/* a native ioctl (frequent: terminals, KVM_RUN...): its command checked from the registers, nothing else */
	if ((*tp & 0xff) == INTERNAL_IDENTITY && !(bpf_get_current_task_btf()->thread_info.status & TS_COMPAT))
		return handle_identity_exit(regs->si, ret);
	struct work *w = get_work();
	if (!w || !decode_sysc(regs, nr, *tp, &w->sc))
		return 0;
	__u32 type = w->sc.type;
	nr = w->sc.nr;
	__u32 raw_nr = w->sc.raw_nr;
	if (type == INTERNAL_IDENTITY) /* (an i386 ioctl) */
		return handle_identity_exit(w->sc.a[1], ret);
	w->act.n = 0;
	if (racing_type(type))
		take_acted(regs->orig_ax, type == EV_CHOWN);
	if (type == INTERNAL_BIRTH)
		return handle_birth_exit(nr, ret);
	if (type == EV_MKNOD)
		handle_birth_exit(nr, ret); /* (whatever becomes of the event) */
	if (type == EV_SETGROUPS)
		return handle_groups_exit(raw_nr, ret);
	if (nr == NR_unshare && ret == 0 && (w->sc.a[0] & CLONE_NEWNS))
		bump_generation(); /* (as a clone with CLONE_NEWNS: see sched_fork) */
	if (type == INTERNAL_MOUNTS) {
		if (ret >= 0 && nr != NR_unshare) /* (open_tree and fsmount return an fd) */
			bump_generation();
		return 0;
	}
	if (type == INTERNAL_CHROOT) {
		__u32 *seen = bpf_map_lookup_elem(&chroot_seen, &zero);
		if (seen && ret == 0)
			*seen = 1;
		return 0;
	}
	if (type == EV_SETUID || type == EV_SETGID || type == EV_CAPSET || type == INTERNAL_CRED)
		return handle_cred_exit(raw_nr, ret, type);
	if (type == EV_UNLINK || type == EV_RMDIR || type == EV_RENAME) {
		__u32 t = type;
		if (nr == NR_unlinkat)
			t = (w->sc.a[2] & AT_REMOVEDIR) ? EV_RMDIR : EV_UNLINK;
		if (enabled_at_exit(t))
			return removal_exit(w, nr, ret, t);
	}
	if (type == EV_UNLINK || type == EV_RMDIR || type == EV_RENAME || type == EV_UMOUNT) {
		struct work *w0 = w;
		struct rec_buf *r0 = bpf_map_lookup_elem(&rec_heap, &zero);
		if (!r0)
			return 0;
		__u32 saved_flags = 0;
		__u32 tid = (__u32)bpf_get_current_pid_tgid();
		struct inflight *in = bpf_map_lookup_elem(&inflight, &tid);
		if (in)
			saved_flags = in->flags_arg;
		int t = restore_inflight(nr);
		if (t < 0) {
			/* no entry: dropped at sys_enter (which did what had to be done), or evicted, or the type turned
			 * on between the two hooks: a freed mount id must invalidate all the same */
			if (ret == 0 && nr == NR_umount2)
				bump_generation();
			return 0;
		}
		if (w->in_dropped) { /* (filtered at sys_enter: only a rewritten string makes it an event) */
			check_removed(ret);
			if (ret == 0)
				name_removed(w->in_dmnt, 1);
			if (!w->rewritten)
				return 0;
		} else if (t == EV_UNLINK || t == EV_RMDIR) {
			check_removed(ret);
			if (ret == 0)
				name_removed(w->in_dmnt, 1);
		}
		/* the string was in a page not faulted in at sys_enter (an untouched file mapping, a page a fork has not
		 * copied yet): the kernel has read it since, so it can be read now, resolved as at sys_exit */
		if (!w->in_dropped && (w0->fi[0].flags & FI_NO_USER_PATH) && t != EV_UMOUNT) {
			w->sc.counted = 1; /* (at sys_enter) */
			return removal_exit(w, nr, ret, t);
		}
		if (!w->in_dropped && (w0->fi[0].flags & FI_NO_USER_PATH) && t == EV_UMOUNT)
			reread_umount(ret);
		struct file_body *b = begin_file(r0, ret, raw_nr);
		b->flags_arg = saved_flags;
		if (t == EV_RENAME && ret == 0)
			check_moved();
		if (t == EV_RENAME) {
			__u64 a1 = w->sc.a[1];
			__u64 a2 = w->sc.a[2];
			__u64 a3 = w->sc.a[3];
			if (nr == NR_rename)
				resolve_user(1, AT_FDCWD, (const char *)a1, 0);
			else
				resolve_user(1, (int)a2, (const char *)a3, 0);
			if (nr == NR_renameat2)
				b->flags_arg = w->sc.a[4];
			if (ret == 0 && w->over_ino) { /* (in the fields renames leave unused: records.py) */
				b->atime_arg = w->over_ino;
				b->mtime_arg = w->over_nlink;
				b->mode_arg = w->over_mode;
				b->uid_arg = w->over_uid;
				b->gid_arg = w->over_gid;
			}
		}
		/* (decided before the invalidations below) */
		int discarded = (t == EV_RENAME || t == EV_UMOUNT) && pid_discarded(t);
		if (ret == 0)
			drop_inode_discarder(&w0->fi[0]);
		if (ret == 0 && t == EV_UMOUNT)
			bump_generation();
		if (ret == 0 && t == EV_RENAME &&
		    (!(w0->fi[0].flags & FI_INODE) || (w0->fi[0].mode & S_IFMT_BITS) == S_IFDIR_BITS ||
		     (b->flags_arg & RENAME_EXCHANGE)))
			bump_generation(); /* a directory moved (or two names exchanged): paths under it changed */
		if (discarded) {
			count(t, CNT_FILTERED);
			return 0;
		}
		emit_file(r0, t);
		if (t == EV_RENAME && ret == 0 && (b->flags_arg & RENAME_EXCHANGE))
			emit_exchange_back(t);
		return 0;
	}
	/* (interested[] only names the syscalls of enabled types: no need to check `enabled` here) */
	if (type == EV_SELINUX)
		return handle_write_exit(ret, (int)w->sc.a[0], (const char *)w->sc.a[1], w->sc.a[2]);
	return handle_file_exit(ret, type);
}

/* ------------------------------------------------------------------ io_uring */

/* File operations submitted through io_uring never enter the syscalls above. At submission (the submitter's
 * context) the request holds the kernel's own copies of its path strings (getname at prep: what the operation
 * will use, whatever the process does to its memory afterwards); they are kept with the submitter's header
 * until the completion, which gives the result and runs in a thread of the same process (the submitter, or an
 * io-wq worker sharing its files and fs). The operation is then handled as its syscall twin. */
#define IORING_OP_OPENAT 18
#define IORING_OP_OPENAT2 28
#define IORING_OP_RENAMEAT 35
#define IORING_OP_UNLINKAT 36
#define IORING_OP_MKDIRAT 37
#define IORING_OP_SYMLINKAT 38
#define IORING_OP_LINKAT 39
#define IORING_OP_FSETXATTR 41
#define IORING_OP_FTRUNCATE 55
#define IORING_OP_SETXATTR 42
#define URING_OPS 1024 /* in-flight io_uring file operations kept (about 8.5 KiB each, preallocated: 8.7 MiB) */

struct uring_op {
	struct rec_header h;           /* the submitter, at submission */
	__u64 a[6];                    /* the twin's arguments; a string: 1 s[0], 2 s[1], 3 name (0: unreadable) */
	__u32 nr;                      /* the twin (x86_64 number) */
	__u32 opcode;
	__u32 uflags;                  /* U_FIXED_SLOT */
	__u32 strs;                    /* bit i: a[i] names s[a[i] - 1] */
	char s[2][PATH_BUF];
	char name[EXTRA_MAX];          /* setxattr: the attribute's name */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, URING_OPS);
	__type(key, __u64);            /* the request (struct io_kiocb *) */
	__type(value, struct uring_op);
} uring_ops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct uring_op);
} uring_heap SEC(".maps");

/* the event type an opcode may produce (unlinkat: unlink, decided at completion from its flags) */
static __always_inline __u32 uring_type(__u32 op)
{
	switch (op) {
	case IORING_OP_OPENAT:
	case IORING_OP_OPENAT2:
	case IORING_OP_FTRUNCATE:
		return EV_OPEN;
	case IORING_OP_RENAMEAT:
		return EV_RENAME;
	case IORING_OP_UNLINKAT:
		return EV_UNLINK;
	case IORING_OP_MKDIRAT:
		return EV_MKDIR;
	case IORING_OP_LINKAT:
		return EV_LINK;
	case IORING_OP_SYMLINKAT:
		return EV_SYMLINK;
	case IORING_OP_FSETXATTR:
	case IORING_OP_SETXATTR:
		return EV_SETXATTR;
	}
	return 0;
}

static __always_inline int type_enabled(__u32 type)
{
	__u32 *v = bpf_map_lookup_elem(&enabled, &type);
	return v && (*v & ENABLED);
}

static __always_inline void uring_str(struct uring_op *u, int i, int slot, struct filename *fn)
{
	const char *name = BPF_CORE_READ(fn, name);
	if (!name || bpf_probe_read_kernel_str(u->s[slot & 1], PATH_BUF, name) <= 0)
		return; /* (a[i] stays 0: the walk reports an unreadable path) */
	u->a[i & 7] = slot + 1;
	u->strs |= 1u << i;
}

#define IORING_SETUP_SQPOLL_BIT (1u << 1)

/* A ring with a SQPOLL thread: that kernel thread (`iou-sqp-<pid>`, a thread of the process that made the ring)
 * submits whatever any process sharing the ring's memory wrote there, so the submitter cannot be known; the request
 * is the ring owner's: its process (the main thread's tid and name: the kernel keeps no pointer to the thread that
 * made the ring) and the credentials the ring runs with, HF_SQPOLL saying so. */
static __always_inline void sqpoll_owner(struct rec_header *h, struct io_kiocb *req)
{
	struct io_ring_ctx *ctx = req->ctx;
	if (!(ctx->flags & IORING_SETUP_SQPOLL_BIT))
		return;
	struct task_struct *leader = bpf_get_current_task_btf()->group_leader;
	h->tid = leader->pid;
	h->flags |= HF_SQPOLL;
	bpf_probe_read_kernel_str(h->comm, sizeof(h->comm), leader->comm);
	const struct cred *c = ctx->sq_creds;
	if (c) {
		h->uid = c->uid.val;
		h->gid = c->gid.val;
	}
}

SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(uring_submit, struct io_kiocb *req)
{
	__u32 op = req->opcode;
	__u32 type = uring_type(op);
	if (!type || !(type_enabled(type) || (op == IORING_OP_UNLINKAT && type_enabled(EV_RMDIR))))
		return 0;
	struct uring_op *u = bpf_map_lookup_elem(&uring_heap, &zero);
	if (!u)
		return 0;
	fill_header(&u->h, REC_FILE, type);
	if (bpf_get_current_task_btf()->flags & PF_IO_WORKER_BIT) /* (the SQPOLL thread: io-wq workers submit nothing) */
		sqpoll_owner(&u->h, req);
	u->opcode = op;
	u->uflags = 0;
	u->strs = 0;
	__builtin_memset(u->a, 0, sizeof(u->a));
	u->name[0] = 0;
	void *cmd = (void *)&req->cmd;
	switch (op) {
	case IORING_OP_OPENAT:
	case IORING_OP_OPENAT2: {
		struct io_open *o = bpf_rdonly_cast(cmd, bpf_core_type_id_kernel(struct io_open));
		u->nr = NR_openat;
		u->a[0] = (__u64)(__s64)o->dfd;
		uring_str(u, 1, 0, o->filename);
		u->a[2] = o->how.flags;
		u->a[3] = o->how.mode;
		if (o->file_slot)
			u->uflags |= U_FIXED_SLOT;
		break;
	}
	case IORING_OP_UNLINKAT: {
		struct io_unlink *o = bpf_rdonly_cast(cmd, bpf_core_type_id_kernel(struct io_unlink));
		u->nr = NR_unlinkat;
		u->a[0] = (__u64)(__s64)o->dfd;
		uring_str(u, 1, 0, o->filename);
		u->a[2] = o->flags;
		break;
	}
	case IORING_OP_MKDIRAT: {
		struct io_mkdir *o = bpf_rdonly_cast(cmd, bpf_core_type_id_kernel(struct io_mkdir));
		u->nr = NR_mkdirat;
		u->a[0] = (__u64)(__s64)o->dfd;
		uring_str(u, 1, 0, o->filename);
		u->a[2] = o->mode;
		break;
	}
	case IORING_OP_RENAMEAT:
	case IORING_OP_LINKAT: {
		/* (the same layout: io_rename and io_link) */
		struct io_rename *o = bpf_rdonly_cast(cmd, bpf_core_type_id_kernel(struct io_rename));
		u->nr = op == IORING_OP_RENAMEAT ? NR_renameat2 : NR_linkat;
		u->a[0] = (__u64)(__s64)o->old_dfd;
		uring_str(u, 1, 0, o->oldpath);
		u->a[2] = (__u64)(__s64)o->new_dfd;
		uring_str(u, 3, 1, o->newpath);
		u->a[4] = o->flags;
		break;
	}
	case IORING_OP_SYMLINKAT: {
		/* (io_link: oldpath is the target, newpath the link, made in new_dfd) */
		struct io_link *o = bpf_rdonly_cast(cmd, bpf_core_type_id_kernel(struct io_link));
		u->nr = NR_symlinkat;
		uring_str(u, 0, 0, o->oldpath);
		u->a[1] = (__u64)(__s64)o->new_dfd;
		uring_str(u, 2, 1, o->newpath);
		break;
	}
	case IORING_OP_FTRUNCATE:
		u->nr = NR_ftruncate; /* (the file: the request's, at completion) */
		u->a[0] = (__u64)(__s64)req->cqe.fd;
		break;
	case IORING_OP_SETXATTR:
	case IORING_OP_FSETXATTR: {
		struct io_xattr *o = bpf_rdonly_cast(cmd, bpf_core_type_id_kernel(struct io_xattr));
		u->nr = op == IORING_OP_SETXATTR ? NR_setxattr : NR_fsetxattr;
		if (op == IORING_OP_SETXATTR)
			uring_str(u, 0, 0, o->filename);
		else
			u->a[0] = (__u64)(__s64)req->cqe.fd;
		bpf_probe_read_kernel_str(u->name, EXTRA_MAX, o->ctx.kname);
		u->a[1] = 3; /* (the name) */
		u->strs |= 1u << 1;
		u->a[4] = o->ctx.flags;
		break;
	}
	default:
		return 0;
	}
	__u64 key = (__u64)req;
	bpf_map_update_elem(&uring_ops, &key, u, BPF_ANY);
	return 0;
}

/* A completion whose submission was not seen (submitted before the hook was attached, or its entry evicted):
 * the request's numbers are still there, its strings are not (the kernel freed its copies); the event says so
 * (FI_NOT_CAPTURED) and an open is still resolved from the fd it returned. */
static __always_inline __u32 uring_not_captured(struct work *w, void *req)
{
	struct io_kiocb *rq = bpf_rdonly_cast(req, bpf_core_type_id_kernel(struct io_kiocb));
	__u32 op = rq->opcode;
	__u32 type = uring_type(op);
	if (!type)
		return 0;
	void *cmd = (void *)&rq->cmd;
	__builtin_memset(w->sc.a, 0, sizeof(w->sc.a));
	w->sc.raw_nr = op;
	w->sc.variant = 0;
	w->sc.hflags = HF_IO_URING;
	w->sc.kstr = 1;
	w->sc.uflags = U_NOT_CAPTURED;
	w->sc.file = 0;
	w->sc.counted = 0;
	switch (op) {
	case IORING_OP_OPENAT:
	case IORING_OP_OPENAT2: {
		struct io_open *o = bpf_rdonly_cast(cmd, bpf_core_type_id_kernel(struct io_open));
		w->sc.nr = NR_openat;
		w->sc.a[0] = AT_FDCWD;
		w->sc.a[2] = o->how.flags;
		w->sc.a[3] = o->how.mode;
		if (o->file_slot)
			w->sc.uflags |= U_FIXED_SLOT;
		break;
	}
	case IORING_OP_UNLINKAT: {
		struct io_unlink *o = bpf_rdonly_cast(cmd, bpf_core_type_id_kernel(struct io_unlink));
		w->sc.nr = NR_unlinkat;
		w->sc.a[2] = o->flags;
		type = (o->flags & AT_REMOVEDIR) ? EV_RMDIR : EV_UNLINK;
		break;
	}
	case IORING_OP_MKDIRAT:
		w->sc.nr = NR_mkdirat;
		break;
	case IORING_OP_RENAMEAT:
		w->sc.nr = NR_renameat2;
		break;
	case IORING_OP_LINKAT:
		w->sc.nr = NR_linkat;
		break;
	case IORING_OP_SYMLINKAT:
		w->sc.nr = NR_symlinkat;
		break;
	case IORING_OP_FSETXATTR:
		w->sc.nr = NR_fsetxattr;
		w->sc.file = (__u64)rq->file;
		break;
	case IORING_OP_FTRUNCATE:
		w->sc.nr = NR_ftruncate;
		w->sc.file = (__u64)rq->file;
		break;
	default:
		w->sc.nr = NR_setxattr;
	}
	return type;
}

/* the walk state's syscall from the operation captured at submission; its event type */
static __always_inline __u32 uring_captured(struct work *w, struct uring_op *u, void *req)
{
	__builtin_memcpy(&w->uring_h, &u->h, sizeof(struct rec_header));
	w->sc.nr = u->nr;
	w->sc.raw_nr = u->opcode;
	w->sc.variant = 0;
	w->sc.hflags = HF_IO_URING;
	w->sc.kstr = 1;
	w->sc.uflags = u->uflags | U_SAVED_HEADER;
	w->sc.counted = 0;
	w->sc.file = u->opcode == IORING_OP_FSETXATTR || u->opcode == IORING_OP_FTRUNCATE
			     ? (__u64)BPF_CORE_READ((struct io_kiocb *)req, file) : 0;
	for (int i = 0; i < 6; i++) {
		__u64 v = u->a[i];
		if (u->strs & (1u << i))
			v = v == 1 ? (__u64)u->s[0] : v == 2 ? (__u64)u->s[1] : v == 3 ? (__u64)u->name : 0;
		w->sc.a[i] = v;
	}
	if (u->nr == NR_unlinkat)
		return (u->a[2] & AT_REMOVEDIR) ? EV_RMDIR : EV_UNLINK;
	return uring_type(u->opcode);
}

SEC("tp_btf/io_uring_complete")
int BPF_PROG(uring_complete, struct io_ring_ctx *ring, void *req, struct io_uring_cqe *cqe)
{
	__u64 key = (__u64)req;
	struct uring_op *u = bpf_map_lookup_elem(&uring_ops, &key);
	struct work *w = get_work();
	if (!w)
		return 0;
	__s64 res = BPF_CORE_READ(cqe, res);
	w->act.n = 0; /* (the strings are the kernel's own copies: nothing to compare) */
	w->sc.type = u ? uring_captured(w, u, req) : uring_not_captured(w, req);
	/* (one call site per handler: the verifier walks a subprogram once per call site; and the type read back from
	 * the map, unknown to it: a known constant would have it walk the handlers once per event type) */
	__u32 type = w->sc.type;
	if (type && type_enabled(type)) {
		if (type == EV_UNLINK || type == EV_RMDIR || type == EV_RENAME)
			removal_exit(w, w->sc.nr, res, type);
		else
			handle_file_exit(res, type);
	}
	bpf_map_delete_elem(&uring_ops, &key); /* (whether there was one: `u` dead here, both paths are one state) */
	return 0;
}

/* ------------------------------------------------------------------ process life cycle */

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct work *w = get_work();
	struct rec_buf *r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!w || !r)
		return 0;
	count(EV_EXEC, CNT_SEEN);
	dd_forget(BPF_CORE_READ(p, pid));
	dd_forget(old_pid);
	__u32 pid = BPF_CORE_READ(p, tgid);
	bpf_map_delete_elem(&discarder_pids, &pid);
	struct file *bf = BPF_CORE_READ(bprm, file);
	const char *fname = BPF_CORE_READ(bprm, filename);
	if (fname != BPF_CORE_READ(bprm, interp)) {
		/* a script (or binfmt_misc): bprm->file is the interpreter, the name is the script's; fexecve and
		 * execveat(dirfd, ...) name it /dev/fd/N[/rest] (the fd is still open: a script's cannot be
		 * close-on-exec) */
		int fd = proc_fd_number(w, fname, 1);
		__u32 rest = w->scan;
		if (fd >= 0 && !w->extra_spill[rest & 63])
			resolve_file(0, fd_file(fd));
		else if (fd >= 0 ? walk_any(0, fd, fname + (rest & 63) + 1, 1, 1) : walk_any(0, AT_FDCWD, fname, 1, 1))
			finish_slot(0);
		resolve_file(1, bf);
	} else {
		resolve_file(0, bf);
		clear_slot(w, 1);
	}
	struct rec_header *h = (struct rec_header *)r->b;
	struct exec_body *b = (struct exec_body *)(r->b + sizeof(*h));
	fill_header(h, REC_EXEC, EV_EXEC);
	__builtin_memcpy(&b->file, &w->fi[0], sizeof(struct file_info));
	__builtin_memcpy(&b->interpreter, &w->fi[1], sizeof(struct file_info));
	read_creds(p, &b->creds);
	__u32 tid = BPF_CORE_READ(p, pid);
	bpf_map_update_elem(&cred_cache, &tid, &b->creds, BPF_ANY);
	b->start_time = BPF_CORE_READ(p, start_boottime);
	read_cgroup_name(p, b->cgroup);
	read_tty_name(p, b->tty);
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	__u64 as = BPF_CORE_READ(mm, arg_start), ae = BPF_CORE_READ(mm, arg_end);
	__u64 es = BPF_CORE_READ(mm, env_start), ee = BPF_CORE_READ(mm, env_end);
	__u32 at = ae > as ? ae - as : 0;
	__u32 et = ee > es ? ee - es : 0;
	b->argv_total = at;
	b->envp_total = et;
	__u32 an = at > ARGV_MAX - 1 ? ARGV_MAX - 1 : at;
	__u32 en = et > ENVP_MAX - 1 ? ENVP_MAX - 1 : et;
	if (an < at)
		h->flags |= HF_ARGV_TRUNCATED;
	if (en < et)
		h->flags |= HF_ENVP_TRUNCATED;
	__u32 pos = sizeof(*h) + sizeof(*b);
	__u32 l0 = w->splen[0] & PMASK;
	b->file.path_len = l0;
	if (l0)
		bpf_probe_read_kernel(&r->b[BOUND(pos, 16383)], BOUND(l0, 4095), w->sp[0]);
	pos += l0;
	__u32 l1 = w->splen[1] & PMASK;
	b->interpreter.path_len = l1;
	if (l1)
		bpf_probe_read_kernel(&r->b[BOUND(pos, 16383)], BOUND(l1, 4095), w->sp[1]);
	pos += l1;
	if (an && bpf_probe_read_user(&r->b[BOUND(pos, 16383)], BOUND(an, 2047), (void *)as))
		an = 0;
	b->argv_len = an;
	pos += an;
	if (en && bpf_probe_read_user(&r->b[BOUND(pos, 16383)], BOUND(en, 2047), (void *)es))
		en = 0;
	b->envp_len = en;
	pos += en;
	return output(r->b, pos, EV_EXEC);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_fork, struct task_struct *parent, struct task_struct *child)
{
	struct rec_buf *r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!r)
		return 0;
	struct rec_header *h = (struct rec_header *)r->b;
	struct fork_body *b = (struct fork_body *)(r->b + sizeof(*h));
	__u32 ctid = BPF_CORE_READ(child, pid);
	/* a new mount namespace (CLONE_NEWNS) gives every mount a copy under a new id: one may be a freed id that
	 * inode discarders still name */
	if (BPF_CORE_READ(child, nsproxy, mnt_ns) != BPF_CORE_READ(parent, nsproxy, mnt_ns))
		bump_generation();
	read_creds(child, &b->creds);
	bpf_map_update_elem(&cred_cache, &ctid, &b->creds, BPF_ANY);
	if (ctid != BPF_CORE_READ(child, tgid))
		return 0; /* a new thread, not a new process */
	count(EV_FORK, CNT_SEEN);
	fill_header(h, REC_FORK, EV_FORK);
	b->child_pid = BPF_CORE_READ(child, tgid);
	b->child_tid = BPF_CORE_READ(child, pid);
	b->start_time = BPF_CORE_READ(child, start_boottime);
	b->child_cgroup_id = h->cgroup_id;
	read_cgroup_name(parent, b->cgroup);
	read_tty_name(parent, b->tty);
	return output(r->b, sizeof(*h) + sizeof(*b), EV_FORK);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_exit, struct task_struct *p, bool group_dead)
{
	__u32 tid = BPF_CORE_READ(p, pid);
	bpf_map_delete_elem(&inflight, &tid);
	bpf_map_delete_elem(&cred_cache, &tid);
	/* A call the thread did not return from (killed in it): its per-call state must not reach the next thread
	 * given this tid (an i386 chown passes no sys_enter hook that would clear it). */
	bpf_map_delete_elem(&acted, &tid);
	bpf_map_delete_elem(&owner_before, &tid);
	bpf_map_delete_elem(&owner_locked, &tid);
	dd_forget(tid);
	if (!group_dead)
		return 0;
	struct rec_buf *r = bpf_map_lookup_elem(&rec_heap, &zero);
	if (!r)
		return 0;
	count(EV_EXIT, CNT_SEEN);
	__u32 pid = BPF_CORE_READ(p, tgid);
	bpf_map_delete_elem(&discarder_pids, &pid);
	struct rec_header *h = (struct rec_header *)r->b;
	struct exit_body *b = (struct exit_body *)(r->b + sizeof(*h));
	fill_header(h, REC_EXIT, EV_EXIT);
	b->exit_code = BPF_CORE_READ(p, exit_code);
	b->pad = 0;
	return output(r->b, sizeof(*h) + sizeof(*b), EV_EXIT);
}
