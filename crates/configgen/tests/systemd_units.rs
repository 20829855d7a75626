//! The rendered systemd units and drop-ins, checked by systemd itself:
//! `systemd-analyze verify` passes for each (with the package's own unit under
//! the drop-in), and `systemd-analyze security --offline=true` rates each unit
//! as it would run, in the "OK" band. The scores are printed (run with
//! `--nocapture`).
//!
//! There is no systemd as PID 1 here, so both run offline against a fake root
//! (`--root`): the host's /usr/lib/systemd/system (Debian's units for
//! prometheus, prometheus-alertmanager, prometheus-node-exporter and
//! prometheus-blackbox-exporter included), the rendered files in
//! /etc/systemd/system, and at each unit's binary path a hard link to the real
//! program where Debian installs one. Loki, Alloy, Tempo and Grafana come from
//! upstream .debs, cAdvisor and homelab-probe from release binaries, none
//! installed here: their binary is an empty executable placeholder and the
//! upstream .deb's unit a minimal stand-in (ExecStart and User only, which the
//! drop-in replaces or keeps), so their security score is the drop-in's alone.

mod support;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use configgen::plan::Plan;
use configgen::render::systemd::{DROP_IN, PROBE_UNIT};
use configgen::runtime;

const SYSTEM_UNITS: &str = "/usr/lib/systemd/system";

/// A fake root holding the rendered units of `cfg` and their binaries.
struct Root {
    dir: tempfile::TempDir,
    units: Vec<String>,
    placeholders: Vec<String>,
}

impl Root {
    fn new(cfg: &configgen::model::Config) -> Root {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for link in ["bin", "lib", "sbin"] {
            symlink(format!("usr/{link}"), root.join(link)).unwrap();
        }
        copy_dir(
            Path::new(SYSTEM_UNITS),
            &root.join("usr/lib/systemd/system"),
        );
        let mut r = Root {
            dir,
            units: Vec::new(),
            placeholders: Vec::new(),
        };
        r.install_binary("/usr/bin/kill");
        let tree = support::render(cfg);
        let etc = r.dir.path().join("etc/systemd/system");
        for (rel, contents) in tree.files() {
            if let Some(unit_path) = rel.strip_prefix("systemd/") {
                let dest = etc.join(unit_path);
                fs::create_dir_all(dest.parent().unwrap()).unwrap();
                fs::write(&dest, contents).unwrap();
            }
        }
        let plan = Plan::new(cfg);
        for d in runtime::daemons(&plan) {
            let p = &d.package;
            let dropin = etc.join(format!("{}.d/{DROP_IN}", p.unit));
            if p.installs_unit {
                assert!(dropin.is_file(), "no drop-in for {}", p.unit);
                let vendor = r.dir.path().join("usr/lib/systemd/system").join(p.unit);
                if !vendor.exists() {
                    assert!(!p.in_debian, "Debian's {} is not installed", p.name);
                    fs::write(
                        &vendor,
                        format!(
                            "[Unit]\nDescription=stand-in for the {} package's unit\n\n\
                             [Service]\nExecStart={}\nUser={}\n\n[Install]\nWantedBy=multi-user.target\n",
                            p.name, p.binary, p.user
                        ),
                    )
                    .unwrap();
                }
            } else {
                assert!(etc.join(p.unit).is_file(), "no unit {}", p.unit);
            }
            r.install_binary(p.binary);
            r.units.push(p.unit.to_string());
        }
        if runtime::probe_args(&plan).is_some() {
            r.install_binary(runtime::PROBE_BINARY);
            r.units.push(PROBE_UNIT.to_string());
        }
        r
    }

    /// A hard link to the real program, else an empty executable.
    fn install_binary(&mut self, path: &str) {
        let dest = self.dir.path().join(path.trim_start_matches('/'));
        if dest.exists() {
            return;
        }
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        if Path::new(path).is_file() {
            if fs::hard_link(path, &dest).is_err() {
                fs::copy(path, &dest).unwrap();
            }
        } else {
            fs::write(&dest, "").unwrap();
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).unwrap();
            self.placeholders.push(path.to_string());
        }
    }

    fn analyze(&self, args: &[&str], unit: &str) -> (bool, String) {
        let out = Command::new("systemd-analyze")
            .args(args)
            .arg(format!("--root={}", self.dir.path().display()))
            .arg(unit)
            .output()
            .expect("running systemd-analyze");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dest) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            symlink(fs::read_link(&src).unwrap(), &dest).unwrap();
        } else if kind.is_dir() {
            copy_dir(&src, &dest);
        } else {
            fs::copy(&src, &dest).unwrap();
        }
    }
}

fn prerequisites(test: &str) -> bool {
    support::require_tool("systemd-analyze", test).is_some() && Path::new(SYSTEM_UNITS).is_dir()
}

/// `2.1` from "→ Overall exposure level for x.service: 2.1 OK 🙂".
fn exposure(report: &str) -> Option<(f64, String)> {
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))?;
    let mut words = line.rsplit_once(": ")?.1.split_whitespace();
    let score = words.next()?.parse().ok()?;
    Some((score, words.next()?.to_string()))
}

#[test]
fn every_unit_verifies_and_is_rated_ok() {
    let test = "every_unit_verifies_and_is_rated_ok";
    if !prerequisites(test) {
        return;
    }
    let cfg = support::parse(&fs::read_to_string(support::example()).unwrap());
    let root = Root::new(&cfg);
    assert_eq!(root.units.len(), 10, "{:?}", root.units);
    println!("placeholder binaries: {:?}", root.placeholders);
    let mut failures = Vec::new();
    for unit in &root.units {
        let (ok, text) = root.analyze(&["verify", "--man=no"], unit);
        if !ok || !text.trim().is_empty() {
            failures.push(format!("verify {unit}:\n{text}"));
        }
        let (_, report) = root.analyze(&["security", "--offline=true", "--no-pager"], unit);
        let (score, band) =
            exposure(&report).unwrap_or_else(|| panic!("no exposure level for {unit}:\n{report}"));
        println!("{unit}: exposure {score} {band}");
        if band != "OK" {
            failures.push(format!("{unit}: exposure {score} {band}\n{report}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn verify_catches_a_broken_drop_in() {
    let test = "verify_catches_a_broken_drop_in";
    if !prerequisites(test) {
        return;
    }
    let cfg = support::parse(&fs::read_to_string(support::example()).unwrap());
    let root = Root::new(&cfg);
    let dropin: PathBuf = root
        .dir
        .path()
        .join("etc/systemd/system/prometheus.service.d")
        .join(DROP_IN);
    let text = fs::read_to_string(&dropin).unwrap();
    fs::write(
        &dropin,
        text.replace("/usr/bin/prometheus ", "/usr/bin/no-such-prometheus "),
    )
    .unwrap();
    let (ok, out) = root.analyze(&["verify", "--man=no"], "prometheus.service");
    assert!(!ok, "verify accepted a missing binary: {out}");
    assert!(out.contains("no-such-prometheus"), "{out}");
}

/// The probe's capabilities have one home, runtime.rs; the NixOS module
/// lists them in Nix and must agree.
#[test]
fn nixos_probe_unit_has_the_models_capabilities() {
    let nix = fs::read_to_string(
        support::repo_root().join("nixos-modules/homelab-observability/probe.nix"),
    )
    .unwrap();
    let quoted_caps = |block: &str| -> Vec<String> {
        block
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|w| w.starts_with("CAP_"))
            .map(|w| w.trim_start_matches("CAP_").to_string())
            .collect()
    };
    let list_start = nix
        .find("capabilities =")
        .expect("capabilities in probe.nix");
    let list_end = nix[list_start..].find("++").expect("the TLS addition") + list_start;
    assert_eq!(
        quoted_caps(&nix[list_start..list_end]),
        runtime::PROBE_CAPABILITIES.to_vec()
    );
    let tls_line = nix[list_end..].lines().next().unwrap();
    assert!(tls_line.contains("model.exporters.probe.tls"), "{tls_line}");
    assert_eq!(quoted_caps(tls_line), [runtime::PROBE_TLS_CAPABILITY]);
}

#[test]
fn the_support_parser_reads_what_the_renderer_writes() {
    use support::unit_file::{exec_start, split};
    let words = ["/bin/x", "--a=", "b c", "100%", "$HOME", "q\"\\"].map(String::from);
    let line = configgen::render::systemd::exec_line(&words);
    assert_eq!(split(&line).unwrap(), words);
    let unit = format!("[Service]\nExecStart=\nExecStart={line}\nUser=x\n");
    assert_eq!(exec_start(&unit).unwrap(), words);
    assert!(split("/bin/x $HOME").is_err());
    assert!(split("/bin/x %n").is_err());
    assert!(exec_start("[Service]\nExecStart=\n").is_err());
}
