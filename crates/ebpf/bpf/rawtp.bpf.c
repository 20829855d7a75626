// SPDX-License-Identifier: GPL-2.0
/* Measurement prototype, not loaded by homelab-probe (docs/probe.md, "One raw tracepoint for
 * all syscalls: measured"): the exit hooks of probe.bpf.c on one BTF raw tracepoint,
 * sys_exit, which runs for every syscall of every process and dispatches on the syscall
 * number, instead of one per-syscall tracepoint each (those go through perf_syscall_exit,
 * which fills a perf trace record before the program runs). The whole of probe.bpf.c is
 * included, unchanged, so the watched path runs the very same functions (on_buf, on_iov, the
 * tgid bitmap exit); its programs are in this object too, and the loader
 * (crates/probe/examples/rawtp.rs) attaches its close one as it is. A raw_tp
 * variant (kernels without BTF) would need raw_tp handlers too: a tail call cannot cross
 * program types; only its empty program is here, to time that dispatch. */
#include "probe.bpf.c"

/* x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
#define NR_READ 0
#define NR_WRITE 1
#define NR_CLOSE 3
#define NR_READV 19
#define NR_WRITEV 20
#define NR_SENDFILE 40
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47
#define NR_CONNECT 42
#define NR_ACCEPT 43
#define NR_ACCEPT4 288
#define BIT(nr) (1ULL << (nr))
/* The data syscalls, then connect and accept: all below 64 (accept4 aside), so one shift and
 * mask exits every other syscall. */
#define DATA_NRS                                                                           \
	(BIT(NR_READ) | BIT(NR_WRITE) | BIT(NR_READV) | BIT(NR_WRITEV) | BIT(NR_SENDFILE) |  \
	 BIT(NR_SENDTO) | BIT(NR_RECVFROM) | BIT(NR_SENDMSG) | BIT(NR_RECVMSG))
#define OPEN_NRS (BIT(NR_CONNECT) | BIT(NR_ACCEPT))

/* One program per handler, entered by a tail call indexed by the syscall number (the loader
 * fills the array). One program with every handler inlined (or called as global functions,
 * whose instructions count against the same budget) exceeds the verifier's limit of 1M
 * processed instructions since kernel framing (E2BIG after 33 s here); each handler alone
 * passes, as the per-syscall programs do. All are tp_btf programs for sys_exit: a tail call
 * is only allowed between programs of the same hook. */
enum { BPF_MAP_TYPE_PROG_ARRAY = 3 };
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, NR_ACCEPT4 + 1);
	__type(key, __u32);
	__type(value, __u32);
} rawtp_handlers SEC(".maps");

/* The bodies of hl_exit_accept/accept4 and hl_exit_connect. */
SEC("tp_btf/sys_exit")
int rawtp_accept(__u64 *ctx)
{
	if (!hl_watch_server)
		return 0;
	return track_open(ctx[1], HL_SIDE_SERVER);
}

SEC("tp_btf/sys_exit")
int rawtp_connect(__u64 *ctx)
{
	if (!hl_watch_client)
		return 0;
	long ret = ctx[1];
	if (ret != 0 && ret != -EINPROGRESS)
		return 0;
	return track_open(user_regs()->di, HL_SIDE_CLIENT);
}

SEC("tp_btf/sys_exit")
int rawtp_read(__u64 *ctx) { return on_buf(ctx[1], HL_DIR_READ, HL_NO_FLAGS); }

SEC("tp_btf/sys_exit")
int rawtp_recvfrom(__u64 *ctx) { return on_buf(ctx[1], HL_DIR_READ, HL_FLAGS_ARG4); }

SEC("tp_btf/sys_exit")
int rawtp_write(__u64 *ctx) { return on_buf(ctx[1], HL_DIR_WRITE, HL_NO_FLAGS); }

SEC("tp_btf/sys_exit")
int rawtp_readv(__u64 *ctx) { return on_iov(ctx[1], HL_DIR_READ, false); }

SEC("tp_btf/sys_exit")
int rawtp_writev(__u64 *ctx) { return on_iov(ctx[1], HL_DIR_WRITE, false); }

SEC("tp_btf/sys_exit")
int rawtp_recvmsg(__u64 *ctx) { return on_iov(ctx[1], HL_DIR_READ, true); }

SEC("tp_btf/sys_exit")
int rawtp_sendmsg(__u64 *ctx) { return on_iov(ctx[1], HL_DIR_WRITE, true); }

SEC("tp_btf/sys_exit")
int rawtp_sendfile(__u64 *ctx)
{
	/* the body of hl_exit_sendfile64 */
	long ret = ctx[1];
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

/* Not checked here, which a real conversion must: a 32-bit (ia32) syscall of a tracked
 * process carries ia32 numbers in orig_ax (19 is lseek there, 45 brk), where the per-syscall
 * tracepoints skip compat syscalls altogether. */
static __always_inline int dispatch_exit(void *ctx, __u64 nr, long ret)
{
	if (nr >= 64) {
		if (nr == NR_ACCEPT4)
			bpf_tail_call(ctx, &rawtp_handlers, nr);
		return 0;
	}
	__u64 bit = 1ULL << nr;
	if (bit & OPEN_NRS)
		bpf_tail_call(ctx, &rawtp_handlers, nr);
	if (!(bit & DATA_NRS) || ret <= 0)
		return 0;
	/* The handlers' first test, made here so that unwatched processes pay no tail call. */
	if (!tgid_maybe_tracked(bpf_get_current_pid_tgid() >> 32))
		return 0;
	bpf_tail_call(ctx, &rawtp_handlers, nr);
	return 0;
}

/* tp_btf: the arguments of trace_sys_exit(struct pt_regs *regs, long ret); regs is a
 * trusted BTF pointer, read with plain loads. */
SEC("tp_btf/sys_exit")
int hl_btf_sys_exit(__u64 *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx[0];
	return dispatch_exit(ctx, regs->orig_ax, (long)ctx[1]);
}

/* close at the entry of every syscall (trace_sys_enter(struct pt_regs *regs, long id)):
 * the body of hl_enter_close, for the variant that drops the per-syscall tracepoints
 * altogether. */
SEC("tp_btf/sys_enter")
int hl_btf_sys_enter(__u64 *ctx)
{
	if ((long)ctx[1] != NR_CLOSE)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!tgid_maybe_tracked(tgid) || !bpf_map_lookup_elem(&hl_tgids, &tgid))
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx[0];
	long fd = (int)regs->di;
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

/* Empty programs: the cost of each dispatch alone (`rawtp --empty KIND`, dd bs=1). */
SEC("tracepoint/syscalls/sys_exit_read")
int hl_empty_tp(void *ctx) { return 0; }

SEC("tp_btf/sys_exit")
int hl_empty_btf(void *ctx) { return 0; }

SEC("raw_tp/sys_exit")
int hl_empty_raw(void *ctx) { return 0; }
