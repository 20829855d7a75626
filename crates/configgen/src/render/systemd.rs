//! systemd/: how the daemons run on a Debian host with packages. A drop-in
//! (`<unit>.d/homelab-observability.conf`) for every unit a package installs,
//! a whole unit where none does (cAdvisor, the eBPF probe). Everything comes
//! from the runtime model; this file only knows the unit-file format and the
//! sandboxing each kind of daemon tolerates.
//!
//! Secrets: each secret file is loaded with `LoadCredential=` (read by
//! systemd as root, copied to the unit's credentials directory, readable by
//! the unit's user only) and bind-mounted read-only over its own path inside
//! the unit's mount namespace, so the rendered configs keep naming the host
//! path while the daemon's user needs no access to the original file.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::Result;

use super::{generated_notice, Tree};
use crate::plan::Plan;
use crate::runtime::{self, Daemon};

/// The file name of every drop-in, so that `apply` (and a user) can tell ours
/// from others in `<unit>.d/`.
pub const DROP_IN: &str = "homelab-observability.conf";

/// The probe's own unit.
pub const PROBE_UNIT: &str = "homelab-probe.service";

pub fn render(plan: &Plan, tree: &mut Tree) -> Result<()> {
    let notice = format!("# {}\n", generated_notice(plan));
    for d in runtime::daemons(plan) {
        let mut text = notice.clone();
        if d.package.installs_unit {
            text.push_str(&service_section(&d));
            tree.add(format!("systemd/{}.d/{DROP_IN}", d.package.unit), text)?;
        } else {
            let _ = writeln!(
                text,
                "[Unit]\nDescription={} (homelab-observability)\nAfter=network.target\n",
                d.name
            );
            text.push_str(&service_section(&d));
            text.push_str("Restart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n");
            tree.add(format!("systemd/{}", d.package.unit), text)?;
        }
    }
    if let Some(args) = runtime::probe_args(plan) {
        let caps = runtime::probe_capabilities(plan);
        tree.add(
            format!("systemd/{PROBE_UNIT}"),
            notice + &probe_unit(&args, &caps, runtime::probe_uses_sockets(plan)),
        )?;
    }
    Ok(())
}

fn service_section(d: &Daemon) -> String {
    let mut s = String::from("[Service]\n");
    let command: Vec<String> = std::iter::once(d.package.binary.to_string())
        .chain(d.unit.leading_args.iter().cloned())
        .chain(d.args.iter().cloned())
        .collect();
    // An empty ExecStart= drops the package's command line (and its $ARGS
    // from /etc/default) before ours.
    let _ = writeln!(s, "ExecStart=\nExecStart={}", exec_line(&command));
    if d.reloads_on_sighup {
        let _ = writeln!(s, "ExecReload=\nExecReload=/bin/kill -HUP $MAINPID");
    }
    let _ = writeln!(s, "User={}", d.package.user);
    if !d.unit.groups.is_empty() {
        let _ = writeln!(s, "SupplementaryGroups={}", d.unit.groups.join(" "));
    }
    for m in &d.unit.mounts {
        // `-`: a socket missing on this host (no Docker) leaves the unit
        // starting without it. PID 1 makes the mount, so the daemon's user
        // needs no way through the socket's parent directories.
        let _ = writeln!(
            s,
            "BindReadOnlyPaths={}",
            quote_if_needed(format!(
                "-{}:{}",
                escape_specifiers(&m.source),
                escape_specifiers(&m.target)
            ))
        );
    }
    for (k, v) in &d.env {
        let _ = writeln!(s, "Environment={}", list_item(&format!("{k}={v}")));
    }
    if let Some(dir) = &d.data_dir {
        match dir.strip_prefix("/var/lib/") {
            // systemd creates it and hands it to the user.
            Some(rel) if !rel.is_empty() => {
                let _ = writeln!(s, "StateDirectory={}", rel.trim_end_matches('/'));
            }
            _ => {
                let _ = writeln!(s, "ReadWritePaths={}", list_item(dir));
            }
        }
    }
    for (name, path) in credentials(&d.secrets) {
        let _ = writeln!(s, "LoadCredential={name}:{}", escape_specifiers(path));
        // `%d` is the unit's credentials directory (systemd >= 251).
        let _ = writeln!(
            s,
            "BindReadOnlyPaths={}",
            quote_if_needed(format!("%d/{name}:{}", escape_specifiers(path)))
        );
    }
    s.push_str(&hardening(d));
    s
}

/// Each secret's credential name: its file name, made unique.
fn credentials(secrets: &[String]) -> Vec<(String, &str)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for path in secrets {
        if out.iter().any(|(_, p)| p == path) {
            continue;
        }
        let base: String = path
            .rsplit('/')
            .next()
            .unwrap_or(path)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut name = base.clone();
        let mut n = 1;
        while !seen.insert(name.clone()) {
            n += 1;
            name = format!("{base}-{n}");
        }
        out.push((name, path.as_str()));
    }
    out
}

fn hardening(d: &Daemon) -> String {
    let host = d.unit.inspects_host;
    let caps: Vec<String> = d.capabilities.iter().map(|c| format!("CAP_{c}")).collect();
    let mut s = String::new();
    let mut set = |k: &str, v: &str| {
        let _ = writeln!(s, "{k}={v}");
    };
    set("CapabilityBoundingSet", &caps.join(" "));
    set("AmbientCapabilities", &caps.join(" "));
    set("NoNewPrivileges", "yes");
    set("ProtectSystem", "strict");
    // A host inspector reports the filesystems mounted at /home and in /dev:
    // an empty /home or a private /dev would make it report the sandbox's.
    set("ProtectHome", if host { "read-only" } else { "yes" });
    set("PrivateTmp", "yes");
    if !host {
        set("PrivateDevices", "yes");
        set("ProtectProc", "invisible");
    }
    set("ProtectKernelTunables", "yes");
    set("ProtectKernelModules", "yes");
    // /dev/kmsg is where cAdvisor sees OOM kills.
    if !d.container.devices.contains(&"/dev/kmsg") {
        set("ProtectKernelLogs", "yes");
    }
    set("ProtectControlGroups", "yes");
    // Host inspectors read the clock's sync state with adjtimex(2) (node
    // exporter's timex collector), which ProtectClock= forbids; without
    // CAP_SYS_TIME they still cannot set it.
    if !host {
        set("ProtectClock", "yes");
    }
    set("ProtectHostname", "yes");
    // AF_NETLINK: Go's net package lists interfaces over netlink (Loki's and
    // Tempo's ring address, node_exporter's netdev collector).
    set(
        "RestrictAddressFamilies",
        "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    );
    set("RestrictNamespaces", "yes");
    set("RestrictRealtime", "yes");
    set("RestrictSUIDSGID", "yes");
    set("LockPersonality", "yes");
    set("MemoryDenyWriteExecute", "yes");
    set("RemoveIPC", "yes");
    set("SystemCallArchitectures", "native");
    set(
        "SystemCallFilter",
        if host {
            "@system-service adjtimex"
        } else {
            "@system-service"
        },
    );
    set("SystemCallErrorNumber", "EPERM");
    set("UMask", "0027");
    s
}

/// The probe's unit: the same directives as the NixOS module's probe.nix,
/// with a fixed binary path instead of a Nix store path.
fn probe_unit(args: &[String], caps: &[&str], sockets: bool) -> String {
    let caps: Vec<String> = caps.iter().map(|c| format!("CAP_{c}")).collect();
    // Podman API sockets: unix sockets, rootless users' under /run/user.
    let (home, families) = if sockets {
        ("read-only", "AF_INET AF_INET6 AF_UNIX")
    } else {
        ("yes", "AF_INET AF_INET6")
    };
    let command: Vec<String> = std::iter::once(runtime::PROBE_BINARY.to_string())
        .chain(args.iter().cloned())
        .collect();
    format!(
        "[Unit]
Description=homelab-observability eBPF RED probe
# Tracepoint ids are read from tracefs; the probe cannot mount it itself.
Wants=sys-kernel-tracing.mount
After=network.target sys-kernel-tracing.mount

[Service]
ExecStart={exec}
Restart=on-failure
RestartSec=5
DynamicUser=yes
CapabilityBoundingSet={caps}
AmbientCapabilities={caps}
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome={home}
PrivateTmp=yes
PrivateDevices=yes
# Not PrivateUsers: capabilities in a user namespace do not count for bpf()
# and perf_event_open() on the host.
ProtectHostname=yes
ProtectClock=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
# Read-only /sys/fs/cgroup in the host's cgroup namespace: the cgroup ids of
# watched units match what BPF sees.
ProtectControlGroups=yes
RestrictAddressFamilies={families}
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
SystemCallArchitectures=native
# bpf is in @privileged, perf_event_open in @debug.
SystemCallFilter=@system-service bpf perf_event_open
SystemCallErrorNumber=EPERM
UMask=0077

[Install]
WantedBy=multi-user.target
",
        exec = exec_line(&command),
        caps = caps.join(" "),
    )
}

/// A command line in systemd's syntax: words split on spaces, double quotes
/// around words that need them, `%` and `$` doubled so that systemd expands
/// neither specifiers nor variables.
pub fn exec_line(words: &[String]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

fn quote(word: &str) -> String {
    list_item(&word.replace('$', "$$"))
}

/// One word of a space-separated setting (ExecStart=, BindReadOnlyPaths=,
/// Environment=...): specifiers escaped, quoted when it holds a space, a
/// quote or a backslash, or is empty.
fn list_item(word: &str) -> String {
    quote_if_needed(escape_specifiers(word))
}

fn quote_if_needed(escaped: String) -> String {
    let plain = !escaped.is_empty()
        && !escaped
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\' || c == '\'' || c == ';');
    if plain {
        return escaped;
    }
    let mut q = String::from("\"");
    for c in escaped.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

fn escape_specifiers(s: &str) -> String {
    s.replace('%', "%%")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Config;

    fn tree_of(toml_text: &str) -> Tree {
        let cfg: Config = toml::from_str(toml_text).unwrap();
        let plan = Plan::new(&cfg);
        let mut tree = Tree::default();
        render(&plan, &mut tree).unwrap();
        tree
    }

    #[test]
    fn every_packaged_daemon_gets_a_drop_in_and_cadvisor_a_whole_unit() {
        let tree = tree_of("");
        let paths: Vec<&str> = tree.files().map(|(p, _)| p).collect();
        for unit in [
            "prometheus.service",
            "prometheus-alertmanager.service",
            "prometheus-node-exporter.service",
            "prometheus-blackbox-exporter.service",
            "loki.service",
            "tempo.service",
            "alloy.service",
            "grafana-server.service",
        ] {
            let p = format!("systemd/{unit}.d/{DROP_IN}");
            assert!(paths.contains(&p.as_str()), "{p} in {paths:?}");
        }
        assert!(paths.contains(&"systemd/cadvisor.service"));
        assert!(paths.contains(&"systemd/homelab-probe.service"));
    }

    #[test]
    fn secrets_are_credentials_bound_over_their_own_path() {
        let tree = tree_of(
            "[[alerting.receivers]]\nname = \"mail\"\ntype = \"email\"\nto = \"a@b.c\"\nfrom = \"x@b.c\"\nsmarthost = \"smtp.b.c:587\"\nusername = \"x\"\npassword_file = \"/etc/hlo/secrets/smtp password\"\n",
        );
        let am = tree
            .get("systemd/prometheus-alertmanager.service.d/homelab-observability.conf")
            .unwrap();
        assert!(
            am.contains("LoadCredential=smtp_password:/etc/hlo/secrets/smtp password\n"),
            "{am}"
        );
        assert!(
            am.contains("BindReadOnlyPaths=\"%d/smtp_password:/etc/hlo/secrets/smtp password\"\n")
        );
    }

    #[test]
    fn capabilities_are_exactly_the_models() {
        let tree = tree_of("");
        let bb = tree
            .get("systemd/prometheus-blackbox-exporter.service.d/homelab-observability.conf")
            .unwrap();
        assert!(bb.contains("\nCapabilityBoundingSet=CAP_NET_RAW\n"));
        assert!(bb.contains("\nAmbientCapabilities=CAP_NET_RAW\n"));
        let prom = tree
            .get("systemd/prometheus.service.d/homelab-observability.conf")
            .unwrap();
        assert!(prom.contains("\nCapabilityBoundingSet=\n"));
        assert!(prom.contains("\nStateDirectory=prometheus/metrics2\n"));
        let probe = tree.get("systemd/homelab-probe.service").unwrap();
        assert!(probe.contains(
            "\nCapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_DAC_READ_SEARCH CAP_SYS_PTRACE\n"
        ));
        assert!(probe.contains("\nProtectHome=yes\nPrivateTmp=yes\n"));
        assert!(probe.contains("\nRestrictAddressFamilies=AF_INET AF_INET6\n"));
    }

    #[test]
    fn a_probe_asking_podman_sockets_for_labels_may_reach_them() {
        let tree = tree_of(
            "alloy.container_sockets = [\"/run/user/1001/podman/podman.sock\", \"/run/user/1002/podman/podman.sock\"]\n",
        );
        let probe = tree.get("systemd/homelab-probe.service").unwrap();
        assert!(probe.contains(
            "\nCapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_DAC_READ_SEARCH CAP_SYS_PTRACE CAP_DAC_OVERRIDE\n"
        ));
        assert!(probe.contains("\nProtectHome=read-only\n"));
        assert!(probe.contains("\nRestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n"));
    }

    #[test]
    fn container_sockets_are_bound_at_one_path_with_their_numeric_groups() {
        let cfg: Config = toml::from_str(
            "alloy.container_sockets = [\"/var/run/docker.sock\", \"/run/user/1001/podman/podman.sock\"]\n",
        )
        .unwrap();
        let groups = [
            ("/var/run/docker.sock".to_string(), 998),
            ("/run/user/1001/podman/podman.sock".to_string(), 1001),
        ];
        let plan = Plan::new(&cfg).with_socket_groups(groups.into_iter().collect());
        let mut tree = Tree::default();
        render(&plan, &mut tree).unwrap();
        let binds = "BindReadOnlyPaths=-/var/run/docker.sock:/run/homelab-observability/container-sockets/var_run_docker.sock\n\
                     BindReadOnlyPaths=-/run/user/1001/podman/podman.sock:/run/homelab-observability/container-sockets/run_user_1001_podman_podman.sock\n";
        let prom = tree
            .get("systemd/prometheus.service.d/homelab-observability.conf")
            .unwrap();
        assert!(prom.contains("\nSupplementaryGroups=998 1001\n"), "{prom}");
        assert!(prom.contains(binds), "{prom}");
        let alloy = tree
            .get("systemd/alloy.service.d/homelab-observability.conf")
            .unwrap();
        assert!(
            alloy.contains("\nSupplementaryGroups=systemd-journal adm 998 1001\n"),
            "{alloy}"
        );
        assert!(alloy.contains(binds), "{alloy}");

        // Sockets not on the rendering host: bound if they appear, no group.
        let tree = tree_of("");
        let prom = tree
            .get("systemd/prometheus.service.d/homelab-observability.conf")
            .unwrap();
        assert!(!prom.contains("SupplementaryGroups"), "{prom}");
        assert!(prom.contains("\nBindReadOnlyPaths=-/var/run/docker.sock:"));
        let alloy = tree
            .get("systemd/alloy.service.d/homelab-observability.conf")
            .unwrap();
        assert!(alloy.contains("\nSupplementaryGroups=systemd-journal adm\n"));
        let off = tree_of("discovery.containers = false");
        let prom = off
            .get("systemd/prometheus.service.d/homelab-observability.conf")
            .unwrap();
        assert!(!prom.contains("BindReadOnlyPaths"), "{prom}");
    }

    #[test]
    fn words_are_quoted_and_expansions_escaped() {
        let words = ["/bin/x", "--a=", "b c", "100%", "$HOME", "q\"\\"].map(String::from);
        assert_eq!(
            exec_line(&words),
            r#"/bin/x --a= "b c" 100%% $$HOME "q\"\\""#
        );
        assert_eq!(exec_line(&[String::new()]), "\"\"");
    }
}
