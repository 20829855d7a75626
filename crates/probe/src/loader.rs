//! Loads the embedded BPF object with aya, fills the watch maps, attaches the tracepoints,
//! the libssl uprobes and the Go crypto/tls ones (crate::gotls), and explains failures in
//! terms of capabilities and kernel features.

use std::{collections::BTreeSet, fs, path::Path};

use anyhow::{anyhow, Context, Result};
use aya::{
    maps::{HashMap, MapData, PerCpuArray, RingBuf},
    programs::{uprobe::UProbeScope, TracePoint, UProbe},
    Ebpf, EbpfLoader,
};
use homelab_ebpf::{self as abi, maps};

/// `struct hl_conn` as a map value.
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct ConnValue(pub abi::Conn);
// SAFETY: repr(C) struct of integers with explicit padding fields.
unsafe impl aya::Pod for ConnValue {}

/// The maps userspace keeps using after start.
pub struct Maps {
    pub events: RingBuf<MapData>,
    pub conns: HashMap<MapData, u64, ConnValue>,
    pub tgids: HashMap<MapData, u32, u32>,
    pub tgid_bits: MapData,
    pub cgroups: HashMap<MapData, u64, u32>,
    pub stats: PerCpuArray<MapData, u64>,
}

pub struct Probe {
    /// Owns the programs and their links: dropping it detaches everything.
    pub ebpf: Ebpf,
    pub maps: Maps,
    /// libssl uprobes, None when disabled or not loadable.
    pub tls: Option<Tls>,
    /// Go crypto/tls uprobes, None when disabled or not loadable.
    pub go_tls: Option<crate::gotls::GoTls>,
}

pub struct LoadOptions<'a> {
    pub server_ports: &'a [(u16, u32)],
    pub client_ports: &'a [(u16, u32)],
    /// Unit or container watches are configured (they match both sides).
    pub cgroups: bool,
    pub ring_buffer_kib: u32,
    pub tls: bool,
    pub libssl: &'a [String],
    pub go_binaries: &'a [String],
    /// Executables with OpenSSL linked in statically, besides the Node.js ones found.
    pub ssl_binaries: &'a [String],
    /// Frame HTTP/1.x exchanges of server-side connections in the kernel where it can
    /// (docs/probe.md, "Kernel framing"); needs `bpf_loop` (Linux 5.17).
    pub kernel_framing: bool,
}

const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

fn effective_caps() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

pub fn has_cap_sys_admin() -> bool {
    effective_caps() & (1u64 << CAP_SYS_ADMIN) != 0
}

/// Capabilities the probe needs and does not have, by name.
pub fn missing_capabilities() -> Vec<&'static str> {
    let caps = effective_caps();
    let has = |c: u32| caps & (1u64 << c) != 0;
    let admin = has(CAP_SYS_ADMIN);
    let mut missing = vec![];
    if !has(CAP_BPF) && !admin {
        missing.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) && !admin {
        missing.push("CAP_PERFMON");
    }
    if !has(CAP_SYS_PTRACE) {
        missing.push("CAP_SYS_PTRACE (to read /proc/PID/fd of other users' processes)");
    }
    if !has(CAP_DAC_READ_SEARCH) {
        missing.push("CAP_DAC_READ_SEARCH (to read tracefs event ids)");
    }
    missing
}

fn preflight() -> Result<()> {
    let missing: Vec<_> = missing_capabilities()
        .into_iter()
        .filter(|c| *c == "CAP_BPF" || *c == "CAP_PERFMON")
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "missing capabilities {}: run as root, or grant CAP_BPF and CAP_PERFMON (plus \
             CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE for /proc and tracefs)",
            missing.join(", ")
        );
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        anyhow::bail!(
            "kernel BTF missing: /sys/kernel/btf/vmlinux does not exist; the probe needs a kernel \
             built with CONFIG_DEBUG_INFO_BTF=y (CO-RE relocation of the socket structures)"
        );
    }
    ensure_tracefs()
}

/// Tracepoint ids are read from tracefs; mount it when the kernel has it but nobody did.
fn ensure_tracefs() -> Result<()> {
    let events = [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ];
    for p in events {
        match fs::metadata(p) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => anyhow::bail!(
                "cannot read {p}: permission denied (needs root or CAP_DAC_READ_SEARCH)"
            ),
            Err(_) => {}
        }
    }
    let target = c"/sys/kernel/tracing";
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 && Path::new(events[0]).exists() {
        eprintln!("homelab-probe: mounted tracefs on /sys/kernel/tracing");
        return Ok(());
    }
    anyhow::bail!(
        "tracefs is not mounted (neither /sys/kernel/tracing nor /sys/kernel/debug/tracing) and \
         mounting it failed ({}): the kernel needs CONFIG_FTRACE_SYSCALLS and tracefs",
        std::io::Error::last_os_error()
    )
}

/// The running kernel's release when its version is below major.minor.
fn release_older_than(major: u32, minor: u32) -> Option<String> {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let release = release.trim().to_string();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    let version = (parts.next()??, parts.next()??);
    (version < (major, minor)).then_some(release)
}

fn explain(err: impl std::fmt::Display, what: &str) -> anyhow::Error {
    let text = err.to_string();
    let missing = missing_capabilities();
    let perm = text.contains("Operation not permitted") || text.contains("Permission denied");
    let hint = if perm {
        let bpf: Vec<_> = missing
            .iter()
            .filter(|c| c.starts_with("CAP_BPF") || c.starts_with("CAP_PERFMON"))
            .collect();
        if bpf.is_empty() {
            "permission denied although CAP_BPF and CAP_PERFMON are present: check \
             kernel.unprivileged_bpf_disabled, kernel.perf_event_paranoid, LSM policy (lockdown)"
                .to_string()
        } else {
            format!(
                "permission denied: missing {}; run as root or grant them",
                bpf.iter().map(|s| **s).collect::<Vec<_>>().join(", ")
            )
        }
    } else if text.contains("bpf_task_pt_regs") || text.contains("unknown func") {
        "the kernel lacks a BPF helper the probe uses (needs Linux 5.15+: ring buffer, \
         bpf_task_pt_regs, bpf_get_current_task_btf)"
            .to_string()
    } else if text.contains("No such file or directory") && what.starts_with("tracepoint") {
        "the tracepoint does not exist: the kernel needs CONFIG_FTRACE_SYSCALLS".to_string()
    } else if let Some(release) = release_older_than(5, 15) {
        // The verifier's own words for a missing feature vary (e.g. 5.10 refuses atomic
        // instructions with "BPF_STX uses reserved fields").
        format!("Linux {release} is older than 5.15, the oldest kernel the probe supports")
    } else {
        String::new()
    };
    if hint.is_empty() {
        anyhow!("{what}: {text}")
    } else {
        anyhow!("{what}: {hint}\n  cause: {text}")
    }
}

pub fn load(opts: &LoadOptions<'_>) -> Result<Probe> {
    preflight()?;
    if !opts.kernel_framing {
        return load_object(opts, false);
    }
    if let Some(release) = release_older_than(5, 17) {
        eprintln!(
            "homelab-probe: Linux {release} has no bpf_loop (5.17): HTTP is framed in \
             userspace only"
        );
        return load_object(opts, false);
    }
    load_object(opts, true).or_else(|e| {
        let first = format!("{e:#}");
        let first = first.lines().next().unwrap_or_default();
        eprintln!(
            "homelab-probe: warning: the kernel framing programs did not load ({first}); \
             HTTP is framed in userspace only"
        );
        load_object(opts, false)
    })
}

/// Loads one of the two objects (with or without kernel framing) and attaches it.
fn load_object(opts: &LoadOptions<'_>, framing: bool) -> Result<Probe> {
    let ring_bytes = (opts.ring_buffer_kib.max(64) as u64 * 1024).next_power_of_two();
    let ring_bytes = u32::try_from(ring_bytes).context("ring buffer too large")?;
    let wakeup: u64 = (u64::from(ring_bytes) / 16).max(4096);
    let watch_server = u8::from(opts.cgroups || !opts.server_ports.is_empty());
    let watch_client = u8::from(opts.cgroups || !opts.client_ports.is_empty());
    let mut loader = EbpfLoader::new();
    loader
        .map_max_entries(maps::EVENTS, ring_bytes)
        .override_global(abi::WAKEUP_BYTES_GLOBAL, &wakeup, true)
        .override_global(abi::WATCH_SERVER_GLOBAL, &watch_server, true)
        .override_global(abi::WATCH_CLIENT_GLOBAL, &watch_client, true);
    // Verifiers before 6.8 check a bpf_loop callback for one iteration only (see
    // hl_callbacks_once in probe.bpf.c).
    let callbacks_once = u8::from(release_older_than(6, 8).is_some());
    if framing {
        loader.override_global(abi::CALLBACKS_ONCE_GLOBAL, &callbacks_once, true);
    }
    let object = if framing {
        abi::PROBE_OBJ
    } else {
        abi::PROBE_BYTES_OBJ
    };
    let mut ebpf = loader
        .load(object)
        .map_err(|e| explain(format!("{e:#} ({e:?})"), "loading the BPF object"))?;

    let mut server: HashMap<_, u16, u32> = HashMap::try_from(
        ebpf.map_mut(maps::SERVER_PORTS)
            .context("map hl_server_ports")?,
    )?;
    for &(port, watch) in opts.server_ports {
        server.insert(port, watch, 0)?;
    }
    let mut client: HashMap<_, u16, u32> = HashMap::try_from(
        ebpf.map_mut(maps::CLIENT_PORTS)
            .context("map hl_client_ports")?,
    )?;
    for &(port, watch) in opts.client_ports {
        client.insert(port, watch, 0)?;
    }

    // All loaded before any is attached: a program the verifier refuses then leaves nothing
    // attached, and the other object can be tried.
    for &(name, _, _) in abi::TRACEPOINTS {
        let prog: &mut TracePoint = ebpf
            .program_mut(name)
            .with_context(|| format!("program {name} missing from the object"))?
            .try_into()?;
        prog.load()
            .map_err(|e| explain(format!("{e}"), &format!("loading {name}")))?;
    }
    for &(name, category, tracepoint) in abi::TRACEPOINTS {
        let what = format!("tracepoint {category}/{tracepoint}");
        let prog: &mut TracePoint = ebpf
            .program_mut(name)
            .with_context(|| format!("program {name} missing from the object"))?
            .try_into()?;
        prog.attach(category, tracepoint)
            .map_err(|e| explain(format!("{e:#}: {e:?}"), &what))?;
    }

    let tls = if opts.tls {
        Tls::load(&mut ebpf, opts.libssl, opts.ssl_binaries).map(|mut tls| {
            tls.attach_new(&mut ebpf);
            tls
        })
    } else {
        None
    };
    let go_tls = if opts.tls {
        crate::gotls::GoTls::load(&mut ebpf, opts.go_binaries).map(|mut go| {
            go.attach_new(&mut ebpf);
            go
        })
    } else {
        None
    };

    let take = |ebpf: &mut Ebpf, name: &str| {
        ebpf.take_map(name)
            .with_context(|| format!("map {name} missing from the object"))
    };
    let maps = Maps {
        events: RingBuf::try_from(take(&mut ebpf, maps::EVENTS)?)?,
        conns: HashMap::try_from(take(&mut ebpf, maps::CONNS)?)?,
        tgids: HashMap::try_from(take(&mut ebpf, maps::TGIDS)?)?,
        tgid_bits: match take(&mut ebpf, maps::TGID_BITS)? {
            aya::maps::Map::Array(data) => data,
            _ => anyhow::bail!("map {} is not an array", maps::TGID_BITS),
        },
        cgroups: HashMap::try_from(take(&mut ebpf, maps::CGROUPS)?)?,
        stats: PerCpuArray::try_from(take(&mut ebpf, maps::STATS)?)?,
    };
    Ok(Probe {
        ebpf,
        maps,
        tls,
        go_tls,
    })
}

/// libssl shared objects: configured paths, those mapped by running processes, and the
/// usual distribution locations.
pub fn libssl_candidates(configured: &[String]) -> Vec<String> {
    let mut found = BTreeSet::new();
    let mut add = |p: &str| {
        if let Ok(real) = fs::canonicalize(p) {
            found.insert(real.to_string_lossy().to_string());
        }
    };
    for p in configured {
        add(p);
    }
    if !configured.is_empty() {
        return found.into_iter().collect();
    }
    for pid in crate::procfs::pids() {
        let Ok(maps) = fs::read_to_string(format!("/proc/{pid}/maps")) else {
            continue;
        };
        for line in maps.lines() {
            if let Some(path) = line.split_whitespace().nth(5) {
                let file = path.rsplit('/').next().unwrap_or("");
                if file.starts_with("libssl.so") {
                    add(path);
                }
            }
        }
    }
    for dir in [
        "/usr/lib/x86_64-linux-gnu",
        "/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ] {
        for so in ["libssl.so.3", "libssl.so.1.1"] {
            add(&format!("{dir}/{so}"));
        }
    }
    found.into_iter().collect()
}

/// File names of executables that link OpenSSL statically and export its symbols: Node.js
/// (a distribution's node linked against libssl.so has no SSL_read of its own and is
/// skipped quietly: its libssl is attached).
const STATIC_OPENSSL_EXES: &[&str] = &["node", "nodejs"];

/// Executables with their own OpenSSL: configured ones, those of running processes whose
/// file name is in [`STATIC_OPENSSL_EXES`], and those names in the usual directories.
pub fn static_openssl_candidates(configured: &[String]) -> Vec<String> {
    let mut found = BTreeSet::new();
    let mut add = |p: &Path| {
        if let Ok(real) = fs::canonicalize(p) {
            found.insert(real.to_string_lossy().to_string());
        }
    };
    for p in configured {
        add(Path::new(p));
    }
    let named = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| STATIC_OPENSSL_EXES.contains(&n))
    };
    for pid in crate::procfs::pids() {
        if let Ok(exe) = fs::read_link(format!("/proc/{pid}/exe")) {
            if named(&exe) {
                add(Path::new(&format!("/proc/{pid}/exe")));
            }
        }
    }
    for dir in ["/usr/bin", "/usr/local/bin"] {
        for exe in STATIC_OPENSSL_EXES {
            add(&Path::new(dir).join(exe));
        }
    }
    found.into_iter().collect()
}

/// The libssl uprobes. TLS is optional, so failures are warnings. Libraries that show up
/// later (a service started after the probe, a new Nix store path) are attached by
/// [`Tls::attach_new`], called periodically.
pub struct Tls {
    configured: Vec<String>,
    configured_binaries: Vec<String>,
    pub attached: BTreeSet<String>,
    failed: BTreeSet<String>,
}

impl Tls {
    /// Loads the uprobe programs; None when they cannot be loaded.
    pub fn load(ebpf: &mut Ebpf, configured: &[String], binaries: &[String]) -> Option<Tls> {
        let names: BTreeSet<&str> = abi::SSL_UPROBES.iter().map(|&(name, _, _)| name).collect();
        for name in names {
            let prog: &mut UProbe = ebpf.program_mut(name)?.try_into().ok()?;
            if let Err(e) = prog.load() {
                eprintln!("homelab-probe: warning: TLS disabled, loading {name}: {e}");
                return None;
            }
        }
        Some(Tls {
            configured: configured.to_vec(),
            configured_binaries: binaries.to_vec(),
            attached: BTreeSet::new(),
            failed: BTreeSet::new(),
        })
    }

    /// Attaches to every libssl (or executable with its own OpenSSL) not seen yet; returns
    /// the newly attached ones.
    pub fn attach_new(&mut self, ebpf: &mut Ebpf) -> Vec<String> {
        let mut new = vec![];
        let libs = libssl_candidates(&self.configured)
            .into_iter()
            .map(|l| (l, true));
        let exes = static_openssl_candidates(&self.configured_binaries)
            .into_iter()
            .map(|e| {
                let configured = self
                    .configured_binaries
                    .iter()
                    .any(|c| fs::canonicalize(c).is_ok_and(|c| c.to_string_lossy() == e));
                (e, configured)
            });
        for (lib, must_have) in libs.chain(exes) {
            if self.attached.contains(&lib) || self.failed.contains(&lib) {
                continue;
            }
            let mut symbols = 0;
            for &(name, symbol, _) in abi::SSL_UPROBES {
                let prog: &mut UProbe = match ebpf.program_mut(name).map(TryInto::try_into) {
                    Some(Ok(p)) => p,
                    _ => continue,
                };
                match prog.attach(symbol, lib.as_str(), UProbeScope::AllProcesses) {
                    Ok(_) => symbols += 1,
                    // A node linked against libssl.so: nothing of its own to attach to.
                    Err(e) if !must_have && symbols == 0 && e.to_string().contains("symbol") => {
                        break
                    }
                    // Old libssl has no SSL_read_ex/SSL_write_ex/SSL_peek_ex: the others
                    // suffice.
                    Err(e) if symbol.ends_with("_ex") && e.to_string().contains("symbol") => {}
                    Err(e) => {
                        let hint = if !has_cap_sys_admin() {
                            " (uprobes need CAP_SYS_ADMIN)"
                        } else {
                            ""
                        };
                        eprintln!(
                            "homelab-probe: warning: no TLS plaintext from {lib}: {symbol}: {e}{hint}"
                        );
                    }
                }
            }
            if symbols > 0 {
                self.attached.insert(lib.clone());
                new.push(lib);
            } else {
                self.failed.insert(lib);
            }
        }
        new
    }
}

/// Sum over CPUs of one kernel statistic.
pub fn stat(stats: &PerCpuArray<MapData, u64>, index: u32) -> u64 {
    stats.get(&index, 0).map(|v| v.iter().sum()).unwrap_or(0)
}
