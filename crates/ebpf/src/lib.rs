//! Kernel side of homelab-probe: the compiled BPF object and the layout of the events it
//! sends through the `hl_events` ring buffer (mirror of `bpf/probe_abi.h`).

include!(concat!(env!("OUT_DIR"), "/abi_consts.rs"));

#[repr(C, align(8))]
struct Aligned<B: ?Sized> {
    bytes: B,
}

static ALIGNED_OBJ: &Aligned<[u8]> = &Aligned {
    bytes: *include_bytes!(concat!(env!("OUT_DIR"), "/probe.bpf.o")),
};

/// The BPF ELF object (CO-RE), 8-byte aligned for the ELF parser.
pub static PROBE_OBJ: &[u8] = &ALIGNED_OBJ.bytes;

static ALIGNED_BYTES_OBJ: &Aligned<[u8]> = &Aligned {
    bytes: *include_bytes!(concat!(env!("OUT_DIR"), "/probe-bytes.bpf.o")),
};

/// The same programs without kernel framing (every read and write sent as bytes): for
/// kernels without `bpf_loop` (before 5.17), and `--no-kernel-framing`.
pub static PROBE_BYTES_OBJ: &[u8] = &ALIGNED_BYTES_OBJ.bytes;

static ALIGNED_SOCKHOOKS_OBJ: &Aligned<[u8]> = &Aligned {
    bytes: *include_bytes!(concat!(env!("OUT_DIR"), "/sockhooks.bpf.o")),
};

/// Measurement prototype of socket-level hooks (`bpf/sockhooks.bpf.c`): not used by the
/// probe, loaded by `crates/probe/examples/sockhooks.rs` for `scripts/bench-probe`.
pub static SOCKHOOKS_OBJ: &[u8] = &ALIGNED_SOCKHOOKS_OBJ.bytes;

static ALIGNED_RAWTP_OBJ: &Aligned<[u8]> = &Aligned {
    bytes: *include_bytes!(concat!(env!("OUT_DIR"), "/rawtp.bpf.o")),
};

/// Measurement prototype of one raw `sys_exit` tracepoint dispatching on the syscall number
/// (`bpf/rawtp.bpf.c`, which includes `bpf/probe.bpf.c`): not used by the probe, loaded by
/// `crates/probe/examples/rawtp.rs` for `scripts/bench-probe`.
pub static RAWTP_OBJ: &[u8] = &ALIGNED_RAWTP_OBJ.bytes;

/// Tracepoint programs: (program name in the object, category, tracepoint name).
pub const TRACEPOINTS: &[(&str, &str, &str)] = &[
    ("hl_exit_accept", "syscalls", "sys_exit_accept"),
    ("hl_exit_accept4", "syscalls", "sys_exit_accept4"),
    ("hl_exit_connect", "syscalls", "sys_exit_connect"),
    ("hl_exit_read", "syscalls", "sys_exit_read"),
    ("hl_exit_recvfrom", "syscalls", "sys_exit_recvfrom"),
    ("hl_exit_readv", "syscalls", "sys_exit_readv"),
    ("hl_exit_recvmsg", "syscalls", "sys_exit_recvmsg"),
    ("hl_exit_write", "syscalls", "sys_exit_write"),
    ("hl_exit_sendto", "syscalls", "sys_exit_sendto"),
    ("hl_exit_writev", "syscalls", "sys_exit_writev"),
    ("hl_exit_sendmsg", "syscalls", "sys_exit_sendmsg"),
    ("hl_exit_sendfile64", "syscalls", "sys_exit_sendfile64"),
    ("hl_enter_close", "syscalls", "sys_enter_close"),
];

/// libssl uprobes: (program name, symbol, is return probe). A program can be attached to
/// several symbols.
pub const SSL_UPROBES: &[(&str, &str, bool)] = &[
    ("hl_ssl_read", "SSL_read", false),
    ("hl_ssl_read_ret", "SSL_read", true),
    ("hl_ssl_read_ex", "SSL_read_ex", false),
    ("hl_ssl_read_ex_ret", "SSL_read_ex", true),
    ("hl_ssl_write", "SSL_write", false),
    ("hl_ssl_write_ret", "SSL_write", true),
    ("hl_ssl_write_ex", "SSL_write_ex", false),
    ("hl_ssl_write_ex_ret", "SSL_write_ex", true),
    // Bind the SSL* to the socket read inside, report no plaintext.
    ("hl_ssl_bind", "SSL_do_handshake", false),
    ("hl_ssl_bind_ret", "SSL_do_handshake", true),
    ("hl_ssl_bind", "SSL_peek", false),
    ("hl_ssl_bind_ret", "SSL_peek", true),
    ("hl_ssl_bind", "SSL_peek_ex", false),
    ("hl_ssl_bind_ret", "SSL_peek_ex", true),
    ("hl_ssl_free", "SSL_free", false),
];

/// Go crypto/tls uprobes: (entry program, program for each RET, Go function).
pub const GO_TLS_UPROBES: &[(&str, &str, &str)] = &[
    (
        "hl_go_tls_read",
        "hl_go_tls_read_ret",
        "crypto/tls.(*Conn).Read",
    ),
    (
        "hl_go_tls_write",
        "hl_go_tls_write_ret",
        "crypto/tls.(*Conn).Write",
    ),
    // Before the first Read: net/http runs the handshake itself.
    (
        "hl_go_tls_handshake",
        "hl_go_tls_handshake_ret",
        "crypto/tls.(*Conn).handshakeContext",
    ),
];

/// Map names.
pub mod maps {
    pub const EVENTS: &str = "hl_events";
    pub const SERVER_PORTS: &str = "hl_server_ports";
    pub const CLIENT_PORTS: &str = "hl_client_ports";
    pub const CGROUPS: &str = "hl_cgroups";
    pub const TGIDS: &str = "hl_tgids";
    pub const TGID_BITS: &str = "hl_tgid_bits";
    pub const CONNS: &str = "hl_conns";
    pub const STATS: &str = "hl_stats";
}

/// Global set by the loader: bytes waiting in the ring that force a reader wakeup.
pub const WAKEUP_BYTES_GLOBAL: &str = "hl_wakeup_bytes";
/// Globals set by the loader: 0 when no watch can match that side's new connections.
pub const WATCH_SERVER_GLOBAL: &str = "hl_watch_server";
pub const WATCH_CLIENT_GLOBAL: &str = "hl_watch_client";
/// Global set by the loader (kernel framing object only): 1 on kernels whose verifier checks
/// a bpf_loop callback for one iteration only (before 6.8).
pub const CALLBACKS_ONCE_GLOBAL: &str = "hl_callbacks_once";

pub const EV_OPEN: u8 = 1;
pub const EV_DATA: u8 = 2;
pub const EV_CLOSE: u8 = 3;
pub const EV_REQUEST: u8 = 4;
pub const EV_RESPONSE: u8 = 5;
/// Bit of a watch map value (`HL_WATCH_HEADERS`): the watch's connections are not framed in
/// the kernel, because their request header fields are needed.
pub const WATCH_HEADERS: u32 = HL_WATCH_HEADERS as u32;
pub const DIR_READ: u8 = 0;
pub const DIR_WRITE: u8 = 1;
pub const SIDE_SERVER: u8 = 0;
pub const SIDE_CLIENT: u8 = 1;
pub const F_TLS: u8 = 1;
pub const F_NO_PAYLOAD: u8 = 2;
pub const STAT_DROPS: u32 = 0;

/// `struct hl_event_hdr`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct EventHdr {
    pub ts_ns: u64,
    pub len: u64,
    pub tgid: u32,
    pub fd: i32,
    pub watch_id: u32,
    pub head_len: u16,
    pub tail_len: u16,
    pub kind: u8,
    pub dir: u8,
    pub side: u8,
    pub flags: u8,
    pub family: u16,
    pub lport: u16,
    pub rport: u16,
    /// RESPONSE; CLOSE: of a framed response cut short by the close.
    pub status: u16,
    pub raddr: [u8; 16],
    /// DATA: the thread that made the read/write.
    pub tid: u32,
}

/// `struct hl_conn` (value of `hl_conns`, key `tgid << 32 | fd`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Conn {
    pub watch_id: u32,
    pub side: u8,
    pub tls: u8,
    /// `enum hl_frame`; 0: userspace frames the connection from its bytes.
    pub frame: u8,
    pub head_req: u8,
    pub status: u16,
    pub _pad: u16,
    pub _pad2: u32,
    pub resp_left: u64,
}

pub const EVENT_HDR_SIZE: usize = std::mem::size_of::<EventHdr>();

const _: () = {
    assert!(EVENT_HDR_SIZE == 64);
    assert!(std::mem::offset_of!(EventHdr, watch_id) == 24);
    assert!(std::mem::offset_of!(EventHdr, kind) == 32);
    assert!(std::mem::offset_of!(EventHdr, raddr) == 44);
    assert!(std::mem::offset_of!(EventHdr, tid) == 60);
    assert!(std::mem::size_of::<Conn>() == 24);
};

/// A decoded ring-buffer record: header plus captured head and tail.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub hdr: EventHdr,
    pub head: &'a [u8],
    pub tail: &'a [u8],
}

impl<'a> Event<'a> {
    /// Decodes one record; `None` when it is shorter than its header says.
    pub fn parse(record: &'a [u8]) -> Option<Self> {
        if record.len() < EVENT_HDR_SIZE {
            return None;
        }
        // SAFETY: EventHdr is plain old data and the length was checked; read_unaligned
        // because ring-buffer records are only 8-byte aligned by convention.
        let hdr: EventHdr = unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) };
        let data = &record[EVENT_HDR_SIZE..];
        let head_len = usize::from(hdr.head_len).min(HL_HEAD_MAX);
        let tail_len = usize::from(hdr.tail_len).min(HL_TAIL_MAX);
        let head = data.get(..head_len)?;
        let tail = if tail_len == 0 {
            &[][..]
        } else {
            data.get(HL_HEAD_MAX..HL_HEAD_MAX + tail_len)?
        };
        Some(Event { hdr, head, tail })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_is_an_elf_for_bpf() {
        assert_eq!(&PROBE_OBJ[..4], b"\x7fELF");
        // e_machine at offset 18: EM_BPF = 247
        assert_eq!(u16::from_le_bytes([PROBE_OBJ[18], PROBE_OBJ[19]]), 247);
        assert_eq!(PROBE_OBJ.as_ptr() as usize % 8, 0);
    }

    #[test]
    fn constants_come_from_the_header() {
        assert_eq!(HL_HEAD_MAX, 2048);
        assert_eq!(HL_TAIL_MAX, 64);
    }

    fn record(hdr: EventHdr, data: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; EVENT_HDR_SIZE];
        // SAFETY: v holds EVENT_HDR_SIZE bytes.
        unsafe { std::ptr::write_unaligned(v.as_mut_ptr().cast(), hdr) };
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_head_and_tail() {
        let hdr = EventHdr {
            kind: EV_DATA,
            len: 5000,
            head_len: 3,
            tail_len: 2,
            ..Default::default()
        };
        let mut data = vec![0u8; HL_HEAD_MAX + 2];
        data[..3].copy_from_slice(b"GET");
        data[HL_HEAD_MAX..].copy_from_slice(b"\r\n");
        let rec = record(hdr, &data);
        let ev = Event::parse(&rec).unwrap();
        assert_eq!(ev.head, b"GET");
        assert_eq!(ev.tail, b"\r\n");
        assert_eq!(ev.hdr.len, 5000);
    }

    #[test]
    fn rejects_short_records() {
        assert!(Event::parse(&[0u8; 10]).is_none());
        let hdr = EventHdr {
            head_len: 100,
            ..Default::default()
        };
        assert!(Event::parse(&record(hdr, b"abc")).is_none());
    }
}
