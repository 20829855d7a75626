//! The rendered drop-ins run by a real systemd (Debian's 252, PID 1 of its
//! own PID, mount, network, UTS and IPC namespaces, booted by `unshare`) over
//! Debian's own units and packaged daemons, installed and changed by the real
//! `configgen apply`:
//! - the four daemons start under the full sandbox, every target is scraped,
//!   and an ICMP probe succeeds (CAP_NET_RAW through AmbientCapabilities);
//! - a secret given by LoadCredential= is readable by the daemon's user at
//!   its own path inside the unit, and not outside it;
//! - an edited alert rule is applied by a reload (same process), a changed
//!   flag by a restart (new process, new command line);
//! - the default Docker socket, absent here, leaves Prometheus starting;
//! - a rootless Podman user's socket (0660, a group the prometheus user is
//!   not in, under a 0700 /run/user/UID) reaches Prometheus' docker_sd
//!   through the unit's bind mount and the socket's numeric group, which has
//!   no /etc/group entry. The socket is served by the Engine API stand-in
//!   of container_discovery (recorded Podman 4 responses).
//!
//! Needs root, util-linux's unshare/nsenter/setpriv, iproute2, curl and the
//! Debian packages (fails under CI=true when one is missing, else skips
//! loudly). Inside the namespaces, tmpfs hides /run, /srv and /var/lib, and
//! the unit directories are temp dirs: nothing of the host's systemd setup is
//! read or changed. systemd's own log goes to the kernel log only when the
//! test fails and asks for it (it is silent otherwise).

mod support;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use configgen::model::{Config, EmailReceiver, Receiver, Service};
use support::engine_api::FakeEngine;
use support::stack::{self, wait_until};

const UNITS: [&str; 4] = [
    "prometheus.service",
    "prometheus-alertmanager.service",
    "prometheus-node-exporter.service",
    "prometheus-blackbox-exporter.service",
];
const SECRET: &str = "/srv/secrets/smtp-password";

/// systemd as PID 1 of fresh namespaces; killed (with everything it runs)
/// when dropped.
struct Pid1 {
    unshare: Child,
    pid: u32,
    dir: tempfile::TempDir,
}

impl Pid1 {
    fn boot() -> Pid1 {
        let dir = tempfile::tempdir().unwrap();
        let (vendor, etc) = (dir.path().join("vendor"), dir.path().join("etc"));
        fs::create_dir_all(&vendor).unwrap();
        fs::create_dir_all(&etc).unwrap();
        // Just enough targets for the packages' units, and the units themselves.
        for target in [
            "sysinit.target",
            "basic.target",
            "multi-user.target",
            "shutdown.target",
            "sockets.target",
            "timers.target",
            "paths.target",
            "slices.target",
            "local-fs.target",
            "network.target",
            "network-online.target",
            "time-sync.target",
        ] {
            fs::write(
                vendor.join(target),
                format!("[Unit]\nDescription={target}\n"),
            )
            .unwrap();
        }
        fs::write(
            vendor.join("default.target"),
            "[Unit]\nDescription=default\nRequires=basic.target\nAfter=basic.target\n",
        )
        .unwrap();
        for unit in UNITS {
            fs::copy(
                Path::new("/lib/systemd/system").join(unit),
                vendor.join(unit),
            )
            .unwrap();
        }
        let script = format!(
            "set -e
mount --make-rprivate /
for d in /run /srv /var/lib; do mount -t tmpfs tmpfs $d; done
mount --bind {vendor} /lib/systemd/system
mount --bind {etc} /etc/systemd/system
mount -t proc proc /proc
# As on a booted host: units' namespaces see mounts made after they start
# (the credentials directory is one).
mount --make-rshared /
ip link set lo up
export container=other
exec /lib/systemd/systemd --system --unit=default.target --show-status=no --log-target=null",
            vendor = vendor.display(),
            etc = etc.display()
        );
        let unshare = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--mount",
                "--uts",
                "--ipc",
                "--net",
                "--kill-child",
                "sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("running unshare");
        let children = format!("/proc/{0}/task/{0}/children", unshare.id());
        let pid = wait_until(Duration::from_secs(10), || {
            fs::read_to_string(&children)
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
                .ok_or("no child yet")
        })
        .expect("unshare's child");
        let pid1 = Pid1 { unshare, pid, dir };
        wait_until(Duration::from_secs(30), || {
            let out = pid1.run(&["systemctl", "is-system-running"]);
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if state == "running" || state == "degraded" {
                Ok(())
            } else {
                Err(state)
            }
        })
        .expect("systemd boots in the namespaces");
        pid1
    }

    /// Runs a command in the namespaces.
    fn run(&self, args: &[&str]) -> Output {
        let pid = self.pid.to_string();
        Command::new("nsenter")
            .args(["-t", &pid, "-m", "-p", "-n", "-u", "-i", "--"])
            .args(args)
            .output()
            .expect("running nsenter")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?} failed: {}{text}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.status()
        );
        text
    }

    fn status(&self) -> String {
        let out = self.run(&[
            "systemctl",
            "status",
            "--no-pager",
            "--full",
            "-n",
            "0",
            "prometheus*",
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn main_pid(&self, unit: &str) -> String {
        self.ok(&["systemctl", "show", "-p", "MainPID", "--value", unit])
            .trim()
            .to_string()
    }

    fn get(&self, url: &str) -> Result<serde_json::Value, String> {
        let out = self.run(&["curl", "-sf", url]);
        if !out.status.success() {
            return Err(format!("{url}: {}", out.status));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }
}

impl Drop for Pid1 {
    fn drop(&mut self) {
        // PID 1 of a PID namespace takes every process of it along.
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

fn prerequisites(test: &str) -> bool {
    let tools = ["unshare", "nsenter", "setpriv", "ip", "curl", "systemctl"];
    if !tools
        .iter()
        .all(|t| support::require_tool(t, test).is_some())
        || !stack::binaries_present(test)
    {
        return false;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    if !root {
        if support::in_ci() {
            panic!("{test}: needs root under CI=true");
        }
        eprintln!("SKIPPED {test}: needs root");
    }
    root
}

fn config() -> Config {
    let mut cfg = stack::loopback_config("pid1");
    cfg.deploy.config_dir = "/srv/homelab-observability".into();
    cfg.prometheus.data_dir = "/var/lib/hlo/prometheus".into();
    cfg.alertmanager.data_dir = "/var/lib/hlo/alertmanager".into();
    cfg.services = vec![Service {
        name: "loopback".into(),
        icmp: Some("127.0.0.1".into()),
        ..Default::default()
    }];
    cfg.alerting.receivers = vec![Receiver::Email(EmailReceiver {
        name: "mail".into(),
        to: "ops@example.org".into(),
        from: "hlo@example.org".into(),
        smarthost: "127.0.0.1:2525".into(),
        username: Some("hlo".into()),
        password_file: Some(SECRET.into()),
        require_tls: false,
        send_resolved: true,
    })];
    cfg
}

fn rule_duration(pid1: &Pid1, prometheus: &str, alert: &str) -> Result<f64, String> {
    let v = pid1.get(&format!("{prometheus}/api/v1/rules?type=alert"))?;
    v["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .find(|r| r["name"] == alert)
        .and_then(|r| r["duration"].as_f64())
        .ok_or_else(|| format!("{alert} not loaded"))
}

#[test]
fn apply_runs_the_rendered_units_under_a_real_systemd() {
    let test = "apply_runs_the_rendered_units_under_a_real_systemd";
    if !prerequisites(test) {
        return;
    }
    let pid1 = Pid1::boot();
    pid1.ok(&[
        "sh",
        "-c",
        &format!("mkdir -m 0711 /srv/secrets && printf s3cret > {SECRET} && chmod 0600 {SECRET}"),
    ]);
    let configgen = env!("CARGO_BIN_EXE_configgen");
    let config_file = pid1.dir.path().join("homelab.json");
    let apply = |cfg: &Config| -> String {
        fs::write(&config_file, serde_json::to_string(cfg).unwrap()).unwrap();
        let out = pid1.ok(&[
            configgen,
            "apply",
            "--config",
            config_file.to_str().unwrap(),
            "--out",
            &cfg.deploy.config_dir,
        ]);
        println!("{out}");
        out
    };

    let mut cfg = config();
    let first = apply(&cfg);
    assert!(first.contains("systemctl daemon-reload\n"), "{first}");
    assert_eq!(cfg.alloy.container_sockets, ["/var/run/docker.sock"]);
    let drop_in = pid1.ok(&[
        "cat",
        "/etc/systemd/system/prometheus.service.d/homelab-observability.conf",
    ]);
    assert!(
        drop_in.contains("\nBindReadOnlyPaths=-/var/run/docker.sock:")
            && !drop_in.contains("SupplementaryGroups"),
        "no Docker here: {drop_in}"
    );
    for unit in UNITS {
        let state = wait_until(Duration::from_secs(15), || {
            let out = pid1.run(&["systemctl", "is-active", unit]);
            let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if s == "active" {
                Ok(s)
            } else {
                Err(s)
            }
        });
        assert!(state.is_ok(), "{unit}: {state:?}\n{}", pid1.status());
    }
    let prometheus = format!("http://127.0.0.1:{}", cfg.prometheus.port);
    let scraped = wait_until(Duration::from_secs(40), || {
        let v = pid1.get(&format!("{prometheus}/api/v1/targets?state=active"))?;
        let targets = v["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let down: Vec<String> = targets
            .iter()
            .filter(|t| t["health"] != "up")
            .map(|t| format!("{} {}", t["scrapePool"], t["lastError"]))
            .collect();
        if targets.is_empty() || !down.is_empty() {
            return Err(format!("{down:?}"));
        }
        let icmp = pid1.get(&format!("{prometheus}/api/v1/query?query=probe_success"))?;
        let ok = icmp["data"]["result"].as_array().is_some_and(|r| {
            r.iter()
                .any(|s| s["metric"]["job"] == "blackbox_icmp" && s["value"][1] == "1")
        });
        if ok {
            Ok(targets.len())
        } else {
            Err(format!("icmp: {icmp}"))
        }
    });
    assert!(scraped.is_ok(), "{scraped:?}\n{}", pid1.status());

    // The secret: readable by the daemon's user inside the unit only.
    let am = pid1.main_pid("prometheus-alertmanager.service");
    let as_prometheus = [
        "setpriv",
        "--reuid=prometheus",
        "--regid=prometheus",
        "--clear-groups",
        "cat",
        SECRET,
    ];
    let inside: Vec<&str> = ["nsenter", "-t", &am, "-m", "--"]
        .into_iter()
        .chain(as_prometheus)
        .collect();
    assert_eq!(pid1.ok(&inside), "s3cret");
    assert!(
        !pid1.run(&as_prometheus).status.success(),
        "the user reads the original"
    );

    // An edited alert rule: a reload, the same process.
    const ALERT: &str = "HostDiskAlmostFull";
    let before = pid1.main_pid("prometheus.service");
    cfg.alerting.overrides.insert(
        ALERT.into(),
        configgen::model::AlertOverride {
            for_: Some("17m".into()),
            ..Default::default()
        },
    );
    let out = apply(&cfg);
    assert!(
        out.contains("systemctl reload-or-restart prometheus.service\n"),
        "{out}"
    );
    assert!(!out.contains("systemctl restart"), "{out}");
    let loaded = wait_until(Duration::from_secs(20), || {
        let d = rule_duration(&pid1, &prometheus, ALERT)?;
        if d == 1020.0 {
            Ok(())
        } else {
            Err(format!("for = {d}s"))
        }
    });
    assert!(loaded.is_ok(), "{loaded:?}");
    assert_eq!(
        pid1.main_pid("prometheus.service"),
        before,
        "Prometheus restarted"
    );

    // A changed flag: a restart with the new command line.
    cfg.prometheus.retention = "21d".into();
    let out = apply(&cfg);
    assert!(
        out.contains("systemctl restart prometheus.service\n"),
        "{out}"
    );
    // Until it execs, the new main process is systemd's child setting up
    // the sandbox.
    let started = wait_until(Duration::from_secs(15), || {
        let pid = pid1.main_pid("prometheus.service");
        let out = pid1.run(&["cat", &format!("/proc/{pid}/cmdline")]);
        let cmdline = String::from_utf8_lossy(&out.stdout);
        if pid != before && cmdline.contains("--storage.tsdb.retention.time=21d") {
            Ok(())
        } else {
            Err(format!("{pid}: {}", cmdline.replace('\0', " ")))
        }
    });
    assert!(started.is_ok(), "{started:?}\n{}", pid1.status());
}

/// A rootless user's Podman socket as Podman's user unit makes it.
const ROOTLESS: &str = "/run/user/1001/podman/podman.sock";
/// The socket's group, the rootless user's own: not the prometheus user's.
/// systemd 252 resolves even a numeric SupplementaryGroups= entry through
/// NSS (216/GROUP without one), so the group is named in a copy of
/// /etc/group mounted in the namespaces only, as adduser would on a host.
const SOCKET_GID: u32 = 4242;

#[test]
fn prometheus_reaches_a_rootless_podman_socket_through_the_unit() {
    let test = "prometheus_reaches_a_rootless_podman_socket_through_the_unit";
    if !prerequisites(test) {
        return;
    }
    let pid1 = Pid1::boot();
    let group = pid1.dir.path().join("group");
    let mut groups = fs::read_to_string("/etc/group").unwrap();
    groups.push_str(&format!("rootless-podman:x:{SOCKET_GID}:\n"));
    fs::write(&group, groups).unwrap();
    pid1.ok(&["mount", "--bind", group.to_str().unwrap(), "/etc/group"]);
    pid1.ok(&[
        "sh",
        "-c",
        "mkdir -p /run/user/1001/podman && chown -R 1001:1001 /run/user/1001 && chmod 0700 /run/user/1001",
    ]);
    // Served from this process, bound in the namespaces' /run.
    let socket = format!("/proc/{}/root{ROOTLESS}", pid1.pid);
    let engine = FakeEngine::start(Path::new(&socket), "podman-4", "1.41");
    pid1.ok(&[
        "sh",
        "-c",
        &format!("chown 1001:{SOCKET_GID} {ROOTLESS} && chmod 0660 {ROOTLESS}"),
    ]);
    let group_of_prometheus = pid1.ok(&["id", "-G", "prometheus"]);
    assert!(
        !group_of_prometheus
            .split_whitespace()
            .any(|g| g == SOCKET_GID.to_string()),
        "{group_of_prometheus}"
    );
    let as_prometheus = [
        "setpriv",
        "--reuid=prometheus",
        "--regid=prometheus",
        "--init-groups",
        "curl",
        "-sf",
        "--unix-socket",
        ROOTLESS,
        "http://podman/_ping",
    ];
    assert!(
        !pid1.run(&as_prometheus).status.success(),
        "the prometheus user reaches the socket without the unit"
    );

    let mut cfg = config();
    cfg.alloy.container_sockets = vec![ROOTLESS.into()];
    let config_file = pid1.dir.path().join("homelab.json");
    fs::write(&config_file, serde_json::to_string(&cfg).unwrap()).unwrap();
    let configgen = env!("CARGO_BIN_EXE_configgen");
    pid1.ok(&[
        configgen,
        "apply",
        "--config",
        config_file.to_str().unwrap(),
        "--out",
        &cfg.deploy.config_dir,
    ]);
    let drop_in = pid1.ok(&[
        "cat",
        "/etc/systemd/system/prometheus.service.d/homelab-observability.conf",
    ]);
    assert!(
        drop_in.contains(&format!("\nSupplementaryGroups={SOCKET_GID}\n")),
        "{drop_in}"
    );

    let prometheus = format!("http://127.0.0.1:{}", cfg.prometheus.port);
    let pools = ["blackbox_http_containers", "container_metrics"];
    let discovered = wait_until(Duration::from_secs(40), || {
        let v = pid1.get(&format!("{prometheus}/api/v1/targets?state=active"))?;
        let found: Vec<String> = v["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| pools.iter().any(|p| t["scrapePool"] == *p))
            .map(|t| format!("{} {}", t["scrapePool"], t["labels"]["service"]))
            .collect();
        if pools
            .iter()
            .all(|p| found.iter().any(|f| f.starts_with(&format!("\"{p}\""))))
        {
            Ok(found)
        } else {
            Err(format!("{found:?}"))
        }
    });
    assert!(
        discovered.is_ok(),
        "{discovered:?}\nengine requests: {:?}\n{}",
        engine.requests(),
        pid1.status()
    );
    println!("docker_sd targets: {discovered:?}");
    assert!(engine
        .requests()
        .iter()
        .any(|r| r.contains("/containers/json")));
}
