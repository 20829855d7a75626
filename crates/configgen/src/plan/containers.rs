//! Jobs over the containers of the Docker/Podman sockets, found by
//! Prometheus' `docker_sd_configs` and shaped by relabelling from the
//! containers' own `homelab.*` labels (the convention of docs/discovery.md).
//!
//! docker_sd gives one target per (container, network, exposed TCP port),
//! or one per (container, network) at no port for a container without
//! exposed ports (host network). Relabelling keeps the one port a job wants
//! and builds the address the host reaches it at: the published port on
//! loopback when there is one, else the container's network address.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{job, label, module};

/// The container labels of the convention, as written on a container.
pub mod container_label {
    /// `false`: neither probed, scraped nor its logs collected.
    pub const ENABLE: &str = "homelab.enable";
    /// The `service` label (default: the container name).
    pub const SERVICE: &str = "homelab.service";
    /// Container port to probe when it publishes several (default: every published TCP port).
    pub const PROBE_PORT: &str = "homelab.probe.port";
    /// Path of the probe URL (default `/`).
    pub const PROBE_PATH: &str = "homelab.probe.path";
    /// `https` to probe over TLS (default `http`).
    pub const PROBE_SCHEME: &str = "homelab.probe.scheme";
    /// Container port of the metrics endpoint; the container is scraped only with it.
    pub const METRICS_PORT: &str = "homelab.metrics.port";
    /// Path of the metrics endpoint (default `/metrics`).
    pub const METRICS_PATH: &str = "homelab.metrics.path";
    /// `true`: the eBPF probe watches the container's TCP connections (RED metrics).
    pub const RED: &str = "homelab.red";
    /// Container ports whose accepted connections the probe watches (default: all).
    pub const RED_PORTS: &str = "homelab.red.ports";
    /// Route templates for the probe's `http_route`, comma-separated.
    pub const RED_ROUTES: &str = "homelab.red.routes";
}

/// What the eBPF probe is told to discover: None when container discovery is off (or
/// no socket is configured), else the sockets it asks for labels. Docker keeps a
/// container's labels on disk, where the probe reads them; Podman only in its database,
/// so its sockets are the ones the probe queries (every socket not named `docker.sock`).
pub fn probe_sockets(cfg: &crate::model::Config) -> Option<Vec<&str>> {
    let sockets = &cfg.alloy.container_sockets;
    if !cfg.discovery.containers || sockets.is_empty() {
        return None;
    }
    Some(
        sockets
            .iter()
            .map(String::as_str)
            .filter(|s| !is_docker_socket(s))
            .collect(),
    )
}

/// A Docker daemon's socket (`docker.sock`, root:docker 0660), as opposed to
/// Podman's (`podman.sock`, 0660 owned by root or the rootless user).
pub fn is_docker_socket(path: &str) -> bool {
    path.rsplit('/').next() == Some("docker.sock")
}

/// Where the daemons that read container sockets (Prometheus, Alloy) find
/// them: each configured socket is mounted there by PID 1 (systemd's
/// BindReadOnlyPaths=) or by the container engine (a bind volume), so the
/// daemon's user need not traverse the socket's parent directories (a
/// rootless user's /run/user/UID is 0700), and the rendered configs name
/// one path on every target.
pub const SOCKET_DIR: &str = "/run/homelab-observability/container-sockets";

/// The path a daemon sees the socket at `host_path` under: the host path
/// with its `/` turned into `_`, e.g. `run_user_1001_podman_podman.sock`.
pub fn in_daemon(host_path: &str) -> String {
    let name = host_path.trim_start_matches('/').replace('/', "_");
    format!("{SOCKET_DIR}/{name}")
}

/// The numeric group owning each configured socket on the host that runs
/// the daemons, by host path. Only that group lets the daemon's user
/// connect (the sockets are 0660), and a number needs no entry in the
/// daemon's /etc/group: systemd's SupplementaryGroups= and Compose's
/// group_add take it as it is, where a missing group name stops the unit.
pub type SocketGroups = BTreeMap<String, u32>;

/// The groups of the configured sockets that exist here. A socket owned by
/// group root gives no group: root's group opens far more than a socket.
pub fn socket_groups_here(cfg: &crate::model::Config) -> SocketGroups {
    use std::os::unix::fs::MetadataExt;
    cfg.alloy
        .container_sockets
        .iter()
        .filter_map(|s| Some((s.clone(), std::fs::metadata(s).ok()?.gid())))
        .filter(|(_, gid)| *gid != 0)
        .collect()
}

/// Warnings for `configgen check`, run on the host of the daemons: a
/// configured socket that is not there, or that no group opens. Not errors:
/// the engine may be installed after the stack.
pub fn check_sockets(cfg: &crate::model::Config) -> Vec<crate::diagnostic::ConfigIssue> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let rerender = "render again once it is there, so that Prometheus and Alloy join its group \
                    (or set alloy.container_sockets = false on a host without containers)";
    let named = group_ids("/etc/group");
    let mut out = Vec::new();
    for (i, socket) in cfg.alloy.container_sockets.iter().enumerate() {
        let field = format!("alloy.container_sockets[{i}]");
        let message = match std::fs::metadata(socket) {
            Err(e) => format!(
                "{socket}: {e}: its containers are neither discovered nor their logs collected; {rerender}"
            ),
            Ok(m) if !m.file_type().is_socket() => {
                format!("{socket} is not a unix socket; {rerender}")
            }
            Ok(m) if m.gid() == 0 => format!(
                "{socket} is owned by group root, which Prometheus and Alloy are not given: \
                 give the socket a group of its own (SocketGroup= of its .socket unit) and render again"
            ),
            // systemd resolves even a numeric SupplementaryGroups= entry
            // and refuses to start the unit (216/GROUP) without a name.
            Ok(m) if named.as_ref().is_some_and(|n| !n.contains(&m.gid())) => format!(
                "{socket} is owned by group {}, which has no name in /etc/group: systemd \
                 will not start Prometheus and Alloy with it; add the group (groupadd -g {} NAME)",
                m.gid(),
                m.gid()
            ),
            Ok(_) => continue,
        };
        out.push(crate::diagnostic::ConfigIssue::new(field, message));
    }
    out
}

/// The group ids named in a group(5) file; None when it cannot be read.
fn group_ids(path: &str) -> Option<std::collections::BTreeSet<u32>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split(':').nth(2)?.parse().ok())
            .collect(),
    )
}

/// Job names of the discovered jobs. The probe job's series carry
/// `job="blackbox_http"`; a scraped container's carry its service name.
pub const PROBE_JOB: &str = "blackbox_http_containers";
pub const METRICS_JOB: &str = "container_metrics";

/// A job whose targets Prometheus discovers from container sockets.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveredJob {
    pub name: String,
    pub metrics_path: String,
    /// Docker API endpoints, as the daemon sees them ([`in_daemon`]).
    pub docker_hosts: Vec<String>,
    pub relabel: Vec<Relabel>,
}

/// One Prometheus relabel rule; field names as in Prometheus.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Relabel {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub separator: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
}

const META_NAME: &str = "__meta_docker_container_name";
const META_NETWORK_MODE: &str = "__meta_docker_container_network_mode";
const META_NETWORK_IP: &str = "__meta_docker_network_ip";
const META_PRIVATE_PORT: &str = "__meta_docker_port_private";
const META_PUBLIC_PORT: &str = "__meta_docker_port_public";
const META_PUBLIC_IP: &str = "__meta_docker_port_public_ip";

/// docker_sd's label for a container label: prefix plus the name with every
/// character outside [a-zA-Z0-9_] turned into `_`.
pub fn meta(container_label: &str) -> String {
    let name: String = container_label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("__meta_docker_container_label_{name}")
}

fn copy(from: &[&str], to: &str) -> Relabel {
    Relabel {
        source_labels: from.iter().map(|s| s.to_string()).collect(),
        target_label: Some(to.into()),
        ..Relabel::default()
    }
}

/// Sets `to` to `replacement` when the `;`-joined `from` matches `regex`.
fn set_if(from: &[&str], regex: &str, to: &str, replacement: &str) -> Relabel {
    Relabel {
        regex: Some(regex.into()),
        replacement: Some(replacement.into()),
        ..copy(from, to)
    }
}

fn constant(to: &str, value: &str) -> Relabel {
    Relabel {
        target_label: Some(to.into()),
        replacement: Some(value.into()),
        ..Relabel::default()
    }
}

fn filter(action: &'static str, from: &str, regex: &str) -> Relabel {
    Relabel {
        source_labels: vec![from.into()],
        regex: Some(regex.into()),
        action: Some(action),
        ..Relabel::default()
    }
}

/// Keeps the one target whose container port is the one `port_label` names;
/// a host-network container has no ports, and its single target is kept
/// when the label is set (`__tmp_port` then holds the host port).
fn select_port(port_label: &str, optional: bool) -> Vec<Relabel> {
    let port_label = meta(port_label);
    let mut rules = vec![
        copy(&[META_PRIVATE_PORT], "__tmp_sel"),
        set_if(
            &[META_NETWORK_MODE, &port_label],
            "host;(.+)",
            "__tmp_sel",
            "$1",
        ),
    ];
    if optional {
        // Unset: every port is wanted.
        rules.push(copy(&["__tmp_sel"], "__tmp_want"));
    }
    rules.push(set_if(&[&port_label], "(.+)", "__tmp_want", "$1"));
    rules.push(Relabel {
        source_labels: vec!["__tmp_sel".into()],
        target_label: Some("__tmp_want".into()),
        action: Some("keepequal"),
        ..Relabel::default()
    });
    rules
}

/// `__tmp_host`: where this host reaches a published port. A wildcard
/// binding (Docker writes 0.0.0.0 and ::, Podman an empty address) is
/// reached on loopback.
fn published_host() -> Vec<Relabel> {
    vec![
        copy(&[META_PUBLIC_IP], "__tmp_host"),
        set_if(
            &["__tmp_host"],
            "|0\\.0\\.0\\.0|::",
            "__tmp_host",
            "127.0.0.1",
        ),
        set_if(&["__tmp_host"], "(.*:.*)", "__tmp_host", "[$1]"),
    ]
}

/// `service`: the container name without Docker's leading `/`, or the label.
fn service() -> Vec<Relabel> {
    vec![
        set_if(&[META_NAME], "/?(.*)", label::SERVICE, "$1"),
        set_if(
            &[&meta(container_label::SERVICE)],
            "(.+)",
            label::SERVICE,
            "$1",
        ),
    ]
}

fn opted_out() -> Relabel {
    filter("drop", &meta(container_label::ENABLE), "false")
}

/// The jobs over `sockets` (paths of Docker API unix sockets); none without one.
pub fn jobs(sockets: &[String], blackbox: Option<&str>) -> Vec<DiscoveredJob> {
    if sockets.is_empty() {
        return Vec::new();
    }
    let hosts: Vec<String> = sockets
        .iter()
        .map(|s| format!("unix://{}", in_daemon(s)))
        .collect();
    let mut jobs = Vec::new();
    if let Some(blackbox) = blackbox {
        jobs.push(DiscoveredJob {
            name: PROBE_JOB.into(),
            metrics_path: "/probe".into(),
            docker_hosts: hosts.clone(),
            relabel: probe_rules(blackbox),
        });
    }
    jobs.push(DiscoveredJob {
        name: METRICS_JOB.into(),
        metrics_path: "/metrics".into(),
        docker_hosts: hosts,
        relabel: metrics_rules(),
    });
    jobs
}

/// Every published TCP port (or the one `homelab.probe.port` names) probed
/// over HTTP through blackbox, as `job="blackbox_http"` with a `service`.
fn probe_rules(blackbox: &str) -> Vec<Relabel> {
    let probe_port = meta(container_label::PROBE_PORT);
    let mut rules = vec![opted_out()];
    rules.extend(select_port(container_label::PROBE_PORT, true));
    rules.push(copy(&[META_PUBLIC_PORT], "__tmp_port"));
    rules.push(set_if(
        &[META_NETWORK_MODE, &probe_port],
        "host;(.+)",
        "__tmp_port",
        "$1",
    ));
    rules.push(filter("keep", "__tmp_port", ".+"));
    rules.extend(published_host());
    rules.push(constant("__tmp_path", "/"));
    rules.push(set_if(
        &[&meta(container_label::PROBE_PATH)],
        "(/.*)",
        "__tmp_path",
        "$1",
    ));
    rules.push(constant("__tmp_scheme", "http"));
    rules.push(set_if(
        &[&meta(container_label::PROBE_SCHEME)],
        "(https?)",
        "__tmp_scheme",
        "$1",
    ));
    rules.push(Relabel {
        separator: Some(";"),
        regex: Some("(.*);(.*);(.*);(.*)".into()),
        replacement: Some("$1://$2:$3$4".into()),
        ..copy(
            &["__tmp_scheme", "__tmp_host", "__tmp_port", "__tmp_path"],
            label::PARAM_TARGET,
        )
    });
    rules.push(copy(&[label::PARAM_TARGET], label::INSTANCE));
    rules.push(constant(label::PARAM_MODULE, module::HTTP_2XX));
    rules.extend(service());
    rules.push(constant(label::JOB, job::BLACKBOX_HTTP));
    rules.push(constant("__address__", blackbox));
    rules
}

/// Containers with `homelab.metrics.port`, scraped at that port: published
/// on loopback, else at the container's network address; each its own job,
/// named after the service.
fn metrics_rules() -> Vec<Relabel> {
    let metrics_port = meta(container_label::METRICS_PORT);
    let mut rules = vec![opted_out(), filter("keep", &metrics_port, ".+")];
    rules.extend(select_port(container_label::METRICS_PORT, false));
    rules.push(set_if(
        &[META_NETWORK_IP, META_PRIVATE_PORT],
        "(.+);(.+)",
        "__address__",
        "$1:$2",
    ));
    rules.extend(published_host());
    rules.push(set_if(
        &["__tmp_host", META_PUBLIC_PORT],
        "(.+);(.+)",
        "__address__",
        "$1:$2",
    ));
    rules.push(set_if(
        &[META_NETWORK_MODE, &metrics_port],
        "host;(.+)",
        "__address__",
        "127.0.0.1:$1",
    ));
    rules.push(set_if(
        &[&meta(container_label::METRICS_PATH)],
        "(/.*)",
        "__metrics_path__",
        "$1",
    ));
    rules.extend(service());
    rules.push(copy(&[label::SERVICE], label::JOB));
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_labels_map_to_docker_sd_meta_labels() {
        assert_eq!(
            meta("homelab.metrics.port"),
            "__meta_docker_container_label_homelab_metrics_port"
        );
        assert_eq!(
            meta("com.docker.compose.service"),
            "__meta_docker_container_label_com_docker_compose_service"
        );
    }

    #[test]
    fn only_a_server_with_discovery_on_and_a_socket_discovers() {
        let jobs_of = |toml: &str| {
            let cfg: crate::model::Config = toml::from_str(toml).unwrap();
            let plan = super::super::Plan::new(&cfg);
            plan.discovered_jobs()
                .iter()
                .map(|j| j.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(jobs_of(""), [PROBE_JOB, METRICS_JOB]);
        assert!(jobs_of("discovery.containers = false").is_empty());
        assert!(jobs_of("alloy.container_sockets = false").is_empty());
        let agent = r#"host = { role = "agent", ship_to = { prometheus_remote_write = "http://m/", loki_push = "http://m/" } }"#;
        assert_eq!(jobs_of(agent), [PROBE_JOB, METRICS_JOB], "Alloy runs them");
        assert!(jobs_of(&format!("{agent}\nalloy.enable = false")).is_empty());
        assert_eq!(
            jobs_of("exporters.blackbox = { enable = false, port = 9115 }"),
            [METRICS_JOB]
        );
    }

    #[test]
    fn the_probe_asks_only_podman_sockets_for_labels() {
        let sockets = |toml: &str| {
            let cfg: crate::model::Config = toml::from_str(toml).unwrap();
            probe_sockets(&cfg).map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(sockets(""), Some(vec![]), "Docker's labels are on disk");
        assert_eq!(sockets("discovery.containers = false"), None);
        assert_eq!(sockets("alloy.container_sockets = false"), None);
        assert_eq!(
            sockets(
                r#"alloy.container_sockets = ["/var/run/docker.sock", "/run/podman/podman.sock", "/run/user/1001/podman/podman.sock", "/run/user/1002/podman/podman.sock"]"#
            ),
            Some(vec![
                "/run/podman/podman.sock".to_string(),
                "/run/user/1001/podman/podman.sock".into(),
                "/run/user/1002/podman/podman.sock".into(),
            ])
        );
    }

    #[test]
    fn no_socket_no_jobs_and_no_blackbox_no_probe_job() {
        assert!(jobs(&[], Some("127.0.0.1:9115")).is_empty());
        let only_metrics = jobs(&["/run/podman/podman.sock".into()], None);
        assert_eq!(only_metrics.len(), 1);
        assert_eq!(only_metrics[0].name, METRICS_JOB);
        assert_eq!(
            only_metrics[0].docker_hosts,
            ["unix:///run/homelab-observability/container-sockets/run_podman_podman.sock"]
        );
    }
}
