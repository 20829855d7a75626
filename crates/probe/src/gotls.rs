//! Uprobes on Go's crypto/tls `(*Conn).Read` and `(*Conn).Write`: plaintext of TLS served or
//! spoken by Go programs (Caddy, most Go services), which link their TLS statically and so
//! never call libssl. Go executables are found among running processes (re-checked
//! periodically, like libssl) and in the configured paths.

use std::{
    collections::{BTreeSet, HashSet},
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::Instant,
};

use aya::{
    programs::{uprobe::UProbeScope, UProbe},
    Ebpf,
};
use homelab_ebpf as abi;

use crate::gobin;

/// Go's register ABI (ABIInternal), from which the programs read the arguments, is used
/// for Go functions since Go 1.17 on amd64.
const FIRST_REGISTER_ABI: (u32, u32) = (1, 17);

pub struct GoTls {
    configured: Vec<PathBuf>,
    /// Executables handled (attached, not Go, or refused), by (device, inode): a binary is
    /// looked at once however many processes run it.
    seen: HashSet<(u64, u64)>,
    /// What was attached, for the start message: `PATH (goX.Y.Z)`.
    pub attached: BTreeSet<String>,
}

impl GoTls {
    /// Loads the programs; None when they cannot be loaded.
    pub fn load(ebpf: &mut Ebpf, configured: &[String]) -> Option<GoTls> {
        for &(entry, ret, _) in abi::GO_TLS_UPROBES {
            for name in [entry, ret] {
                let prog: &mut UProbe = ebpf.program_mut(name)?.try_into().ok()?;
                if let Err(e) = prog.load() {
                    eprintln!("homelab-probe: warning: Go TLS disabled, loading {name}: {e}");
                    return None;
                }
            }
        }
        Some(GoTls {
            configured: configured.iter().map(PathBuf::from).collect(),
            seen: HashSet::new(),
            attached: BTreeSet::new(),
        })
    }

    /// Attaches to every Go executable not looked at yet: the configured ones, then those of
    /// running processes. Returns the newly attached ones.
    pub fn attach_new(&mut self, ebpf: &mut Ebpf) -> Vec<String> {
        let mut new = vec![];
        let running = crate::procfs::pids()
            .into_iter()
            .map(|pid| PathBuf::from(format!("/proc/{pid}/exe")));
        let configured = self.configured.clone();
        for (path, named) in configured
            .into_iter()
            .map(|p| (p, true))
            .chain(running.map(|p| (p, false)))
        {
            // stat follows /proc/PID/exe to the executable, also in another mount namespace.
            let Ok(meta) = fs::metadata(&path) else {
                if named {
                    eprintln!(
                        "homelab-probe: warning: Go binary {}: not found",
                        path.display()
                    );
                }
                continue;
            };
            if !self.seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            let shown = fs::read_link(&path).unwrap_or_else(|_| path.clone());
            match attach(ebpf, &path) {
                Ok(Some(done)) => {
                    let what = format!("{} ({done})", shown.display());
                    self.attached.insert(what.clone());
                    new.push(what);
                }
                // Not Go, or Go without crypto/tls: nothing to say unless it was named.
                Ok(None) if !named => {}
                Ok(None) => eprintln!(
                    "homelab-probe: warning: Go binary {}: not a Go executable with crypto/tls",
                    path.display()
                ),
                Err(e) => eprintln!(
                    "homelab-probe: warning: no TLS plaintext from Go binary {}: {e:#}",
                    shown.display()
                ),
            }
        }
        new
    }
}

/// Attaches the entry and RET uprobes of Read and Write to one executable. Ok(None) when it
/// is not a Go executable using crypto/tls; Ok(Some(summary)) when attached.
fn attach(ebpf: &mut Ebpf, path: &Path) -> anyhow::Result<Option<String>> {
    let started = Instant::now();
    let names: Vec<&str> = abi::GO_TLS_UPROBES.iter().map(|p| p.2).collect();
    let Some(bin) = gobin::inspect(path, &names)? else {
        return Ok(None);
    };
    if bin.functions.iter().all(Option::is_none) {
        return Ok(None);
    }
    if bin.release < FIRST_REGISTER_ABI {
        anyhow::bail!(
            "built with {}: Go before 1.17 passes arguments on the stack, which the probe does \
             not read",
            bin.version
        );
    }
    let mut probes = 0;
    for (&(entry_prog, ret_prog, func), found) in abi::GO_TLS_UPROBES.iter().zip(&bin.functions) {
        let Some(found) = found else {
            anyhow::bail!("{func} not found in .gopclntab");
        };
        let points = std::iter::once((entry_prog, found.entry))
            .chain(found.rets.iter().map(|&r| (ret_prog, r)));
        for (prog, offset) in points {
            let prog: &mut UProbe = ebpf
                .program_mut(prog)
                .ok_or_else(|| anyhow::anyhow!("program {prog} missing"))?
                .try_into()?;
            prog.attach(offset, path, UProbeScope::AllProcesses)
                .map_err(|e| {
                    anyhow::anyhow!("{func} at file offset {offset:#x}: {e}{}", cap_hint())
                })?;
            probes += 1;
        }
    }
    Ok(Some(format!(
        "{}, {probes} uprobes, {} ms",
        bin.version,
        started.elapsed().as_millis()
    )))
}

fn cap_hint() -> &'static str {
    if crate::loader::has_cap_sys_admin() {
        ""
    } else {
        " (uprobes need CAP_SYS_ADMIN)"
    }
}
