"""Names of kernel constants as they appear in CWS events and SECL rules.

Shared by the resolvers (numbers from the kernel → names in events) and the rule engine (names and
constants in rules → numbers). Values are Linux x86_64 ABI values.
"""

from __future__ import annotations

from functools import lru_cache

CAPABILITIES: dict[str, int] = {
    name: bit
    for bit, name in enumerate(
        [
            "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
            "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
            "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
            "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
            "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
            "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
            "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
            "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
            "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
        ]
    )
}  # fmt: skip

# Open flags other than the access mode (O_RDONLY=0, O_WRONLY=1, O_RDWR=2).
OPEN_FLAGS: dict[str, int] = {
    "O_WRONLY": 0o1,
    "O_RDWR": 0o2,
    "O_CREAT": 0o100,
    "O_EXCL": 0o200,
    "O_NOCTTY": 0o400,
    "O_TRUNC": 0o1000,
    "O_APPEND": 0o2000,
    "O_NONBLOCK": 0o4000,
    "O_DSYNC": 0o10000,
    "O_ASYNC": 0o20000,
    "O_DIRECT": 0o40000,
    "O_LARGEFILE": 0o100000,
    "O_DIRECTORY": 0o200000,
    "O_NOFOLLOW": 0o400000,
    "O_NOATIME": 0o1000000,
    "O_CLOEXEC": 0o2000000,
    "O_SYNC": 0o4010000,
    "O_PATH": 0o10000000,
    "O_TMPFILE": 0o20200000,
}
O_ACCMODE = 0o3
AT_REMOVEDIR = 0x200


def _names_of(mask: int, table: dict[str, int]) -> list[str]:
    names = []
    rest = mask
    for name, value in table.items():
        if value and mask & value == value:
            names.append(name)
            rest &= ~value
    names.sort()
    if rest:
        names.append(str(rest))
    return names


@lru_cache(maxsize=1024)
def capability_names(mask: int) -> tuple[str, ...]:
    """Capability bitmask → sorted names; unknown bits as their decimal value."""
    return tuple(_names_of(mask, {n: 1 << b for n, b in CAPABILITIES.items()}))


def capability_mask(names: list[str] | tuple[str, ...]) -> int:
    """Capability names → bitmask (the inverse of `capability_names`)."""
    mask = 0
    for n in names:
        mask |= 1 << CAPABILITIES[n] if n in CAPABILITIES else int(n)
    return mask


_OPEN_FLAG_BITS = {n: v for n, v in OPEN_FLAGS.items() if n not in ("O_WRONLY", "O_RDWR")}


@lru_cache(maxsize=1024)
def open_flag_names(flags: int) -> tuple[str, ...]:
    """open(2) flags → sorted names; access mode 0 gives O_RDONLY; unknown bits as a decimal string."""
    acc = flags & O_ACCMODE
    names = _names_of(flags & ~O_ACCMODE, _OPEN_FLAG_BITS)
    tail = [names.pop()] if names and names[-1].isdigit() else []
    if acc == 3:
        tail = [str(int(tail[0]) | 3 if tail else 3)]
    else:
        names.append(("O_RDONLY", "O_WRONLY", "O_RDWR")[acc])
    return tuple(sorted(names) + tail)


def open_flag_bits(names: list[str] | tuple[str, ...]) -> int:
    """Open flag names → bits (the inverse of `open_flag_names`; O_RDONLY is 0)."""
    bits = 0
    for n in names:
        bits |= 0 if n == "O_RDONLY" else OPEN_FLAGS[n] if n in OPEN_FLAGS else int(n)
    return bits


# --- Constants the rule language and the probe's resolvers share (uapi/linux/bpf.h, stat.h, errno) ---


def _enum(names: str, start: int = 0) -> dict[str, int]:
    return {n: i for i, n in enumerate(names.split(), start) if n != "-"}


BPF_COMMANDS: dict[str, int] = _enum(
    """BPF_MAP_CREATE BPF_MAP_LOOKUP_ELEM BPF_MAP_UPDATE_ELEM BPF_MAP_DELETE_ELEM BPF_MAP_GET_NEXT_KEY
    BPF_PROG_LOAD BPF_OBJ_PIN BPF_OBJ_GET BPF_PROG_ATTACH BPF_PROG_DETACH BPF_PROG_TEST_RUN
    BPF_PROG_GET_NEXT_ID BPF_MAP_GET_NEXT_ID BPF_PROG_GET_FD_BY_ID BPF_MAP_GET_FD_BY_ID
    BPF_OBJ_GET_INFO_BY_FD BPF_PROG_QUERY BPF_RAW_TRACEPOINT_OPEN BPF_BTF_LOAD BPF_BTF_GET_FD_BY_ID
    BPF_TASK_FD_QUERY BPF_MAP_LOOKUP_AND_DELETE_ELEM BPF_MAP_FREEZE BPF_BTF_GET_NEXT_ID
    BPF_MAP_LOOKUP_BATCH BPF_MAP_LOOKUP_AND_DELETE_BATCH BPF_MAP_UPDATE_BATCH BPF_MAP_DELETE_BATCH
    BPF_LINK_CREATE BPF_LINK_UPDATE BPF_LINK_GET_FD_BY_ID BPF_LINK_GET_NEXT_ID BPF_ENABLE_STATS
    BPF_ITER_CREATE BPF_LINK_DETACH BPF_PROG_BIND_MAP BPF_TOKEN_CREATE"""
)

BPF_MAP_TYPES: dict[str, int] = {
    "BPF_MAP_TYPE_" + n: v
    for n, v in _enum(
        """UNSPEC HASH ARRAY PROG_ARRAY PERF_EVENT_ARRAY PERCPU_HASH PERCPU_ARRAY STACK_TRACE
        CGROUP_ARRAY LRU_HASH LRU_PERCPU_HASH LPM_TRIE ARRAY_OF_MAPS HASH_OF_MAPS DEVMAP SOCKMAP CPUMAP
        XSKMAP SOCKHASH CGROUP_STORAGE REUSEPORT_SOCKARRAY PERCPU_CGROUP_STORAGE QUEUE STACK SK_STORAGE
        DEVMAP_HASH STRUCT_OPS RINGBUF INODE_STORAGE TASK_STORAGE BLOOM_FILTER USER_RINGBUF CGRP_STORAGE
        ARENA"""
    ).items()
}

BPF_PROGRAM_TYPES: dict[str, int] = {
    "BPF_PROG_TYPE_" + n: v
    for n, v in _enum(
        """UNSPEC SOCKET_FILTER KPROBE SCHED_CLS SCHED_ACT TRACEPOINT XDP PERF_EVENT CGROUP_SKB
        CGROUP_SOCK LWT_IN LWT_OUT LWT_XMIT SOCK_OPS SK_SKB CGROUP_DEVICE SK_MSG RAW_TRACEPOINT
        CGROUP_SOCK_ADDR LWT_SEG6LOCAL LIRC_MODE2 SK_REUSEPORT FLOW_DISSECTOR CGROUP_SYSCTL
        RAW_TRACEPOINT_WRITABLE CGROUP_SOCKOPT TRACING STRUCT_OPS EXT LSM SK_LOOKUP SYSCALL NETFILTER"""
    ).items()
}

BPF_ATTACH_TYPES: dict[str, int] = {
    "BPF_" + n: v
    for n, v in _enum(
        """CGROUP_INET_INGRESS CGROUP_INET_EGRESS CGROUP_INET_SOCK_CREATE CGROUP_SOCK_OPS
        SK_SKB_STREAM_PARSER SK_SKB_STREAM_VERDICT CGROUP_DEVICE SK_MSG_VERDICT CGROUP_INET4_BIND
        CGROUP_INET6_BIND CGROUP_INET4_CONNECT CGROUP_INET6_CONNECT CGROUP_INET4_POST_BIND
        CGROUP_INET6_POST_BIND CGROUP_UDP4_SENDMSG CGROUP_UDP6_SENDMSG LIRC_MODE2 FLOW_DISSECTOR
        CGROUP_SYSCTL CGROUP_UDP4_RECVMSG CGROUP_UDP6_RECVMSG CGROUP_GETSOCKOPT CGROUP_SETSOCKOPT
        TRACE_RAW_TP TRACE_FENTRY TRACE_FEXIT MODIFY_RETURN LSM_MAC TRACE_ITER CGROUP_INET4_GETPEERNAME
        CGROUP_INET6_GETPEERNAME CGROUP_INET4_GETSOCKNAME CGROUP_INET6_GETSOCKNAME XDP_DEVMAP
        CGROUP_INET_SOCK_RELEASE XDP_CPUMAP SK_LOOKUP XDP SK_SKB_VERDICT SK_REUSEPORT_SELECT
        SK_REUSEPORT_SELECT_OR_MIGRATE PERF_EVENT TRACE_KPROBE_MULTI LSM_CGROUP STRUCT_OPS NETFILTER
        TCX_INGRESS TCX_EGRESS TRACE_UPROBE_MULTI"""
    ).items()
}

# bpf_func_id: helper names by id, spelled as Datadog writes them in events and rules: the kernel's
# `BPF_FUNC_map_lookup_elem` upper-cased without `FUNC_` (`BPF_MAP_LOOKUP_ELEM`; index 0 is BPF_UNSPEC). Three
# share their name and value with commands (BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM).
BPF_HELPERS: dict[str, int] = {
    "BPF_" + n.upper(): v
    for n, v in _enum(
        """unspec map_lookup_elem map_update_elem map_delete_elem probe_read ktime_get_ns trace_printk
        get_prandom_u32 get_smp_processor_id skb_store_bytes l3_csum_replace l4_csum_replace tail_call
        clone_redirect get_current_pid_tgid get_current_uid_gid get_current_comm get_cgroup_classid
        skb_vlan_push skb_vlan_pop skb_get_tunnel_key skb_set_tunnel_key perf_event_read redirect
        get_route_realm perf_event_output skb_load_bytes get_stackid csum_diff skb_get_tunnel_opt
        skb_set_tunnel_opt skb_change_proto skb_change_type skb_under_cgroup get_hash_recalc
        get_current_task probe_write_user current_task_under_cgroup skb_change_tail skb_pull_data
        csum_update set_hash_invalid get_numa_node_id skb_change_head xdp_adjust_head probe_read_str
        get_socket_cookie get_socket_uid set_hash setsockopt skb_adjust_room redirect_map
        sk_redirect_map sock_map_update xdp_adjust_meta perf_event_read_value perf_prog_read_value
        getsockopt override_return sock_ops_cb_flags_set msg_redirect_map msg_apply_bytes
        msg_cork_bytes msg_pull_data bind xdp_adjust_tail skb_get_xfrm_state get_stack
        skb_load_bytes_relative fib_lookup sock_hash_update msg_redirect_hash sk_redirect_hash
        lwt_push_encap lwt_seg6_store_bytes lwt_seg6_adjust_srh lwt_seg6_action rc_repeat rc_keydown
        skb_cgroup_id get_current_cgroup_id get_local_storage sk_select_reuseport
        skb_ancestor_cgroup_id sk_lookup_tcp sk_lookup_udp sk_release map_push_elem map_pop_elem
        map_peek_elem msg_push_data msg_pop_data rc_pointer_rel spin_lock spin_unlock sk_fullsock
        tcp_sock skb_ecn_set_ce get_listener_sock skc_lookup_tcp tcp_check_syncookie sysctl_get_name
        sysctl_get_current_value sysctl_get_new_value sysctl_set_new_value strtol strtoul
        sk_storage_get sk_storage_delete send_signal tcp_gen_syncookie skb_output probe_read_user
        probe_read_kernel probe_read_user_str probe_read_kernel_str tcp_send_ack send_signal_thread
        jiffies64 read_branch_records get_ns_current_pid_tgid xdp_output get_netns_cookie
        get_current_ancestor_cgroup_id sk_assign ktime_get_boot_ns seq_printf seq_write sk_cgroup_id
        sk_ancestor_cgroup_id ringbuf_output ringbuf_reserve ringbuf_submit ringbuf_discard
        ringbuf_query csum_level skc_to_tcp6_sock skc_to_tcp_sock skc_to_tcp_timewait_sock
        skc_to_tcp_request_sock skc_to_udp6_sock get_task_stack load_hdr_opt store_hdr_opt
        reserve_hdr_opt inode_storage_get inode_storage_delete d_path copy_from_user snprintf_btf
        seq_printf_btf skb_cgroup_classid redirect_neigh per_cpu_ptr this_cpu_ptr redirect_peer
        task_storage_get task_storage_delete get_current_task_btf bprm_opts_set ktime_get_coarse_ns
        ima_inode_hash sock_from_file check_mtu for_each_map_elem snprintf sys_bpf
        btf_find_by_name_kind sys_close timer_init timer_set_callback timer_start timer_cancel
        get_func_ip get_attach_cookie task_pt_regs get_branch_snapshot trace_vprintk skc_to_unix_sock
        kallsyms_lookup_name find_vma loop strncmp get_func_arg get_func_ret get_func_arg_cnt
        get_retval set_retval xdp_get_buff_len xdp_load_bytes xdp_store_bytes copy_from_user_task
        skb_set_tstamp ima_file_hash kptr_xchg map_lookup_percpu_elem skc_to_mptcp_sock
        dynptr_from_mem ringbuf_reserve_dynptr ringbuf_submit_dynptr ringbuf_discard_dynptr
        dynptr_read dynptr_write dynptr_data tcp_raw_gen_syncookie_ipv4 tcp_raw_gen_syncookie_ipv6
        tcp_raw_check_syncookie_ipv4 tcp_raw_check_syncookie_ipv6 ktime_get_tai_ns user_ringbuf_drain
        cgrp_storage_get cgrp_storage_delete"""
    ).items()
}

# The kernel's own spelling (`BPF_FUNC_map_lookup_elem`), still read in events.
BPF_HELPERS_KERNEL: dict[str, int] = {"BPF_FUNC_" + n[4:].lower(): v for n, v in BPF_HELPERS.items()}
BPF_HELPERS_READ: dict[str, int] = {**BPF_HELPERS_KERNEL, **BPF_HELPERS}


def bpf_helper_name(name: str) -> str:
    """Datadog's spelling of a helper name given in the kernel's (`BPF_FUNC_probe_read` → `BPF_PROBE_READ`)."""
    return "BPF_" + name[len("BPF_FUNC_") :].upper() if name.startswith("BPF_FUNC_") else name


# errno values (asm-generic/errno-base.h and errno.h), positive as in C; SECL's constants are their negation.
ERRNO: dict[str, int] = _enum(
    """EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES EFAULT ENOTBLK
    EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ETXTBSY EFBIG ENOSPC ESPIPE
    EROFS EMLINK EPIPE EDOM ERANGE EDEADLK ENAMETOOLONG ENOLCK ENOSYS ENOTEMPTY ELOOP - ENOMSG EIDRM
    ECHRNG EL2NSYNC EL3HLT EL3RST ELNRNG EUNATCH ENOCSI EL2HLT EBADE EBADR EXFULL ENOANO EBADRQC EBADSLT
    - EBFONT ENOSTR ENODATA ETIME ENOSR ENONET ENOPKG EREMOTE ENOLINK EADV ESRMNT ECOMM EPROTO EMULTIHOP
    EDOTDOT EBADMSG EOVERFLOW ENOTUNIQ EBADFD EREMCHG ELIBACC ELIBBAD ELIBSCN ELIBMAX ELIBEXEC EILSEQ
    ERESTART ESTRPIPE EUSERS ENOTSOCK EDESTADDRREQ EMSGSIZE EPROTOTYPE ENOPROTOOPT EPROTONOSUPPORT
    ESOCKTNOSUPPORT EOPNOTSUPP EPFNOSUPPORT EAFNOSUPPORT EADDRINUSE EADDRNOTAVAIL ENETDOWN ENETUNREACH
    ENETRESET ECONNABORTED ECONNRESET ENOBUFS EISCONN ENOTCONN ESHUTDOWN ETOOMANYREFS ETIMEDOUT
    ECONNREFUSED EHOSTDOWN EHOSTUNREACH EALREADY EINPROGRESS ESTALE EUCLEAN ENOTNAM ENAVAIL EISNAM
    EREMOTEIO EDQUOT ENOMEDIUM EMEDIUMTYPE ECANCELED ENOKEY EKEYEXPIRED EKEYREVOKED EKEYREJECTED
    EOWNERDEAD ENOTRECOVERABLE ERFKILL EHWPOISON""",
    start=1,
)
ERRNO["EWOULDBLOCK"] = ERRNO["EAGAIN"]

# Inode mode bits (sys/stat.h).
FILE_MODES: dict[str, int] = {
    "S_IFMT": 0o170000, "S_IFSOCK": 0o140000, "S_IFLNK": 0o120000, "S_IFREG": 0o100000,
    "S_IFBLK": 0o060000, "S_IFDIR": 0o040000, "S_IFCHR": 0o020000, "S_IFIFO": 0o010000,
    "S_ISUID": 0o4000, "S_ISGID": 0o2000, "S_ISVTX": 0o1000,
    "S_IRWXU": 0o700, "S_IRUSR": 0o400, "S_IWUSR": 0o200, "S_IXUSR": 0o100,
    "S_IRWXG": 0o070, "S_IRGRP": 0o040, "S_IWGRP": 0o020, "S_IXGRP": 0o010,
    "S_IRWXO": 0o007, "S_IROTH": 0o004, "S_IWOTH": 0o002, "S_IXOTH": 0o001,
}  # fmt: skip

UNLINK_FLAGS: dict[str, int] = {"AT_REMOVEDIR": AT_REMOVEDIR}


def unlink_flag_bits(names: list[str] | tuple[str, ...]) -> int:
    """unlink flag names (`AT_REMOVEDIR`) → bits; unknown bits given as a decimal string."""
    bits = 0
    for n in names:
        bits |= UNLINK_FLAGS[n] if n in UNLINK_FLAGS else int(n)
    return bits


def name_value(table: dict[str, int], name: str | None) -> int:
    """A kernel constant name (as in events) → its number; decimal strings as is; -1 if absent."""
    if not name:
        return -1
    value = table.get(name)
    if value is not None:
        return value
    try:
        return int(name, 0)
    except ValueError:
        return -1


_REVERSE: dict[int, dict[int, str]] = {}


def value_name(table: dict[str, int], value: int) -> str:
    """A number → its constant name in `table` (e.g. `BPF_COMMANDS`, `BPF_HELPERS`, `ERRNO`); unknown values
    as their decimal string. The first name wins where several share a value (`EAGAIN`, not `EWOULDBLOCK`)."""
    rev = _REVERSE.get(id(table))
    if rev is None:
        rev = {}
        for name, v in table.items():
            rev.setdefault(v, name)
        _REVERSE[id(table)] = rev
    return rev.get(value, str(value))
