//! Measurement prototype for scripts/bench-probe (`--socket-hooks`): loads
//! `homelab_ebpf::SOCKHOOKS_OBJ` (sock_ops at the root cgroup, sk_msg and sk_skb on a
//! sockhash of the watched connections), reads its ring buffer and feeds every connection
//! to an httpflow parser, the userspace work of the probe minus the metrics. Not a product:
//! IPv4 server ports only, no TLS, no process names, no connections opened before start.
//!
//! Usage: sockhooks --watch-port PORT [--watch-port PORT...] [--no-data-hooks]
//! Prints `attached` when ready; on SIGINT/SIGTERM prints events, exchanges, statuses,
//! parse errors and ring-buffer drops to stderr.

use std::{
    collections::{BTreeMap, HashMap},
    fs::File,
    os::fd::AsRawFd,
    sync::atomic::{AtomicBool, Ordering},
};

use anyhow::{bail, Context, Result};
use aya::{
    maps::{HashMap as BpfHashMap, PerCpuArray, RingBuf, SockHash},
    programs::{links::CgroupAttachMode, SkMsg, SkSkb, SockOps},
    EbpfLoader,
};
use httpflow::{Connection, Direction, Side};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// `struct sh_event` of bpf/sockhooks.bpf.c, up to its data.
const HDR: usize = 32;

/// Mount point of the cgroup v2 hierarchy (`/sys/fs/cgroup` or, on hybrid hosts,
/// `/sys/fs/cgroup/unified`).
fn cgroup2_root() -> Result<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&"cgroup2"))
        .and_then(|f| f.get(1).map(|p| p.to_string()))
        .context("no cgroup2 mount in /proc/self/mounts")
}

fn main() -> Result<()> {
    let mut ports = vec![];
    let mut data_hooks = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--watch-port" => ports.push(args.next().context("--watch-port PORT")?.parse::<u16>()?),
            "--no-data-hooks" => data_hooks = false,
            other => bail!("unknown argument {other}"),
        }
    }
    if ports.is_empty() {
        bail!("usage: sockhooks --watch-port PORT [--no-data-hooks]");
    }

    let mut ebpf = EbpfLoader::new()
        .override_global("sh_wakeup_bytes", &(256u64 * 1024), true)
        .load(homelab_ebpf::SOCKHOOKS_OBJ)
        .context("load sockhooks object")?;
    {
        let mut map: BpfHashMap<_, u16, u32> =
            ebpf.map_mut("sh_ports").context("sh_ports")?.try_into()?;
        for (i, p) in ports.iter().enumerate() {
            map.insert(p, i as u32, 0)?;
        }
    }
    if data_hooks {
        let socks: SockHash<_, u64> = ebpf.take_map("sh_socks").context("sh_socks")?.try_into()?;
        let sock_fd = socks.fd().try_clone()?;
        let msg: &mut SkMsg = ebpf.program_mut("sh_msg").context("sh_msg")?.try_into()?;
        msg.load()?;
        msg.attach(&sock_fd).context("attach sk_msg")?;
        for name in ["sh_parser", "sh_verdict"] {
            let prog: &mut SkSkb = ebpf.program_mut(name).context("sk_skb")?.try_into()?;
            prog.load()?;
            prog.attach(&sock_fd)
                .with_context(|| format!("attach {name}"))?;
        }
        // The sockhash must outlive the programs' attachment: keep it for the process.
        std::mem::forget(socks);
    }
    let root = cgroup2_root()?;
    let cgroup = File::open(&root).with_context(|| format!("open {root}"))?;
    let ops: &mut SockOps = ebpf
        .program_mut("sh_sockops")
        .context("sh_sockops")?
        .try_into()?;
    ops.load()?;
    // A link (Linux 5.7+) takes no attach flags: links to a cgroup are always multi.
    ops.attach(&cgroup, CgroupAttachMode::Single)
        .context("attach sock_ops")?;

    let mut events = RingBuf::try_from(ebpf.take_map("sh_events").context("sh_events")?)?;
    let stats: PerCpuArray<_, u64> = ebpf.take_map("sh_stats").context("sh_stats")?.try_into()?;
    // SAFETY: plain signal handlers that only store an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    eprintln!("sockhooks: attached, watching ports {ports:?}");

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
            if rec.len() < HDR {
                bad += 1;
                continue;
            }
            let conn = u64::from_ne_bytes(rec[0..8].try_into().unwrap());
            let ts_ns = u64::from_ne_bytes(rec[8..16].try_into().unwrap());
            let len = u32::from_ne_bytes(rec[16..20].try_into().unwrap()) as usize;
            let head_len = u16::from_ne_bytes(rec[24..26].try_into().unwrap()) as usize;
            let (kind, dir) = (rec[30], rec[31]);
            let Some(head) = rec.get(HDR..HDR + head_len) else {
                bad += 1;
                continue;
            };
            match kind {
                homelab_ebpf::EV_OPEN => {
                    conns.insert(conn, Connection::new(Side::Server));
                }
                homelab_ebpf::EV_CLOSE => {
                    if let Some(mut c) = conns.remove(&conn) {
                        c.on_close(ts_ns, &mut out);
                    }
                }
                _ => {
                    let c = conns
                        .entry(conn)
                        .or_insert_with(|| Connection::new(Side::Server));
                    let dir = if dir == homelab_ebpf::DIR_READ {
                        Direction::Read
                    } else {
                        Direction::Write
                    };
                    let seg = httpflow::Segment {
                        len,
                        head,
                        tail: &[],
                        ts_ns,
                    };
                    c.on_segment(dir, seg, &mut out);
                }
            }
            for ex in out.drain(..) {
                n_exchanges += 1;
                *statuses.entry(ex.status).or_default() += 1;
            }
        }
    }
    let drops: u64 = stats
        .get(&homelab_ebpf::STAT_DROPS, 0)
        .map(|v| v.iter().sum())
        .unwrap_or(0);
    let parse_errors: u64 = conns.values().map(|c| c.parse_errors()).sum();
    eprintln!(
        "sockhooks: events {n_events} exchanges {n_exchanges} statuses {statuses:?} open {} \
         parse_errors {parse_errors} bad_records {bad} drops {drops}",
        conns.len()
    );
    Ok(())
}
