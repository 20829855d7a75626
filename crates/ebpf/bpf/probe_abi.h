/* Layout shared by the BPF programs and homelab-probe. build.rs turns the #defines into Rust
 * constants; the structs are mirrored by hand in crates/ebpf/src/lib.rs. */
#ifndef HL_PROBE_ABI_H
#define HL_PROBE_ABI_H

#define HL_HEAD_MAX 2048 /* bytes captured from the start of each read/write */
#define HL_TAIL_MAX 64   /* bytes captured from the end when the head is not complete */
#define HL_MAX_IOV 8     /* iovec entries walked for readv/writev/recvmsg/sendmsg */
#define HL_TGID_WORDS 65536 /* 64-bit words of the tgid bitmap: 2^22 process ids */

#define HL_WATCH_HEADERS 2147483648 /* bit of a watch map value: the watch's request header
				      * fields are needed (spans), so its connections are not framed
				      * in the kernel */

/* REQUEST and RESPONSE: one HTTP/1.x message framed in the kernel (see "Kernel framing" in
 * docs/probe.md), sent instead of its bytes. */
enum hl_kind {
	HL_EV_OPEN = 1,
	HL_EV_DATA = 2,
	HL_EV_CLOSE = 3,
	HL_EV_REQUEST = 4,
	HL_EV_RESPONSE = 5,
};
enum hl_dir { HL_DIR_READ = 0, HL_DIR_WRITE = 1 };
enum hl_side { HL_SIDE_SERVER = 0, HL_SIDE_CLIENT = 1 };
enum hl_flags {
	HL_F_TLS = 1,        /* plaintext seen through libssl uprobes */
	HL_F_NO_PAYLOAD = 2, /* sendfile: length known, bytes not captured */
};
enum hl_stat { HL_STAT_DROPS = 0, HL_STAT_COUNT = 1 };
enum hl_tgid_flags {
	HL_TGID_TRACKED = 1, /* owns a tracked connection */
	HL_TGID_SSL = 2,     /* has called SSL_read/SSL_write */
	HL_TGID_GO_TLS = 4,  /* has called Go's crypto/tls (*Conn).Read/Write */
};

struct hl_event_hdr {
	__u64 ts_ns;      /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	__u64 len;        /* DATA: bytes the syscall moved */
	__u32 tgid;
	__s32 fd;
	__u32 watch_id;   /* index of the watch rule that matched at open */
	__u16 head_len;   /* DATA: bytes captured at data[0..]; OPEN: 16, the process name */
	__u16 tail_len;   /* DATA: bytes captured at data[HL_HEAD_MAX..] (last bytes of the data) */
	__u8 kind;
	__u8 dir;
	__u8 side;
	__u8 flags;
	__u16 family;     /* OPEN: AF_INET or AF_INET6 */
	__u16 lport;      /* OPEN: local port, host order */
	__u16 rport;      /* OPEN: remote port, host order */
	__u16 status;     /* RESPONSE; CLOSE: of a framed response cut short by the close */
	__u8 raddr[16];   /* OPEN: remote address (IPv4 in the first 4 bytes) */
	__u32 tid;        /* DATA: thread that made the read/write (the kernel's pid) */
};
/* REQUEST: ts_ns is the read that held the whole request (head and body), len its size, and
 * data[0..head_len] the request line without its CRLF. RESPONSE: ts_ns is the write that
 * completed the response, len 0, no data. */

struct hl_event {
	struct hl_event_hdr hdr;
	/* head at [0, HL_HEAD_MAX), tail at [HL_HEAD_MAX, HL_HEAD_MAX + HL_TAIL_MAX); twice the
	 * head size so the verifier accepts head pieces written at a variable offset, and 8
	 * more for the kernel framing's 8-byte loads at offsets masked below 2 * HL_HEAD_MAX. */
	__u8 data[2 * HL_HEAD_MAX + 8];
};

/* Pinned layout: crates/ebpf/src/lib.rs asserts the same numbers on the Rust mirror. */
_Static_assert(sizeof(struct hl_event_hdr) == 64, "hl_event_hdr size");
_Static_assert(__builtin_offsetof(struct hl_event_hdr, watch_id) == 24, "watch_id offset");
_Static_assert(__builtin_offsetof(struct hl_event_hdr, kind) == 32, "kind offset");
_Static_assert(__builtin_offsetof(struct hl_event_hdr, raddr) == 44, "raddr offset");
_Static_assert(__builtin_offsetof(struct hl_event_hdr, tid) == 60, "tid offset");

/* hl_conn.frame: who finds the HTTP/1.x message boundaries of a connection. */
enum hl_frame {
	HL_FRAME_OFF = 0,      /* userspace, from the bytes (always, once the kernel gave up) */
	HL_FRAME_IDLE = 1,     /* the kernel; no framed exchange pending */
	HL_FRAME_REQUEST = 2,  /* a framed request waits for its response */
	HL_FRAME_RESPONSE = 3, /* a framed response has resp_left body bytes still to write */
	HL_FRAME_DRAIN = 4,    /* the same, then userspace: a read was sent as bytes meanwhile */
};

/* Value of the connection map, keyed by (tgid << 32 | fd). */
struct hl_conn {
	__u32 watch_id;
	__u8 side;
	__u8 tls;
	__u8 frame;     /* enum hl_frame */
	__u8 head_req;  /* the framed request pending is a HEAD: its response has no body */
	__u16 status;   /* HL_FRAME_RESPONSE, DRAIN: status of the response being written */
	__u16 _pad;
	__u32 _pad2;
	__u64 resp_left;
};
_Static_assert(sizeof(struct hl_conn) == 24, "hl_conn size");

/* Key of the (tgid, SSL* or Go *tls.Conn) -> fd map. */
struct hl_ssl_key {
	__u64 ssl;
	__u32 tgid;
	__u32 _pad;
};

#endif
