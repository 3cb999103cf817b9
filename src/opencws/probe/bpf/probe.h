/* Record layouts shared by the BPF programs and the Python decoders (opencws/probe/records.py).
 * Every struct is laid out without implicit padding; the Python side mirrors them with struct.Struct.
 * Changing a layout here means changing records.py and bumping RECORD_VERSION in both places. */
#ifndef OPENCWS_PROBE_H
#define OPENCWS_PROBE_H

#define RECORD_VERSION 2

enum event_type {
	EV_NONE = 0,
	EV_EXEC = 1,
	EV_FORK = 2,
	EV_EXIT = 3,
	EV_OPEN = 4,
	EV_CHMOD = 5,
	EV_CHOWN = 6,
	EV_LINK = 7,
	EV_RENAME = 8,
	EV_UNLINK = 9,
	EV_RMDIR = 10,
	EV_MKDIR = 11,
	EV_UTIMES = 12,
	EV_SETXATTR = 13,
	EV_REMOVEXATTR = 14,
	EV_MOUNT = 15,
	EV_UMOUNT = 16,
	EV_SELINUX = 17,
	EV_BPF = 18,
	EV_SETUID = 19,
	EV_SETGID = 20,
	EV_CAPSET = 21,
	EV_MKNOD = 22,             /* OpenCWS's additions to Datadog's event types: mknod, symlink, setgroups */
	EV_SYMLINK = 23,
	EV_SETGROUPS = 24,
	EV_MAX = 25,
};

/* counters: index = type * NR_COUNTERS + counter */
enum counter {
	CNT_SEEN = 0,
	CNT_FILTERED = 1,
	CNT_SENT = 2,
	CNT_LOST = 3,
	NR_COUNTERS = 4,
};

/* record kinds (the layout that follows the header) */
enum record_kind {
	REC_FILE = 1,
	REC_EXEC = 2,
	REC_FORK = 3,
	REC_EXIT = 4,
	REC_CRED = 5,
	REC_BPF = 6,
	REC_GROUPS = 7,
};

/* file_info.flags */
#define FI_PRESENT      (1u << 0)  /* this slot is used */
#define FI_INODE        (1u << 1)  /* inode fields are valid */
#define FI_NEGATIVE     (1u << 2)  /* the name resolved to a negative dentry (no such file) */
#define FI_INCOMPLETE   (1u << 3)  /* path = resolved prefix (resolved_len bytes) + unresolved rest of the user string */
#define FI_TRUNCATED    (1u << 4)  /* the walk to the root hit its bound or the buffer */
#define FI_UPPER_LAYER  (1u << 5)  /* overlayfs file whose upper layer exists */
#define FI_NO_USER_PATH (1u << 6)  /* the user string could not be read */
#define FI_SYMLINK      (1u << 7)  /* an intermediate symlink (or a followed final one) stopped the walk */
#define FI_NOT_CACHED   (1u << 8)  /* a component was not in the dentry cache */
#define FI_BAD_FD       (1u << 9)  /* the dirfd/fd did not name an open file */
#define FI_REMOVED      (1u << 10) /* resolved at sys_exit after the syscall removed the name: path only, no inode */
#define FI_NOT_CAPTURED (1u << 11) /* io_uring: the operation's arguments were not captured at submission */
#define FI_RAW_STRING   (1u << 12) /* the path is the string the process passed, not resolved (a symlink's target) */
#define FI_REWRITTEN    (1u << 13) /* the file at the path does not show the call's outcome: the path string was
				      rewritten during the call (another thread), the kernel acted on another file */
#define FI_OWNER_UNKNOWN (1u << 14) /* chown: the owner before the call could not be told (uid/gid are not read) */

/* header.flags */
#define HF_ARGV_TRUNCATED (1u << 0)
#define HF_ENVP_TRUNCATED (1u << 1)
#define HF_CREDS_BEFORE_UNKNOWN (1u << 2) /* cred record: no credentials cached for the task, `before` = `after` */
#define HF_IN_CHROOT (1u << 3) /* the task's root is not the top of its mount namespace: paths are from that root */
#define HF_I386 (1u << 4) /* an i386 syscall (int $0x80, a compat entry): syscall_nr is from the i386 table */
#define HF_IO_URING (1u << 5) /* an io_uring operation: syscall_nr is its opcode; the header is the submitter's */
#define HF_SQPOLL (1u << 6) /* io_uring, submitted by the ring's SQPOLL thread: the header is the ring's owner's */

/* selinux kinds, in file_event.flags_arg for EV_SELINUX */
#define SELINUX_BOOL 1
#define SELINUX_COMMIT 2
#define SELINUX_ENFORCE 3

#define PATH_BUF 4096
#define EXTRA_MAX 256
#define ARGV_MAX 2048
#define ENVP_MAX 2048

struct rec_header {            /* 64 bytes */
	__u16 kind;
	__u16 type;
	__u32 size;                /* total record size */
	__u64 ktime;               /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	__u32 pid;
	__u32 tid;
	__u64 cgroup_id;           /* cgroup v2 id (inode of the cgroup directory) */
	__u32 ppid;
	__u32 flags;
	__u32 uid;
	__u32 gid;
	char comm[16];
};

struct file_info {             /* 96 bytes */
	__u64 ino;
	__u64 atime_ns;
	__u64 mtime_ns;
	__u64 ctime_ns;
	__u32 mode;
	__u32 uid;
	__u32 gid;
	__u32 mount_id;
	__u32 dev;
	__u32 nlink;
	__u32 flags;
	__u32 group_id;            /* peer group of the mount */
	__u16 path_len;
	__u16 resolved_len;
	__u32 generation;          /* the discarder generation when the file was seen (a discarder learned from it
				      takes this one: what changed since then already invalidated it) */
	char fstype[16];
	__u32 i_generation;        /* the inode's identity beside its number (inode_identity in probe.bpf.c): drawn
				      anew for each inode born by ext4, tmpfs, xfs, btrfs; 0: none (procfs, ramfs...) */
	__u32 pad;
};

struct file_body {             /* 48 + 2 * 96 = 240 bytes; then path0, path1, extra */
	__s64 retval;
	__u32 syscall_nr;
	__u32 flags_arg;           /* open flags, AT_* flags, rename flags, mount flags, selinux kind */
	__u32 mode_arg;
	__u32 uid_arg;             /* chown: uid; mknod: the device number (the kernel's new_encode_dev) */
	__u32 gid_arg;
	__u32 extra_len;           /* xattr name, mount fs type, selinux value */
	__u64 atime_arg;           /* utimes: requested times in ns (UTIME_NOW/OMIT passed through) */
	__u64 mtime_arg;
	struct file_info f[2];
};

struct ocws_creds {                 /* 56 bytes */
	__u32 uid, gid, euid, egid, suid, sgid, fsuid, fsgid;
	__u64 cap_effective;
	__u64 cap_permitted;
	__u64 cap_inheritable;
};

#define CGROUP_NAME 128

#define TTY_NAME 64

struct exec_body {             /* 96 + 56 + 24 + 128 + 64 + 96 = 464; then path, interpreter path, argv, envp */
	struct file_info file;
	struct ocws_creds creds;
	__u32 argv_len;
	__u32 envp_len;
	__u32 argv_total;          /* bytes of argv in the process (before truncation) */
	__u32 envp_total;
	__u64 start_time;          /* task->start_boottime (ns since boot, CLOCK_BOOTTIME), as /proc/<pid>/stat */
	char cgroup[CGROUP_NAME];  /* name of the task's cgroup v2 directory (docker-<id>.scope...) */
	char tty[TTY_NAME];        /* controlling terminal (tty->name: pts0...), empty when none */
	struct file_info interpreter; /* a script's interpreter (file is then the script); else not FI_PRESENT */
};

struct fork_body {             /* 24 + 56 + 128 + 64 = 272 */
	__u32 child_pid;
	__u32 child_tid;
	__u64 start_time;
	__u64 child_cgroup_id;
	struct ocws_creds creds;
	char cgroup[CGROUP_NAME];
	char tty[TTY_NAME];
};

struct exit_body {             /* 8 */
	__u32 exit_code;           /* wait status: code << 8 | signal */
	__u32 pad;
};

struct cred_body {             /* 16 + 112 = 128 */
	__s64 retval;
	__u32 syscall_nr;
	__u32 pad;
	struct ocws_creds before;
	struct ocws_creds after;
};

#define GROUPS_MAX 64

struct groups_body {           /* 16 + 256 = 272 */
	__s64 retval;
	__u32 syscall_nr;
	__u32 ngroups;             /* the thread's supplementary groups after the call (gids: the first GROUPS_MAX) */
	__u32 gids[GROUPS_MAX];
};

#define BPF_HELPERS_INCOMPLETE (1u << 0) /* some instructions could not be read: `helpers` may miss some */

struct bpf_body {              /* 80 */
	__s64 retval;
	__u32 cmd;
	__u32 map_type;
	__u32 prog_type;
	__u32 attach_type;
	__u32 insn_cnt;
	__u32 flags;               /* BPF_HELPERS_INCOMPLETE */
	__u64 helpers[4];          /* bit n set: helper n is called */
	char name[16];
};

/* maps shared with Python */
struct inode_key {             /* an inode discarder holds for this inode only: its number on this mount, and its
				  identity (i_generation): never for another inode born on the number */
	__u64 ino;
	__u32 mount_id;
	__u32 i_generation;
};

/* a discarder of this generation survives every invalidation (the agent's own process) */
#define GENERATION_ALWAYS 0xffffffffu

struct discarder {
	__u32 generation;
	__u32 type_mask;           /* bit per event type */
};

#endif
