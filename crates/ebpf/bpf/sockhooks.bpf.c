// SPDX-License-Identifier: GPL-2.0
/* Measurement prototype, not loaded by homelab-probe: socket-level hooks that run only for
 * watched TCP connections (docs/probe.md, "Cost"). A cgroup sock_ops program, attached at
 * the root cgroup, puts connections whose local port (passive open) or remote port (active
 * open) is watched into a sockhash; an sk_msg program (egress, process context) and an
 * sk_skb stream parser + verdict (ingress, softirq) attached to that sockhash copy the first
 * bytes of each message into a ring buffer. Unwatched sockets run only the sock_ops program,
 * a few times per connection, and nothing per read or write. */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "probe_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* UAPI (include/uapi/linux/bpf.h): only the leading fields used, at their ABI offsets. */
enum { BPF_MAP_TYPE_SOCKHASH = 18 };
enum { SK_DROP = 0, SK_PASS = 1 };
enum { BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB = 5, BPF_SOCK_OPS_STATE_CB = 10 };
enum { BPF_SOCK_OPS_STATE_CB_FLAG = 4 };
#define TCP_CLOSE 7

struct bpf_sock_ops {
	__u32 op;
	__u32 args[4];
	__u32 family;
	__u32 remote_ip4;
	__u32 local_ip4;
	__u32 remote_ip6[4];
	__u32 local_ip6[4];
	__u32 remote_port; /* network order, in the upper 16 bits on little-endian */
	__u32 local_port;  /* host order */
};

struct sk_msg_md {
	union { void *data; __u64 _d; } __attribute__((aligned(8)));
	union { void *data_end; __u64 _e; } __attribute__((aligned(8)));
	__u32 family;
	__u32 remote_ip4;
	__u32 local_ip4;
	__u32 remote_ip6[4];
	__u32 local_ip6[4];
	__u32 remote_port;
	__u32 local_port;
	__u32 size; /* bytes of the whole message */
};

struct __sk_buff {
	__u32 len;
	__u32 pkt_type, mark, queue_mapping, protocol, vlan_present, vlan_tci, vlan_proto;
	__u32 priority, ingress_ifindex, ifindex, tc_index, cb[5], hash, tc_classid;
	__u32 data, data_end, napi_id, family, remote_ip4, local_ip4;
	__u32 remote_ip6[4];
	__u32 local_ip6[4];
	__u32 remote_port;
	__u32 local_port;
};

/* One record per message, keyed by the connection's addresses (no fd here; sk_msg
 * programs cannot call bpf_get_socket_cookie). IPv4 only in this prototype. */
struct sh_event {
	__u64 conn;
	__u64 ts_ns;
	__u32 len;
	__u32 tgid; /* sk_msg: the writer; sk_skb: 0 (softirq, no process) */
	__u16 head_len;
	__u16 lport;
	__u16 rport;
	__u8 kind; /* HL_EV_OPEN or HL_EV_DATA */
	__u8 dir;  /* HL_DIR_READ (ingress) or HL_DIR_WRITE (egress) */
	__u8 data[HL_HEAD_MAX];
};

volatile const __u64 sh_wakeup_bytes = 256 * 1024;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} sh_events SEC(".maps");

/* Watched local (server) ports -> watch id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u32);
} sh_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} sh_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sh_event);
} sh_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HL_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} sh_stats SEC(".maps");

static __always_inline __u64 conn_of(__u32 remote_ip4, __u16 lport, __u16 rport)
{
	return ((__u64)remote_ip4 << 32) | ((__u32)lport << 16) | rport;
}

#define SH_HDR_SIZE (__builtin_offsetof(struct sh_event, data))

static __always_inline struct sh_event *scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&sh_scratch, &zero);
}

static __always_inline void emit(struct sh_event *ev, __u64 size)
{
	if (size > sizeof(*ev))
		size = sizeof(*ev);
	__u64 avail = bpf_ringbuf_query(&sh_events, BPF_RB_AVAIL_DATA);
	__u64 end = avail + size + 16, t = sh_wakeup_bytes;
	__u64 flag = ((avail < t && end >= t) || avail >= 8 * t) ? BPF_RB_FORCE_WAKEUP
								  : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&sh_events, ev, size, flag)) {
		__u32 idx = HL_STAT_DROPS;
		__u64 *v = bpf_map_lookup_elem(&sh_stats, &idx);
		if (v)
			*v += 1;
	}
}

/* Runs for every TCP socket of the host a few times per connection (no callback flags
 * are set on unwatched sockets). Watched ones also report their close (state callback). */
SEC("sockops")
int sh_sockops(struct bpf_sock_ops *ops)
{
	__u32 op = ops->op;
	__u8 kind;
	if (op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		kind = HL_EV_OPEN;
	else if (op == BPF_SOCK_OPS_STATE_CB && ops->args[1] == TCP_CLOSE)
		kind = HL_EV_CLOSE;
	else
		return 1;
	__u16 lport = ops->local_port;
	if (!bpf_map_lookup_elem(&sh_ports, &lport))
		return 1;
	__u16 rport = bpf_ntohl(ops->remote_port);
	__u64 conn = conn_of(ops->remote_ip4, lport, rport);
	if (kind == HL_EV_OPEN) {
		bpf_sock_hash_update(ops, &sh_socks, &conn, BPF_NOEXIST);
		bpf_sock_ops_cb_flags_set(ops, BPF_SOCK_OPS_STATE_CB_FLAG);
	}
	struct sh_event *ev = scratch();
	if (!ev)
		return 1;
	ev->conn = conn;
	ev->ts_ns = bpf_ktime_get_ns();
	ev->len = 0;
	ev->tgid = 0;
	ev->head_len = 0;
	ev->lport = lport;
	ev->rport = rport;
	ev->kind = kind;
	ev->dir = 0;
	emit(ev, SH_HDR_SIZE);
	return 1;
}

/* Egress: runs in the writer's sendmsg/sendfile, before the bytes are queued. */
SEC("sk_msg")
int sh_msg(struct sk_msg_md *msg)
{
	struct sh_event *ev = scratch();
	if (!ev)
		return SK_PASS;
	void *data = msg->data, *data_end = msg->data_end;
	__u64 n = data_end - data;
	if (n > HL_HEAD_MAX)
		n = HL_HEAD_MAX;
	asm volatile("" : "+r"(n));
	if (n > HL_HEAD_MAX)
		n = HL_HEAD_MAX;
	if (n)
		bpf_probe_read_kernel(ev->data, n, data);
	ev->conn = conn_of(msg->remote_ip4, msg->local_port, bpf_ntohl(msg->remote_port));
	ev->ts_ns = bpf_ktime_get_ns();
	ev->len = msg->size;
	ev->tgid = bpf_get_current_pid_tgid() >> 32;
	ev->head_len = n;
	ev->lport = msg->local_port;
	ev->rport = bpf_ntohl(msg->remote_port);
	ev->kind = HL_EV_DATA;
	ev->dir = HL_DIR_WRITE;
	emit(ev, SH_HDR_SIZE + n);
	return SK_PASS;
}

/* Ingress: the stream parser makes each skb one message; the verdict copies its head and
 * passes it on to the socket's receive queue. */
SEC("sk_skb/stream_parser")
int sh_parser(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int sh_verdict(struct __sk_buff *skb)
{
	struct sh_event *ev = scratch();
	if (!ev)
		return SK_PASS;
	__u64 len = skb->len;
	__u64 n = len;
	asm volatile("" : "+r"(n));
	if (n > HL_HEAD_MAX)
		n = HL_HEAD_MAX;
	if (n == 0)
		return SK_PASS;
	if (bpf_skb_load_bytes(skb, 0, ev->data, n))
		n = 0;
	ev->conn = conn_of(skb->remote_ip4, skb->local_port, bpf_ntohl(skb->remote_port));
	ev->ts_ns = bpf_ktime_get_ns();
	ev->len = len;
	ev->tgid = 0;
	ev->head_len = n;
	ev->lport = skb->local_port;
	ev->rport = bpf_ntohl(skb->remote_port);
	ev->kind = HL_EV_DATA;
	ev->dir = HL_DIR_READ;
	emit(ev, SH_HDR_SIZE + n);
	return SK_PASS;
}
