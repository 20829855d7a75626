//! Measurement prototype for scripts/bench-probe (`--raw-tp`): loads
//! `homelab_ebpf::RAWTP_OBJ`, whose one `tp_btf/sys_exit` program runs for every syscall
//! and, for accept, accept4, connect and the data syscalls, tail-calls the handler of that
//! syscall number (the same functions as `bpf/probe.bpf.c`'s per-syscall programs) through
//! the `rawtp_handlers` program array. The entry of close stays the probe's per-syscall
//! tracepoint (a `tp_btf/sys_enter` program with `--raw-enter`). Reads the ring buffer and
//! feeds every connection to an httpflow parser (bytes, or the request and response records
//! of kernel framing), the userspace work of the probe minus the metrics. Not a product:
//! server ports only, no TLS, no seeding of connections opened before start.
//!
//! Usage: rawtp --watch-port PORT [--watch-port PORT...] [--raw-enter]
//!        rawtp --empty tracepoint|tracepoint-idle|tp_btf|raw_tp
//! `--empty` attaches only an empty program on `syscalls/sys_exit_read` (or on
//! `sys_exit_getppid`, which the benchmark does not make) or on the raw `sys_exit`, to time
//! the dispatch alone. Prints `attached` when ready; on SIGINT/SIGTERM prints events,
//! exchanges, statuses, parse errors and ring-buffer drops to stderr.

use std::{
    collections::{BTreeMap, HashMap},
    os::fd::AsRawFd,
    sync::atomic::{AtomicBool, Ordering},
};

use anyhow::{bail, Context, Result};
use aya::{
    maps::{HashMap as BpfHashMap, PerCpuArray, ProgramArray, RingBuf},
    programs::{BtfTracePoint, RawTracePoint, TracePoint},
    Btf, Ebpf, EbpfLoader,
};
use homelab_ebpf as abi;
use httpflow::{Connection, Direction, Segment, Side};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn attach_tracepoint(ebpf: &mut Ebpf, prog: &str, tracepoint: &str) -> Result<()> {
    let p: &mut TracePoint = ebpf
        .program_mut(prog)
        .context(prog.to_string())?
        .try_into()?;
    p.load().with_context(|| format!("load {prog}"))?;
    p.attach("syscalls", tracepoint)
        .with_context(|| format!("attach {prog} to syscalls/{tracepoint}"))?;
    Ok(())
}

fn attach_btf(ebpf: &mut Ebpf, btf: &Btf, prog: &str, tracepoint: &str) -> Result<()> {
    let p: &mut BtfTracePoint = ebpf
        .program_mut(prog)
        .context(prog.to_string())?
        .try_into()?;
    p.load(tracepoint, btf)
        .with_context(|| format!("load {prog} (tp_btf/{tracepoint})"))?;
    p.attach()
        .with_context(|| format!("attach {prog} to tp_btf/{tracepoint}"))?;
    Ok(())
}

fn attach_raw(ebpf: &mut Ebpf, prog: &str, tracepoint: &str) -> Result<()> {
    let p: &mut RawTracePoint = ebpf
        .program_mut(prog)
        .context(prog.to_string())?
        .try_into()?;
    p.load().with_context(|| format!("load {prog}"))?;
    p.attach(tracepoint)
        .with_context(|| format!("attach {prog} to raw_tp/{tracepoint}"))?;
    Ok(())
}

/// x86_64 syscall number -> its handler program (bpf/rawtp.bpf.c).
const HANDLERS: [(u32, &str); 12] = [
    (0, "rawtp_read"),
    (1, "rawtp_write"),
    (19, "rawtp_readv"),
    (20, "rawtp_writev"),
    (40, "rawtp_sendfile"),
    (42, "rawtp_connect"),
    (43, "rawtp_accept"),
    (44, "rawtp_write"), // sendto
    (45, "rawtp_recvfrom"),
    (46, "rawtp_sendmsg"),
    (47, "rawtp_recvmsg"),
    (288, "rawtp_accept"), // accept4
];

fn main() -> Result<()> {
    let mut ports = vec![];
    let (mut raw_enter, mut empty) = (false, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--watch-port" => ports.push(args.next().context("--watch-port PORT")?.parse::<u16>()?),
            "--raw-enter" => raw_enter = true,
            "--empty" => empty = Some(args.next().context("--empty KIND")?),
            other => bail!("unknown argument {other}"),
        }
    }
    if ports.is_empty() && empty.is_none() {
        bail!("usage: rawtp --watch-port PORT [--raw-enter] | --empty KIND");
    }

    let mut ebpf = EbpfLoader::new()
        .override_global(abi::WAKEUP_BYTES_GLOBAL, &(256u64 * 1024), true)
        .override_global(abi::WATCH_SERVER_GLOBAL, &1u8, true)
        .override_global(abi::WATCH_CLIENT_GLOBAL, &0u8, true)
        .load(abi::RAWTP_OBJ)
        .context("load rawtp object")?;
    let btf = Btf::from_sys_fs().context("kernel BTF (/sys/kernel/btf/vmlinux)")?;
    match empty.as_deref() {
        Some("tracepoint") => attach_tracepoint(&mut ebpf, "hl_empty_tp", "sys_exit_read")?,
        // A syscall nobody makes in the benchmark: every other syscall pays the per-syscall
        // tracepoints' dispatch (syscall exit work, perf_syscall_exit's bitmap test) alone.
        Some("tracepoint-idle") => attach_tracepoint(&mut ebpf, "hl_empty_tp", "sys_exit_getppid")?,
        Some("tp_btf") => attach_btf(&mut ebpf, &btf, "hl_empty_btf", "sys_exit")?,
        Some("raw_tp") => attach_raw(&mut ebpf, "hl_empty_raw", "sys_exit")?,
        Some(other) => {
            bail!("--empty {other}: expected tracepoint, tracepoint-idle, tp_btf or raw_tp")
        }
        None => {
            let mut map: BpfHashMap<_, u16, u32> = ebpf
                .map_mut(abi::maps::SERVER_PORTS)
                .context("server ports map")?
                .try_into()?;
            for (i, p) in ports.iter().enumerate() {
                map.insert(p, i as u32, 0)?;
            }
            if raw_enter {
                attach_btf(&mut ebpf, &btf, "hl_btf_sys_enter", "sys_enter")?;
            } else {
                attach_tracepoint(&mut ebpf, "hl_enter_close", "sys_enter_close")?;
            }
            let mut handlers: ProgramArray<_> = ebpf
                .take_map("rawtp_handlers")
                .context("rawtp_handlers")?
                .try_into()?;
            for (nr, prog) in HANDLERS {
                let p: &mut BtfTracePoint = ebpf.program_mut(prog).context(prog)?.try_into()?;
                if p.fd().is_err() {
                    // one program for write and sendto, one for accept and accept4
                    p.load("sys_exit", &btf)
                        .with_context(|| format!("load {prog}"))?;
                }
                handlers.set(nr, p.fd()?, 0)?;
            }
            attach_btf(&mut ebpf, &btf, "hl_btf_sys_exit", "sys_exit")?;
            // The array must outlive the attachment: keep it for the process.
            std::mem::forget(handlers);
        }
    }
    drop(btf); // the parsed kernel BTF takes megabytes: not in the reader's RSS

    let mut events = RingBuf::try_from(ebpf.take_map(abi::maps::EVENTS).context("events")?)?;
    let stats: PerCpuArray<_, u64> = ebpf
        .take_map(abi::maps::STATS)
        .context("stats")?
        .try_into()?;
    // SAFETY: plain signal handlers that only store an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    eprintln!("rawtp: attached, watching ports {ports:?}");

    let mut conns: HashMap<u64, Connection> = HashMap::new();
    let mut out = vec![];
    let (mut n_events, mut n_exchanges, mut bad) = (0u64, 0u64, 0u64);
    let mut statuses: BTreeMap<Option<u16>, u64> = BTreeMap::new();
    let fd = events.as_raw_fd();
    while !STOP.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 50) };
        while let Some(rec) = events.next() {
            n_events += 1;
            let Some(ev) = abi::Event::parse(&rec) else {
                bad += 1;
                continue;
            };
            let h = ev.hdr;
            let key = (u64::from(h.tgid) << 32) | u64::from(h.fd as u32);
            let side = if h.side == abi::SIDE_SERVER {
                Side::Server
            } else {
                Side::Client
            };
            match h.kind {
                abi::EV_OPEN => {
                    conns.insert(key, Connection::new(side));
                }
                abi::EV_CLOSE => {
                    if let Some(mut c) = conns.remove(&key) {
                        if h.status != 0 {
                            c.on_framed_response_cut(h.status, h.ts_ns, &mut out);
                        }
                        c.on_close(h.ts_ns, &mut out);
                    }
                }
                // Kernel framing (docs/probe.md, "Kernel framing"): a request line, a status.
                abi::EV_REQUEST => conns
                    .entry(key)
                    .or_insert_with(|| Connection::new(side))
                    .on_framed_request(ev.head, h.ts_ns),
                abi::EV_RESPONSE => conns
                    .entry(key)
                    .or_insert_with(|| Connection::new(side))
                    .on_framed_response(h.status, h.ts_ns, &mut out),
                _ => {
                    let dir = if h.dir == abi::DIR_READ {
                        Direction::Read
                    } else {
                        Direction::Write
                    };
                    let seg = Segment {
                        len: usize::try_from(h.len).unwrap_or(usize::MAX),
                        head: ev.head,
                        tail: ev.tail,
                        ts_ns: h.ts_ns,
                    };
                    conns
                        .entry(key)
                        .or_insert_with(|| Connection::new(side))
                        .on_segment(dir, seg, &mut out);
                }
            }
            for ex in out.drain(..) {
                n_exchanges += 1;
                *statuses.entry(ex.status).or_default() += 1;
            }
        }
    }
    let drops: u64 = stats
        .get(&abi::STAT_DROPS, 0)
        .map(|v| v.iter().sum())
        .unwrap_or(0);
    let parse_errors: u64 = conns.values().map(|c| c.parse_errors()).sum();
    eprintln!(
        "rawtp: events {n_events} exchanges {n_exchanges} statuses {statuses:?} open {} \
         parse_errors {parse_errors} bad_records {bad} drops {drops}",
        conns.len()
    );
    Ok(())
}
