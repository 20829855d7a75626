// SPDX-License-Identifier: GPL-2.0
/* homelab-probe kernel side: HTTP bytes of watched TCP connections, from syscall
 * tracepoints (exit hooks only, arguments read back from the saved user registers) and
 * libssl and Go crypto/tls uprobes (plaintext of TLS connections). No kprobes, no fentry. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "probe_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* Force a reader wakeup once this many bytes wait in the ring (set by the loader). */
volatile const __u64 hl_wakeup_bytes = 256 * 1024;

/* Whether any watch can match an accepted (server) or a connected (client) socket: ports of
 * that side, or cgroups, which match both (set by the loader). Without, the open hooks of
 * that side return before resolving the socket of every accept or connect on the host. */
volatile const __u8 hl_watch_server = 1;
volatile const __u8 hl_watch_client = 1;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} hl_events SEC(".maps");

/* Local listening port -> watch id (server side). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u32);
} hl_server_ports SEC(".maps");

/* Remote port -> watch id (client side: outgoing connections of any process). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u32);
} hl_client_ports SEC(".maps");

/* cgroup v2 id -> watch id (systemd units, containers): all their TCP connections. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} hl_cgroups SEC(".maps");

/* Processes owning at least one tracked connection: the first filter of every hot hook.
 * Value: HL_TGID_* flags. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u32);
} hl_tgids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct hl_conn);
} hl_conns SEC(".maps");

/* One bit per process id (PID_MAX_LIMIT is 2^22 on 64-bit), set for every process that has
 * owned a tracked connection: the first test of the hooks that every process runs. An array
 * lookup is inlined by the verifier, where the hash lookup in hl_tgids is a helper call
 * that hashes the key. Bits are only ever set (atomically, here and by the loader through
 * mmap): a pid reused by an unwatched process then pays the hash lookup, as before. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HL_TGID_WORDS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} hl_tgid_bits SEC(".maps");

/* Thread inside SSL_read/SSL_write (or a handshake or peek, which only bind the SSL* to
 * the socket it reads): pid_tgid -> call arguments. */
struct hl_ssl_call {
	__u64 ssl;
	__u64 buf;
	__u64 len_ptr; /* SSL_*_ex: where the byte count is stored; 0 otherwise */
	__u64 bind_only; /* SSL_do_handshake, SSL_peek: no plaintext to report */
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct hl_ssl_call);
} hl_ssl_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct hl_ssl_key);
	__type(value, __s32);
} hl_ssl_fds SEC(".maps");

/* Goroutine inside crypto/tls (*Conn).Read/Write. Keyed by goroutine (the g pointer, in R14
 * under Go's register ABI), not by thread: a goroutine that blocks in Read resumes on
 * whichever thread the scheduler picks. */
struct hl_go_key {
	__u64 g;
	__u32 tgid;
	__u32 _pad;
};
struct hl_go_call {
	__u64 conn; /* *tls.Conn */
	__u64 buf;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct hl_go_key);
	__type(value, struct hl_go_call);
} hl_go_calls SEC(".maps");

/* Goroutine inside crypto/tls (*Conn).handshakeContext -> *tls.Conn. net/http runs the
 * handshake before its first Read, and the handshake's last read syscall may already carry
 * the first request: the connection must be bound (and its ciphertext dropped) there. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct hl_go_key);
	__type(value, __u64);
} hl_go_handshakes SEC(".maps");

/* Memory BIOs (asyncio, Node, anything that feeds libssl itself): no syscall happens inside
 * SSL_read/SSL_write. pid_tgid -> the fd of a watched connection not yet bound to an SSL*
 * from which this thread last read bytes starting with a TLS record header, outside any SSL
 * call: ciphertext it is about to hand to libssl. Taken (deleted) by the first SSL* bound
 * through it; dropped when a libssl user's thread next reads anything else. See
 * docs/probe.md, "TLS through memory BIOs". */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __s32);
} hl_ssl_last_read SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hl_event);
} hl_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HL_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} hl_stats SEC(".maps");

/* Clamp for the verifier: the empty asm hides the value from clang, so the comparison is
 * kept on the 64-bit register the helper receives (clang 14 otherwise folds it away). */
#define HL_CLAMP(v, max)                                                                   \
	({                                                                                 \
		__u64 __v = (v);                                                           \
		asm volatile("" : "+r"(__v));                                              \
		if (__v > (max))                                                           \
			__v = (max);                                                       \
		__v;                                                                       \
	})

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&hl_stats, &idx);
	if (v)
		*v += 1;
}

static __always_inline bool tgid_maybe_tracked(__u32 tgid)
{
	__u32 word = tgid >> 6;
	if (word >= HL_TGID_WORDS)
		return true;
	__u64 *bits = bpf_map_lookup_elem(&hl_tgid_bits, &word);
	return !bits || (*bits >> (tgid & 63)) & 1;
}

static __always_inline void tgid_mark(__u32 tgid)
{
	__u32 word = tgid >> 6;
	__u64 *bits = bpf_map_lookup_elem(&hl_tgid_bits, &word);
	if (bits && !((*bits >> (tgid & 63)) & 1))
		__sync_fetch_and_or(bits, 1ULL << (tgid & 63));
}

static __always_inline __u64 conn_key(__u32 tgid, __s32 fd)
{
	return ((__u64)tgid << 32) | (__u32)fd;
}

/* The registers saved at syscall entry: the arguments, still there at exit. A BTF pointer,
 * so fields are read with plain (CO-RE relocated) loads. */
static __always_inline struct pt_regs *user_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

/* The sock behind a descriptor of the current process. The task -> files -> fdtable walk
 * uses plain loads through the task's BTF pointer; the fd array and what follows are read
 * with bpf_probe_read_kernel: 3 helper calls where reading every field with one took 6. */
static __always_inline struct sock *fd_to_sock(long fd)
{
	struct fdtable *fdt = bpf_get_current_task_btf()->files->fdt;
	if (fd < 0 || (__u64)fd >= fdt->max_fds)
		return 0;
	struct file **fds = fdt->fd;
	struct file *file = 0;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	if (!file)
		return 0;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return 0;
	return BPF_CORE_READ(sock, sk);
}

/* Wake the reader when this record makes the waiting data cross the threshold. A wakeup is
 * an irq_work, i.e. a self-IPI, which in a VM is a VM exit: forcing one on every event while
 * the reader lags (runnable but not yet scheduled) cost more than the rest of the program.
 * Past eight times the threshold (half the ring by default) every event forces one again:
 * the reader is late (a crossing lost in a race between CPUs, or a starved reader), drops
 * are near, and the cost of those wakeups slows the producers down. */
static __always_inline __u64 wakeup_flag(__u64 size)
{
	__u64 avail = bpf_ringbuf_query(&hl_events, BPF_RB_AVAIL_DATA);
	__u64 end = avail + size + 16; /* + record header and padding */
	__u64 t = hl_wakeup_bytes;
	if ((avail < t && end >= t) || avail >= 8 * t)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void emit(struct hl_event *ev, __u64 size)
{
	if (size > sizeof(*ev))
		size = sizeof(*ev);
	if (bpf_ringbuf_output(&hl_events, ev, size, wakeup_flag(size)))
		stat_inc(HL_STAT_DROPS);
}

static __always_inline struct hl_event *scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&hl_scratch, &zero);
}

/* ---- connection open: accept (server side), connect (client side) ---- */

/* Unwatched opens return after reading only the port that decides (and the cgroup id);
 * the socket type, family and addresses are read for watched ones. A unix socket has
 * ports 0, which are never watched; a cgroup match checks the type and family. */
static __always_inline int track_open(long fd, __u8 side)
{
	if (fd < 0)
		return 0;
	struct sock *sk = fd_to_sock(fd);
	if (!sk)
		return 0;
	__u16 lport = 0, rport = 0;
	__u32 *watch;
	if (side == HL_SIDE_SERVER) {
		lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		watch = bpf_map_lookup_elem(&hl_server_ports, &lport);
	} else {
		rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		watch = bpf_map_lookup_elem(&hl_client_ports, &rport);
	}
	if (!watch) {
		__u64 cg = bpf_get_current_cgroup_id();
		watch = bpf_map_lookup_elem(&hl_cgroups, &cg);
		if (!watch)
			return 0;
	}
	struct socket *sock = BPF_CORE_READ(sk, sk_socket);
	if (!sock || BPF_CORE_READ(sock, type) != SOCK_STREAM)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (side == HL_SIDE_SERVER)
		rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	else
		lport = BPF_CORE_READ(sk, __sk_common.skc_num);

	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 key = conn_key(tgid, fd);
	struct hl_conn conn = { .watch_id = *watch & ~(__u32)HL_WATCH_HEADERS, .side = side };
#ifndef HL_NO_FRAMING
	if (side == HL_SIDE_SERVER && !(*watch & (__u32)HL_WATCH_HEADERS))
		conn.frame = HL_FRAME_IDLE;
#endif
	bpf_map_update_elem(&hl_conns, &key, &conn, BPF_ANY);
	__u32 tracked = HL_TGID_TRACKED; /* NOEXIST: keep the HL_TGID_SSL flag of a known process */
	bpf_map_update_elem(&hl_tgids, &tgid, &tracked, BPF_NOEXIST);
	tgid_mark(tgid);

	struct hl_event *ev = scratch();
	if (!ev)
		return 0;
	__builtin_memset(&ev->hdr, 0, sizeof(ev->hdr));
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->hdr.tgid = tgid;
	ev->hdr.fd = fd;
	ev->hdr.watch_id = conn.watch_id;
	ev->hdr.kind = HL_EV_OPEN;
	ev->hdr.side = side;
	ev->hdr.family = family;
	ev->hdr.lport = lport;
	ev->hdr.rport = rport;
	if (family == AF_INET) {
		__be32 a = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(ev->hdr.raddr, &a, 4);
	} else {
		BPF_CORE_READ_INTO(&ev->hdr.raddr, sk, __sk_common.skc_v6_daddr);
	}
	/* The process name travels with the open: short-lived clients are gone from /proc
	 * by the time userspace names them. */
	bpf_get_current_comm(ev->data, 16);
	ev->hdr.head_len = 16;
	emit(ev, sizeof(ev->hdr) + 16);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int hl_exit_accept(struct hl_sys_exit *ctx)
{
	if (!hl_watch_server)
		return 0;
	return track_open(ctx->ret, HL_SIDE_SERVER);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int hl_exit_accept4(struct hl_sys_exit *ctx)
{
	if (!hl_watch_server)
		return 0;
	return track_open(ctx->ret, HL_SIDE_SERVER);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int hl_exit_connect(struct hl_sys_exit *ctx)
{
	if (!hl_watch_client)
		return 0;
	if (ctx->ret != 0 && ctx->ret != -EINPROGRESS)
		return 0;
	return track_open(user_regs()->di, HL_SIDE_CLIENT);
}

/* ---- data: read/write family ---- */

static __always_inline void bind_tls(__u64 tls_conn, __u32 tgid, long fd, struct hl_conn *conn)
{
	struct hl_ssl_key sk = { .ssl = tls_conn, .tgid = tgid };
	__s32 sfd = fd;
	bpf_map_update_elem(&hl_ssl_fds, &sk, &sfd, BPF_ANY);
	conn->tls = 1;
}

/* The tracked connection of (current process, fd), or 0. TLS connections are marked here:
 * a socket read or written by a thread inside an SSL call, or by a goroutine inside Go's
 * (*tls.Conn).Read/Write, carries ciphertext (only looked for in processes that called into
 * those). Go makes its syscalls with the goroutine's g still in R14. */
static __always_inline struct hl_conn *lookup_conn(__u32 tgid, __u32 tgid_flags, long fd,
						   struct pt_regs *regs, __u8 dir)
{
	__u64 key = conn_key(tgid, fd);
	struct hl_conn *conn = bpf_map_lookup_elem(&hl_conns, &key);
	if (!conn || !(tgid_flags & (HL_TGID_SSL | HL_TGID_GO_TLS)))
		return conn;
	if (tgid_flags & HL_TGID_SSL) {
		__u64 pid_tgid = bpf_get_current_pid_tgid();
		struct hl_ssl_call *call = bpf_map_lookup_elem(&hl_ssl_calls, &pid_tgid);
		if (call)
			bind_tls(call->ssl, tgid, fd, conn);
		else if (dir == HL_DIR_READ && conn->tls)
			bpf_map_delete_elem(&hl_ssl_last_read, &pid_tgid);
	}
	if (tgid_flags & HL_TGID_GO_TLS) {
		struct hl_go_key gk = { .g = regs->r14, .tgid = tgid };
		struct hl_go_call *call = bpf_map_lookup_elem(&hl_go_calls, &gk);
		__u64 *hs = bpf_map_lookup_elem(&hl_go_handshakes, &gk);
		if (call)
			bind_tls(call->conn, tgid, fd, conn);
		else if (hs)
			bind_tls(*hs, tgid, fd, conn);
	}
	return conn;
}

static __always_inline struct hl_event *data_event(__u32 tgid, long fd, __u64 len, __u8 dir,
						   struct hl_conn *conn)
{
	struct hl_event *ev = scratch();
	if (!ev)
		return 0;
	__builtin_memset(&ev->hdr, 0, sizeof(ev->hdr));
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->hdr.len = len;
	ev->hdr.tgid = tgid;
	ev->hdr.fd = fd;
	ev->hdr.watch_id = conn->watch_id;
	ev->hdr.kind = HL_EV_DATA;
	ev->hdr.dir = dir;
	ev->hdr.side = conn->side;
	ev->hdr.tid = (__u32)bpf_get_current_pid_tgid();
	return ev;
}

/* Head and tail of one contiguous user buffer holding `len` bytes; returns the event's size. */
static __always_inline __u64 capture_buf(struct hl_event *ev, const void *buf, __u64 len)
{
	__u64 head = HL_CLAMP(len, HL_HEAD_MAX);
	bpf_probe_read_user(ev->data, head, buf);
	__u64 tail = 0;
	if (len > head) {
		tail = len - head;
		tail = HL_CLAMP(tail, HL_TAIL_MAX);
		bpf_probe_read_user(ev->data + HL_HEAD_MAX, tail, buf + (len - tail));
	}
	ev->hdr.head_len = head;
	ev->hdr.tail_len = tail;
	return sizeof(ev->hdr) + (tail ? HL_HEAD_MAX + tail : head);
}

/* Same for data scattered over an iovec array (readv/writev/recvmsg/sendmsg). The head is
 * gathered across entries; the tail is taken from the last entry that holds data. */
static __always_inline __u64 capture_iov(struct hl_event *ev, const struct iovec *iov,
					__u64 iovcnt, __u64 len)
{
	__u64 done = 0, head = 0, last_len = 0;
	const void *last_base = 0;
	/* One copy of the whole iovec array: each bpf_probe_read_user costs tens of ns. */
	struct iovec vs[HL_MAX_IOV] = {};
	__u64 cnt = HL_CLAMP(iovcnt, HL_MAX_IOV);
	if (cnt == 0 || bpf_probe_read_user(vs, cnt * sizeof(vs[0]), iov))
		cnt = 0;
#pragma unroll
	for (int i = 0; i < HL_MAX_IOV; i++) {
		if (i >= cnt || done >= len)
			break;
		struct iovec v = vs[i];
		__u64 n = v.iov_len;
		if (n > len - done)
			n = len - done;
		if (n == 0)
			continue;
		if (head == done && head < HL_HEAD_MAX) {
			__u64 c = HL_HEAD_MAX - head;
			if (c > n)
				c = n;
			__u64 off = HL_CLAMP(head, HL_HEAD_MAX - 1);
			c = HL_CLAMP(c, HL_HEAD_MAX);
			bpf_probe_read_user(ev->data + off, c, v.iov_base);
			head += c;
		}
		last_base = v.iov_base;
		last_len = n;
		done += n;
	}
	__u64 tail = 0;
	if (done == len && len > head && last_base) {
		tail = len - head;
		if (tail > last_len)
			tail = last_len;
		if (tail > HL_TAIL_MAX)
			tail = HL_TAIL_MAX;
		tail = HL_CLAMP(tail, HL_TAIL_MAX);
		bpf_probe_read_user(ev->data + HL_HEAD_MAX, tail, last_base + (last_len - tail));
	}
	if (head > HL_HEAD_MAX)
		head = HL_HEAD_MAX;
	ev->hdr.head_len = head;
	ev->hdr.tail_len = tail;
	return sizeof(ev->hdr) + (tail ? HL_HEAD_MAX + tail : head);
}

/* ---- HTTP/1.x framing in the kernel (server side) ----
 * The common exchange (a request read whole in one read, its response written with a
 * Content-Length, or without a body) becomes one REQUEST record (the request line) and one
 * RESPONSE record (the status), instead of the bytes of each read and write. Whatever the
 * kernel does not frame goes to userspace as bytes from then on (HL_FRAME_OFF), always at a
 * point where userspace's parser can take over: a request boundary, or the start of the
 * response to the framed request it was sent. See "Kernel framing" in docs/probe.md. */
#ifndef HL_NO_FRAMING

/* Callbacks of the head scan (bpf_loop) at most: each looks for the next line feed in the 16
 * bytes from `pos`, and checks the header field starting after it. */
#define HL_SCAN_STEPS 512

struct hl_scan {
	__u8 *buf;
	__u32 pos;      /* where the next line feed is looked for */
	__u32 end;      /* captured bytes */
	__u32 line_end; /* the start line's line feed (0: not found yet) */
	__u32 head_end; /* bytes up to and including the empty line (0: not found yet) */
	__u32 length_at; /* where the (first) Content-Length value starts */
	__u8 lengths;   /* Content-Length fields seen */
	__u8 refuse;    /* a field the kernel leaves to userspace, or a malformed head */
	__u8 has_length;
	__u64 length;   /* Content-Length, once parsed (scan_head) */
};

#define HL_STR8(a, b, c, d, e, f, g, h)                                                    \
	((__u64)(a) | (__u64)(b) << 8 | (__u64)(c) << 16 | (__u64)(d) << 24 |              \
	 (__u64)(e) << 32 | (__u64)(f) << 40 | (__u64)(g) << 48 | (__u64)(h) << 56)
#define HL_ONES 0x0101010101010101ULL
#define HL_LOW7 0x7f7f7f7f7f7f7f7fULL
#define HL_HIGH 0x8080808080808080ULL
#define HL_LOWER 0x2020202020202020ULL /* ORed in: ASCII letters to lower case */
#define HL_MASK(n) ((n) == 8 ? ~0ULL : (1ULL << ((n) * 8)) - 1)

/* 8 bytes at `off` of a scratch event's data, which has room for a load at any offset below
 * 2 * HL_HEAD_MAX. Bounded with a mask, not a comparison: a comparison against a constant
 * held in a register is not evaluated by older verifiers (6.1), which then explore branches
 * with impossible bounds and refuse the access. Callers stay below 2 KiB + 64. */
#define HL_DATA_MASK (2 * HL_HEAD_MAX - 1)

static __always_inline __u64 load8(const __u8 *buf, __u64 off)
{
	return *(const __u64 *)(buf + (off & HL_DATA_MASK));
}

static __always_inline __u8 load1(const __u8 *buf, __u64 off)
{
	return buf[off & HL_DATA_MASK];
}

static __always_inline bool is_digit(__u8 c)
{
	return c >= '0' && c <= '9';
}

/* Content-Length's value from `pos` (after the colon): optional spaces or tabs, 1 to 18
 * digits, optional spaces or tabs, CR. One byte per callback (bpf_loop). */
struct hl_number {
	const __u8 *buf;
	__u32 pos;
	__u32 end;
	__u64 value;
	__u8 digits;
	__u8 after;  /* white space after the digits seen */
	__u8 ok;     /* ended by CR after at least one digit */
};

static long number_step(__u32 index, void *ctx)
{
	struct hl_number *n = ctx;
	if (n->pos >= n->end)
		return 1;
	__u8 c = load1(n->buf, n->pos);
	n->pos++;
	if (c == ' ' || c == '\t') {
		n->after = n->digits > 0;
		return 0;
	}
	if (is_digit(c) && !n->after && n->digits < 18) {
		n->value = n->value * 10 + (c - '0');
		n->digits++;
		return 0;
	}
	n->ok = c == '\r' && n->digits > 0;
	return 1;
}

/* 0x80 in each byte of `w` that is a line feed (an exact zero-byte test on w ^ LFs). */
static __always_inline __u64 line_feeds(__u64 w)
{
	__u64 x = w ^ (HL_ONES * '\n');
	return ~(((x & HL_LOW7) + HL_LOW7) | x) & HL_HIGH;
}

static long scan_step(__u32 index, void *ctx)
{
	struct hl_scan *s = ctx;
	__u32 pos = s->pos;
	if (pos >= s->end || pos > HL_HEAD_MAX) {
		s->refuse = 1; /* the head does not end in the captured bytes */
		return 1;
	}
	const __u8 *buf = s->buf;
	/* 16 bytes per step: the first line feed in them, if any. */
	__u64 lf = line_feeds(load8(buf, pos));
	if (!lf) {
		pos += 8;
		lf = line_feeds(load8(buf, pos));
		if (!lf) {
			s->pos = pos + 8;
			return 0;
		}
	}
	/* Index of the lowest flagged byte: its 0x01 bit times this constant puts the index in
	 * the top byte (little endian). */
	__u32 nl = pos + ((((lf & -lf) >> 7) * 0x0001020304050607ULL) >> 56 & 7);
	if (nl >= s->end) {
		s->refuse = 1;
		return 1;
	}
	s->pos = nl + 1;
	if (!s->line_end)
		s->line_end = nl;
	__u32 at = nl + 1;
	__u64 raw = load8(buf, at);
	if ((raw & 0xffff) == ('\r' | '\n' << 8)) {
		s->head_end = at + 2;
		return 1;
	}
	__u64 name = raw | HL_LOWER;
	if (name == HL_STR8('c', 'o', 'n', 't', 'e', 'n', 't', '-')) {
		__u64 rest = load8(buf, at + 8) | HL_LOWER;
		if ((rest & HL_MASK(6)) == HL_STR8('l', 'e', 'n', 'g', 't', 'h', 0, 0) &&
		    load1(buf, at + 14) == ':') {
			if (s->lengths++)
				s->refuse = 1; /* a repeated one: userspace checks them */
			s->length_at = at + 15;
		}
	} else if (name == HL_STR8('t', 'r', 'a', 'n', 's', 'f', 'e', 'r') ||
		   name == HL_STR8('u', 'p', 'g', 'r', 'a', 'd', 'e', ':') ||
		   (name & HL_MASK(7)) == HL_STR8('e', 'x', 'p', 'e', 'c', 't', ':', 0)) {
		/* Transfer-Encoding (chunked bodies), Upgrade (another protocol follows),
		 * Expect (an interim response comes first): userspace follows those. */
		s->refuse = 1;
	}
	return s->refuse ? 1 : 0;
}

/* Verifiers before 6.8 check a bpf_loop callback for one iteration only, and then take
 * what that one iteration stored as all the loop can store: from known initial values they
 * conclude, for example, that a Content-Length value is never complete, and remove the code
 * that uses it as dead (measured on 6.1). There (hl_callbacks_once, set by the loader) the
 * loop states start from hl_zero, which is always 0 but unknown to the verifier (.bss is a
 * writable map). Newer verifiers iterate callbacks until their states converge, which they
 * do from the zeroed states but not within the instruction limit from unknown ones
 * (measured on 6.18). */
volatile const __u8 hl_callbacks_once = 0;
__u32 hl_zero = 0;

/* Scans the head captured at data[0..end): start line end, head end, Content-Length.
 * Returns false when the kernel does not frame this message. */
static __always_inline bool scan_head(struct hl_event *ev, __u32 end, struct hl_scan *s)
{
	__builtin_memset(s, 0, sizeof(*s));
	s->buf = ev->data;
	s->end = end;
	if (hl_callbacks_once) {
		__u32 zero = hl_zero;
		s->pos = zero;
		s->line_end = zero;
		s->head_end = zero;
		s->length_at = zero;
		s->lengths = zero;
		s->refuse = zero;
	}
	bpf_loop(HL_SCAN_STEPS, scan_step, s, 0);
	if (s->refuse || !s->head_end || s->line_end < 12)
		return false;
	if (!s->lengths)
		return true;
	struct hl_number n = { .buf = ev->data, .pos = s->length_at, .end = s->head_end };
	if (hl_callbacks_once) {
		__u32 zero = hl_zero;
		n.value = zero;
		n.digits = zero;
		n.after = zero;
		n.ok = zero;
	}
	bpf_loop(24, number_step, &n, 0);
	s->has_length = 1;
	s->length = n.value;
	return n.ok;
}

/* Whether the request line starts with a method whose requests the kernel frames (others,
 * CONNECT and HTTP/2's PRI among them, are left to userspace). */
static __always_inline bool framed_method(__u64 w, bool *head)
{
	*head = (w & HL_MASK(5)) == HL_STR8('H', 'E', 'A', 'D', ' ', 0, 0, 0);
	return *head || (w & HL_MASK(4)) == HL_STR8('G', 'E', 'T', ' ', 0, 0, 0, 0) ||
	       (w & HL_MASK(5)) == HL_STR8('P', 'O', 'S', 'T', ' ', 0, 0, 0) ||
	       (w & HL_MASK(4)) == HL_STR8('P', 'U', 'T', ' ', 0, 0, 0, 0) ||
	       (w & HL_MASK(7)) == HL_STR8('D', 'E', 'L', 'E', 'T', 'E', ' ', 0) ||
	       (w & HL_MASK(6)) == HL_STR8('P', 'A', 'T', 'C', 'H', ' ', 0, 0) ||
	       w == HL_STR8('O', 'P', 'T', 'I', 'O', 'N', 'S', ' ');
}

/* A read in HL_FRAME_IDLE: a whole request (head, and body by Content-Length) in this one
 * read becomes a REQUEST record. Returns false to send the bytes (and frame no more). */
static __always_inline bool frame_request(struct hl_conn *conn, struct hl_event *ev)
{
	__u64 len = ev->hdr.len;
	__u32 end = ev->hdr.head_len;
	bool head;
	if (end < 16 || !framed_method(load8(ev->data, 0), &head))
		return false;
	struct hl_scan s;
	if (!scan_head(ev, end, &s))
		return false;
	/* "... HTTP/1.x" CR LF ends the request line. */
	__u64 le = s.line_end;
	if (load8(ev->data, le - 10) != HL_STR8(' ', 'H', 'T', 'T', 'P', '/', '1', '.') ||
	    !is_digit(load1(ev->data, le - 2)) || load1(ev->data, le - 1) != '\r')
		return false;
	if (len - s.head_end != (s.has_length ? s.length : 0))
		return false; /* the body continues in later reads, or more follows */
	conn->frame = HL_FRAME_REQUEST;
	conn->head_req = head;
	/* The request line without its CR LF. */
	__u64 line = HL_CLAMP(s.line_end, HL_HEAD_MAX + 1) - 1;
	ev->hdr.kind = HL_EV_REQUEST;
	ev->hdr.head_len = line;
	ev->hdr.tail_len = 0;
	emit(ev, sizeof(ev->hdr) + HL_CLAMP(line, HL_HEAD_MAX));
	return true;
}

static __always_inline void emit_response(struct hl_event *ev, __u16 status)
{
	ev->hdr.kind = HL_EV_RESPONSE;
	ev->hdr.status = status;
	ev->hdr.len = 0;
	ev->hdr.head_len = 0;
	ev->hdr.tail_len = 0;
	emit(ev, sizeof(ev->hdr));
}

/* The first write after a framed request: a response head ("HTTP/1.x NNN"), whose body
 * length is known from the head alone, starting this write. */
static __always_inline bool frame_response(struct hl_conn *conn, struct hl_event *ev)
{
	__u64 len = ev->hdr.len;
	__u32 end = ev->hdr.head_len;
	if (end < 16)
		return false;
	__u64 w = load8(ev->data, 0);
	if (w != HL_STR8('H', 'T', 'T', 'P', '/', '1', '.', '1') &&
	    w != HL_STR8('H', 'T', 'T', 'P', '/', '1', '.', '0'))
		return false;
	__u8 d0 = load1(ev->data, 9), d1 = load1(ev->data, 10), d2 = load1(ev->data, 11);
	__u8 after = load1(ev->data, 12);
	if (load1(ev->data, 8) != ' ' || !is_digit(d0) || !is_digit(d1) || !is_digit(d2) ||
	    (after != ' ' && after != '\r'))
		return false;
	__u16 status = (d0 - '0') * 100 + (d1 - '0') * 10 + (d2 - '0');
	if (status < 200)
		return false; /* interim responses, 101 */
	struct hl_scan s;
	if (!scan_head(ev, end, &s))
		return false;
	__u64 body;
	if (conn->head_req || status == 204 || status == 304)
		body = 0;
	else if (s.has_length)
		body = s.length;
	else
		return false; /* delimited by the close */
	__u64 written = len - s.head_end;
	if (written > body)
		return false; /* more than this response: pipelined responses */
	if (written < body) {
		conn->frame = HL_FRAME_RESPONSE;
		conn->status = status;
		conn->resp_left = body - written;
		return true;
	}
	conn->frame = HL_FRAME_IDLE;
	emit_response(ev, status);
	return true;
}

/* Body bytes of a framed response (HL_FRAME_RESPONSE, DRAIN): the RESPONSE record goes out
 * with the write that completes it. */
static __always_inline bool frame_body(struct hl_conn *conn, struct hl_event *ev)
{
	__u64 len = ev->hdr.len;
	if (len < conn->resp_left) {
		conn->resp_left -= len;
		return true;
	}
	bool exact = len == conn->resp_left;
	conn->frame = conn->frame == HL_FRAME_RESPONSE && exact ? HL_FRAME_IDLE : HL_FRAME_OFF;
	conn->resp_left = 0;
	emit_response(ev, conn->status);
	/* Bytes past the response (a pipelined response written with its end) are not sent:
	 * userspace then finds the next message boundary by its resync rules. */
	return true;
}

/* Frames a captured read or write of a server-side connection in the kernel (see above).
 * Returns false when its bytes are to be sent as a DATA event. */
static __always_inline bool frame(struct hl_conn *conn, struct hl_event *ev, __u8 dir)
{
	__u8 state = conn->frame;
	if (dir == HL_DIR_READ) {
		if (state == HL_FRAME_IDLE && frame_request(conn, ev))
			return true;
		/* A request the kernel does not frame, or one pipelined behind a framed one:
		 * userspace takes over at this request boundary (after the current response). */
		if (state != HL_FRAME_DRAIN)
			conn->frame = state == HL_FRAME_RESPONSE ? HL_FRAME_DRAIN : HL_FRAME_OFF;
		return false;
	}
	if (state == HL_FRAME_REQUEST && frame_response(conn, ev))
		return true;
	conn->frame = HL_FRAME_OFF;
	return false;
}

/* A write of the body of a framed response: counted, not captured. */
static __always_inline bool framed_body_write(struct hl_conn *conn, struct hl_event *ev)
{
	return (conn->frame == HL_FRAME_RESPONSE || conn->frame == HL_FRAME_DRAIN) &&
	       frame_body(conn, ev);
}

#else
static __always_inline bool frame(struct hl_conn *conn, struct hl_event *ev, __u8 dir)
{
	return false;
}

static __always_inline bool framed_body_write(struct hl_conn *conn, struct hl_event *ev)
{
	return false;
}
#endif

/* Sends a captured read or write: framed in the kernel when the connection is, else its
 * bytes. */
static __always_inline void deliver(struct hl_conn *conn, struct hl_event *ev, __u64 size,
				    __u8 dir)
{
	if (conn->frame == HL_FRAME_OFF || !frame(conn, ev, dir))
		emit(ev, size);
}

/* A read or write syscall that returned data: who made it, on which fd. */
struct data_call {
	__u32 tgid;
	__u32 tgid_flags;
	long fd;
	struct pt_regs *regs;
};

/* The watched plain-text connection a successful read or write moved data on,
 * else NULL; fills `call` on the way. */
static __always_inline struct hl_conn *watched_data_call(long ret, __u8 dir,
							 struct data_call *call)
{
	if (ret <= 0)
		return NULL;
	call->tgid = bpf_get_current_pid_tgid() >> 32;
	if (!tgid_maybe_tracked(call->tgid))
		return NULL;
	__u32 *tflags = bpf_map_lookup_elem(&hl_tgids, &call->tgid);
	if (!tflags)
		return NULL;
	call->regs = user_regs();
	call->fd = call->regs->di;
	call->tgid_flags = *tflags;
	struct hl_conn *conn = lookup_conn(call->tgid, *tflags, call->fd, call->regs, dir);
	if (!conn || conn->tls)
		return NULL;
	return conn;
}

/* Which argument of a read holds the recv flags: a MSG_PEEK read leaves the bytes in the
 * socket for the next read, which is the one to count. */
enum hl_flags_arg { HL_NO_FLAGS, HL_FLAGS_ARG3, HL_FLAGS_ARG4 };
#define HL_MSG_PEEK 2

static __always_inline bool is_peek(struct pt_regs *regs, enum hl_flags_arg arg)
{
	if (arg == HL_FLAGS_ARG3)
		return regs->dx & HL_MSG_PEEK;
	if (arg == HL_FLAGS_ARG4)
		return regs->r10 & HL_MSG_PEEK;
	return false;
}

/* A read of a connection not bound to an SSL*, captured in `ev`: a TLS record's head is
 * remembered for the memory BIO binding (in any process: the process may not have called
 * into libssl since the probe started); anything else a libssl user reads ends that memory. */
static __always_inline void note_read(struct data_call *call, struct hl_event *ev)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u8 *h = ev->data;
	if (ev->hdr.head_len >= 3 && h[0] >= 0x14 && h[0] <= 0x17 && h[1] == 3 && h[2] <= 4) {
		__s32 fd = call->fd;
		bpf_map_update_elem(&hl_ssl_last_read, &pid_tgid, &fd, BPF_ANY);
	} else if (call->tgid_flags & HL_TGID_SSL) {
		bpf_map_delete_elem(&hl_ssl_last_read, &pid_tgid);
	}
}

static __always_inline int on_buf(long ret, __u8 dir, enum hl_flags_arg flags)
{
	struct data_call call;
	struct hl_conn *conn = watched_data_call(ret, dir, &call);
	if (!conn || is_peek(call.regs, flags))
		return 0;
	struct hl_event *ev = data_event(call.tgid, call.fd, ret, dir, conn);
	if (!ev || (dir == HL_DIR_WRITE && framed_body_write(conn, ev)))
		return 0;
	__u64 size = capture_buf(ev, (const void *)call.regs->si, ret);
	if (dir == HL_DIR_READ)
		note_read(&call, ev);
	deliver(conn, ev, size, dir);
	return 0;
}

static __always_inline int on_iov(long ret, __u8 dir, bool msg)
{
	struct data_call call;
	struct hl_conn *conn = watched_data_call(ret, dir, &call);
	if (!conn || (msg && is_peek(call.regs, HL_FLAGS_ARG3)))
		return 0;
	struct pt_regs *regs = call.regs;
	const struct iovec *iov;
	__u64 cnt;
	if (msg) {
		struct user_msghdr m = {};
		bpf_probe_read_user(&m, sizeof(m), (const void *)regs->si);
		iov = m.msg_iov;
		cnt = m.msg_iovlen;
	} else {
		iov = (const struct iovec *)regs->si;
		cnt = regs->dx;
	}
	struct hl_event *ev = data_event(call.tgid, call.fd, ret, dir, conn);
	if (!ev || (dir == HL_DIR_WRITE && framed_body_write(conn, ev)))
		return 0;
	if (dir == HL_DIR_WRITE && conn->frame == HL_FRAME_REQUEST) {
		/* A response head is framed from the first buffer alone (servers write the head
		 * and the body as separate iovecs); the rest is captured only if it is not. */
		capture_iov(ev, iov, 1, ret);
		if (frame(conn, ev, dir))
			return 0;
		emit(ev, capture_iov(ev, iov, cnt, ret));
		return 0;
	}
	__u64 size = capture_iov(ev, iov, cnt, ret);
	if (dir == HL_DIR_READ)
		note_read(&call, ev);
	deliver(conn, ev, size, dir);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int hl_exit_read(struct hl_sys_exit *ctx) { return on_buf(ctx->ret, HL_DIR_READ, HL_NO_FLAGS); }

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int hl_exit_recvfrom(struct hl_sys_exit *ctx) { return on_buf(ctx->ret, HL_DIR_READ, HL_FLAGS_ARG4); }

SEC("tracepoint/syscalls/sys_exit_write")
int hl_exit_write(struct hl_sys_exit *ctx) { return on_buf(ctx->ret, HL_DIR_WRITE, HL_NO_FLAGS); }

SEC("tracepoint/syscalls/sys_exit_sendto")
int hl_exit_sendto(struct hl_sys_exit *ctx) { return on_buf(ctx->ret, HL_DIR_WRITE, HL_NO_FLAGS); }

SEC("tracepoint/syscalls/sys_exit_readv")
int hl_exit_readv(struct hl_sys_exit *ctx) { return on_iov(ctx->ret, HL_DIR_READ, false); }

SEC("tracepoint/syscalls/sys_exit_writev")
int hl_exit_writev(struct hl_sys_exit *ctx) { return on_iov(ctx->ret, HL_DIR_WRITE, false); }

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int hl_exit_recvmsg(struct hl_sys_exit *ctx) { return on_iov(ctx->ret, HL_DIR_READ, true); }

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int hl_exit_sendmsg(struct hl_sys_exit *ctx) { return on_iov(ctx->ret, HL_DIR_WRITE, true); }

/* sendfile: the body bytes stay in the kernel; report their count so the parser can
 * account for them (a response body sent with sendfile still completes its exchange). */
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int hl_exit_sendfile64(struct hl_sys_exit *ctx)
{
	long ret = ctx->ret;
	struct data_call call;
	struct hl_conn *conn = watched_data_call(ret, HL_DIR_WRITE, &call);
	if (!conn)
		return 0;
	struct hl_event *ev = data_event(call.tgid, call.fd, ret, HL_DIR_WRITE, conn);
	if (ev && !framed_body_write(conn, ev)) {
		ev->hdr.flags = HL_F_NO_PAYLOAD;
		deliver(conn, ev, sizeof(ev->hdr), HL_DIR_WRITE);
	}
	return 0;
}

/* At the entry of close, while the descriptor still names this connection: at the exit
 * the kernel has freed the number, and another thread's accept may already have reused it
 * for a new connection, whose entry a delete at the exit would remove. close releases the
 * descriptor even when it returns an error, so its result is not needed. */
SEC("tracepoint/syscalls/sys_enter_close")
int hl_enter_close(struct hl_sys_enter *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!tgid_maybe_tracked(tgid) || !bpf_map_lookup_elem(&hl_tgids, &tgid))
		return 0;
	long fd = (int)ctx->args[0];
	__u64 key = conn_key(tgid, fd);
	struct hl_conn *conn = bpf_map_lookup_elem(&hl_conns, &key);
	if (!conn)
		return 0;
	struct hl_event *ev = data_event(tgid, fd, 0, HL_DIR_READ, conn);
	if (ev && (conn->frame == HL_FRAME_RESPONSE || conn->frame == HL_FRAME_DRAIN))
		ev->hdr.status = conn->status;
	bpf_map_delete_elem(&hl_conns, &key);
	if (ev) {
		ev->hdr.kind = HL_EV_CLOSE;
		emit(ev, sizeof(ev->hdr));
	}
	return 0;
}

/* ---- TLS plaintext: libssl uprobes ---- */

static __always_inline int ssl_enter(struct pt_regs *ctx, __u64 len_ptr, bool bind_only)
{
	/* Loaded once, up front: clang would otherwise merge the loads of different paths
	 * into one at a computed context offset, which the verifier refuses. */
	__u64 ssl = ctx->di, buf = ctx->si;
	asm volatile("" : "+r"(ssl), "+r"(buf));
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u32 *tflags = bpf_map_lookup_elem(&hl_tgids, &tgid);
	if (!tflags)
		return 0;
	if (!(*tflags & HL_TGID_SSL))
		*tflags |= HL_TGID_SSL; /* only ever set: a lost race just repeats it */
	if (bind_only) {
		/* Called from inside SSL_read/SSL_write on the same SSL*: keep that call. */
		struct hl_ssl_call *outer = bpf_map_lookup_elem(&hl_ssl_calls, &pid_tgid);
		if (outer && outer->ssl == ssl)
			return 0;
	}
	struct hl_ssl_call call = {
		.ssl = ssl,
		.buf = buf,
		.len_ptr = len_ptr,
		.bind_only = bind_only,
	};
	bpf_map_update_elem(&hl_ssl_calls, &pid_tgid, &call, BPF_ANY);
	return 0;
}

/* Plaintext of a TLS call that moved `len` bytes at `buf`, on the connection `fd` bound to
 * its SSL* or *tls.Conn. */
static __always_inline void emit_plaintext(__u32 tgid, __s32 fd, __u64 buf, __u64 len, __u8 dir)
{
	__u64 ckey = conn_key(tgid, fd);
	struct hl_conn *conn = bpf_map_lookup_elem(&hl_conns, &ckey);
	if (!conn)
		return;
	struct hl_event *ev = data_event(tgid, fd, len, dir, conn);
	if (ev) {
		ev->hdr.flags = HL_F_TLS;
		emit(ev, capture_buf(ev, (const void *)buf, len));
	}
}

/* The fd an SSL* reads and writes, or -1. An SSL* not bound by a syscall made inside one of
 * its calls (memory BIOs: the application moves the ciphertext itself) is bound here to the
 * connection this thread last read outside SSL calls, which that read then can no longer
 * bind to another SSL*. */
static __always_inline __s32 ssl_fd(struct hl_ssl_key *key, __u64 pid_tgid)
{
	__s32 *fdp = bpf_map_lookup_elem(&hl_ssl_fds, key);
	if (fdp)
		return *fdp;
	__s32 *last = bpf_map_lookup_elem(&hl_ssl_last_read, &pid_tgid);
	if (!last)
		return -1;
	__s32 fd = *last;
	bpf_map_delete_elem(&hl_ssl_last_read, &pid_tgid);
	__u64 ckey = conn_key(key->tgid, fd);
	struct hl_conn *conn = bpf_map_lookup_elem(&hl_conns, &ckey);
	if (!conn)
		return -1;
	conn->tls = 1;
	bpf_map_update_elem(&hl_ssl_fds, key, &fd, BPF_ANY);
	return fd;
}

static __always_inline int ssl_exit(struct pt_regs *ctx, __u8 dir, bool ex)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (!bpf_map_lookup_elem(&hl_tgids, &tgid))
		return 0;
	struct hl_ssl_call *callp = bpf_map_lookup_elem(&hl_ssl_calls, &pid_tgid);
	if (!callp)
		return 0;
	struct hl_ssl_call call = *callp;
	bpf_map_delete_elem(&hl_ssl_calls, &pid_tgid);
	if (call.bind_only)
		return 0;

	long rc = ctx->ax;
	__u64 len = 0;
	if (ex) {
		if (rc != 1 || !call.len_ptr)
			return 0;
		bpf_probe_read_user(&len, sizeof(len), (const void *)call.len_ptr);
	} else {
		if ((int)rc <= 0)
			return 0;
		len = (__u64)(int)rc;
	}
	if (len == 0)
		return 0;
	struct hl_ssl_key key = { .ssl = call.ssl, .tgid = tgid };
	__s32 fd = ssl_fd(&key, pid_tgid);
	if (fd >= 0)
		emit_plaintext(tgid, fd, call.buf, len, dir);
	return 0;
}

/* Return of SSL_do_handshake (SSL_accept and SSL_connect call it) or SSL_peek: the socket
 * reads made inside it have bound the SSL* (a server may read the first request together
 * with the end of the handshake, and SSL_read then returns it without a syscall); a
 * handshake that succeeded on a memory BIO binds it like a read would. */
static __always_inline int ssl_bind_exit(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (!bpf_map_lookup_elem(&hl_tgids, &tgid))
		return 0;
	struct hl_ssl_call *callp = bpf_map_lookup_elem(&hl_ssl_calls, &pid_tgid);
	if (!callp || !callp->bind_only)
		return 0; /* nested in SSL_read/SSL_write: theirs to finish */
	struct hl_ssl_key key = { .ssl = callp->ssl, .tgid = tgid };
	bpf_map_delete_elem(&hl_ssl_calls, &pid_tgid);
	if ((int)ctx->ax > 0)
		ssl_fd(&key, pid_tgid);
	return 0;
}

SEC("uprobe/SSL_read")
int hl_ssl_read(struct pt_regs *ctx) { return ssl_enter(ctx, 0, false); }

SEC("uretprobe/SSL_read")
int hl_ssl_read_ret(struct pt_regs *ctx) { return ssl_exit(ctx, HL_DIR_READ, false); }

SEC("uprobe/SSL_read_ex")
int hl_ssl_read_ex(struct pt_regs *ctx) { return ssl_enter(ctx, ctx->cx, false); }

SEC("uretprobe/SSL_read_ex")
int hl_ssl_read_ex_ret(struct pt_regs *ctx) { return ssl_exit(ctx, HL_DIR_READ, true); }

SEC("uprobe/SSL_write")
int hl_ssl_write(struct pt_regs *ctx) { return ssl_enter(ctx, 0, false); }

SEC("uretprobe/SSL_write")
int hl_ssl_write_ret(struct pt_regs *ctx) { return ssl_exit(ctx, HL_DIR_WRITE, false); }

SEC("uprobe/SSL_write_ex")
int hl_ssl_write_ex(struct pt_regs *ctx) { return ssl_enter(ctx, ctx->cx, false); }

SEC("uretprobe/SSL_write_ex")
int hl_ssl_write_ex_ret(struct pt_regs *ctx) { return ssl_exit(ctx, HL_DIR_WRITE, true); }

/* ---- TLS plaintext: Go crypto/tls uprobes ----
 * func (c *Conn) Read(b []byte) (int, error) and Write alike, Go's register ABI (ABIInternal,
 * Go 1.17+, amd64): c in RAX, b's pointer, length and capacity in RBX, RCX, RDI; the result
 * n in RAX; the running goroutine's g in R14. Return probes are uprobes on each RET of the
 * function: a uretprobe rewrites the return address on the goroutine stack, which Go may
 * move (stack growth) or unwind (panics, tracebacks), crashing the program. */

/* The goroutine's key, when the process owns a tracked connection (else 0). */
static __always_inline bool go_enter_key(struct pt_regs *ctx, struct hl_go_key *key)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 *tflags = bpf_map_lookup_elem(&hl_tgids, &tgid);
	if (!tflags)
		return false;
	if (!(*tflags & HL_TGID_GO_TLS))
		*tflags |= HL_TGID_GO_TLS; /* as in ssl_enter: a lost race just repeats it */
	key->g = ctx->r14;
	key->tgid = tgid;
	return true;
}

static __always_inline int go_tls_enter(struct pt_regs *ctx)
{
	struct hl_go_key key = {};
	if (!go_enter_key(ctx, &key))
		return 0;
	struct hl_go_call call = { .conn = ctx->ax, .buf = ctx->bx };
	bpf_map_update_elem(&hl_go_calls, &key, &call, BPF_ANY);
	return 0;
}

static __always_inline int go_tls_ret(struct pt_regs *ctx, __u8 dir)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct hl_go_key key = { .g = ctx->r14, .tgid = tgid };
	struct hl_go_call *callp = bpf_map_lookup_elem(&hl_go_calls, &key);
	if (!callp)
		return 0;
	struct hl_go_call call = *callp;
	bpf_map_delete_elem(&hl_go_calls, &key);
	long n = ctx->ax;
	if (n <= 0)
		return 0;
	struct hl_ssl_key sk = { .ssl = call.conn, .tgid = tgid };
	__s32 *fdp = bpf_map_lookup_elem(&hl_ssl_fds, &sk);
	if (fdp)
		emit_plaintext(tgid, *fdp, call.buf, n, dir);
	return 0;
}

SEC("uprobe/go_tls_read")
int hl_go_tls_read(struct pt_regs *ctx) { return go_tls_enter(ctx); }

SEC("uprobe/go_tls_read_ret")
int hl_go_tls_read_ret(struct pt_regs *ctx) { return go_tls_ret(ctx, HL_DIR_READ); }

SEC("uprobe/go_tls_write")
int hl_go_tls_write(struct pt_regs *ctx) { return go_tls_enter(ctx); }

SEC("uprobe/go_tls_write_ret")
int hl_go_tls_write_ret(struct pt_regs *ctx) { return go_tls_ret(ctx, HL_DIR_WRITE); }

/* func (c *Conn) handshakeContext(ctx context.Context) (ret error): c in RAX. */
SEC("uprobe/go_tls_handshake")
int hl_go_tls_handshake(struct pt_regs *ctx)
{
	struct hl_go_key key = {};
	if (!go_enter_key(ctx, &key))
		return 0;
	__u64 conn = ctx->ax;
	bpf_map_update_elem(&hl_go_handshakes, &key, &conn, BPF_ANY);
	return 0;
}

SEC("uprobe/go_tls_handshake_ret")
int hl_go_tls_handshake_ret(struct pt_regs *ctx)
{
	struct hl_go_key key = { .g = ctx->r14, .tgid = bpf_get_current_pid_tgid() >> 32 };
	bpf_map_delete_elem(&hl_go_handshakes, &key);
	return 0;
}

/* SSL_peek, SSL_peek_ex and SSL_do_handshake share these two. */
SEC("uprobe/SSL_bind")
int hl_ssl_bind(struct pt_regs *ctx) { return ssl_enter(ctx, 0, true); }

SEC("uretprobe/SSL_bind")
int hl_ssl_bind_ret(struct pt_regs *ctx) { return ssl_bind_exit(ctx); }

/* A freed SSL*'s address is soon reused by a new connection's: forget its fd. */
SEC("uprobe/SSL_free")
int hl_ssl_free(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!bpf_map_lookup_elem(&hl_tgids, &tgid))
		return 0;
	struct hl_ssl_key key = { .ssl = ctx->di, .tgid = tgid };
	bpf_map_delete_elem(&hl_ssl_fds, &key);
	return 0;
}
