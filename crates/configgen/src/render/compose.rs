//! compose.yaml: the stack as containers, for `docker compose` (v2, and
//! Debian bookworm's docker-compose 1.29) and `podman compose`. Everything
//! comes from the runtime model; this file only knows Compose's notation.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::{yaml, Tree};
use crate::plan::Plan;
use crate::runtime::{self, Daemon};

pub const PATH: &str = "compose.yaml";

/// The one-shot service that hands data volumes to their daemons' users.
pub const VOLUME_INIT: &str = "volume-init";

/// Where the volume-init service mounts each daemon's volume.
const INIT_MOUNT_ROOT: &str = "/volumes";

#[derive(Serialize)]
struct Compose {
    services: BTreeMap<String, Service>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    volumes: BTreeMap<String, Volume>,
}

#[derive(Serialize, Default)]
struct Service {
    image: String,
    user: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entrypoint: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    command: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    environment: BTreeMap<String, String>,
    network_mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<&'static str>,
    read_only: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tmpfs: Vec<&'static str>,
    cap_drop: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cap_add: Vec<&'static str>,
    /// Numeric host groups (the container sockets'): numbers are not
    /// looked up in the image's /etc/group.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    group_add: Vec<String>,
    security_opt: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    devices: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<Mount>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    depends_on: BTreeMap<&'static str, Dependency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restart: Option<&'static str>,
    mem_limit: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthcheck: Option<Healthcheck>,
    logging: Logging,
}

/// A mount in Compose's long syntax: a missing bind source is an error at
/// start, never a directory created on the host.
#[derive(Serialize)]
struct Mount {
    #[serde(rename = "type")]
    kind: &'static str,
    source: String,
    target: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    bind: Option<BindOptions>,
}

#[derive(Serialize)]
struct BindOptions {
    propagation: &'static str,
}

#[derive(Serialize)]
struct Dependency {
    condition: &'static str,
}

#[derive(Serialize)]
struct Healthcheck {
    test: Vec<String>,
    interval: &'static str,
    timeout: &'static str,
    retries: u32,
    start_period: &'static str,
}

#[derive(Serialize, Default)]
struct Logging {
    driver: &'static str,
    options: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
struct Volume {}

/// `text` as Compose passes it on: Compose interpolates `$NAME` in every
/// value, and `$$` is a literal `$`.
fn literal(text: &str) -> String {
    text.replace('$', "$$")
}

impl Mount {
    fn read_only_bind(source: &str, target: &str) -> Self {
        Mount {
            kind: "bind",
            source: literal(source),
            target: literal(target),
            read_only: true,
            bind: None,
        }
    }

    fn volume(name: &str, target: &str) -> Self {
        Mount {
            kind: "volume",
            source: name.into(),
            target: literal(target),
            read_only: false,
            bind: None,
        }
    }
}

/// The named volume holding a daemon's data directory.
pub fn volume_name(daemon: &Daemon) -> String {
    format!("{}-data", daemon.name)
}

/// Rotated container logs: Docker's default json-file driver grows without
/// bound. Podman reads `json-file` as its k8s-file driver.
fn logging() -> Logging {
    Logging {
        driver: "json-file",
        options: BTreeMap::from([("max-size", "10m"), ("max-file", "3")]),
    }
}

fn hardened(image: String, user: &str) -> Service {
    Service {
        image,
        user: user.into(),
        read_only: true,
        cap_drop: vec!["ALL"],
        security_opt: vec!["no-new-privileges:true"],
        logging: logging(),
        ..Default::default()
    }
}

fn service(daemon: &Daemon, config_dir: &str, needs_init: bool) -> Service {
    let c = &daemon.container;
    let mut s = hardened(daemon.image.reference(), c.user);
    s.command = daemon.container_args().iter().map(|a| literal(a)).collect();
    s.environment = daemon
        .env
        .iter()
        .map(|(k, v)| (k.clone(), literal(v)))
        .collect();
    s.network_mode = "host";
    s.pid = c.host_pid.then_some("host");
    s.tmpfs = c.scratch.clone();
    s.cap_add = daemon.capabilities.clone();
    s.cap_add.extend(c.capabilities.iter().copied());
    s.devices = c.devices.iter().map(|d| format!("{d}:{d}")).collect();
    s.group_add = c.groups.iter().map(u32::to_string).collect();

    let inside = |path: &str| path.starts_with(&format!("{config_dir}/"));
    if daemon.config_files.iter().any(|f| inside(f)) {
        s.volumes
            .push(Mount::read_only_bind(config_dir, config_dir));
    }
    for file in daemon.config_files.iter().filter(|f| !inside(f)) {
        s.volumes.push(Mount::read_only_bind(file, file));
    }
    for secret in &daemon.secrets {
        s.volumes.push(Mount::read_only_bind(secret, secret));
    }
    for m in &c.mounts {
        let mut mount = Mount::read_only_bind(&m.source, &m.target);
        mount.read_only = m.read_only;
        // A view of the host's root follows the host's later mounts.
        if m.source == "/" {
            mount.bind = Some(BindOptions {
                propagation: "rslave",
            });
        }
        s.volumes.push(mount);
    }
    if let Some(dir) = &daemon.data_dir {
        s.volumes.push(Mount::volume(&volume_name(daemon), dir));
    }
    if needs_init {
        s.depends_on.insert(
            VOLUME_INIT,
            Dependency {
                condition: "service_completed_successfully",
            },
        );
    }

    s.restart = Some("unless-stopped");
    s.mem_limit = c.memory_limit;
    s.healthcheck = c.healthcheck.clone().map(|test| Healthcheck {
        test: std::iter::once("CMD".to_string())
            .chain(test.iter().map(|a| literal(a)))
            .collect(),
        interval: "30s",
        timeout: "5s",
        retries: 3,
        start_period: "1m",
    });
    s
}

/// Whether a new (root-owned) volume must be handed to the daemon's user.
fn needs_init(daemon: &Daemon) -> bool {
    daemon.data_dir.is_some() && !daemon.container.user.starts_with("0:")
}

/// One-shot: `chown` each volume's top directory to its daemon's user. The
/// daemon creates everything below as that user.
fn volume_init(daemons: &[&Daemon]) -> Service {
    let mut s = hardened(runtime::VOLUME_INIT_IMAGE.reference(), "0:0");
    s.network_mode = "none";
    s.cap_add = vec!["CHOWN"];
    s.entrypoint = vec!["/bin/sh".into(), "-c".into()];
    let script: Vec<String> = daemons
        .iter()
        .map(|d| format!("chown {} {INIT_MOUNT_ROOT}/{}", d.container.user, d.name))
        .collect();
    s.command = vec![script.join(" && ")];
    s.volumes = daemons
        .iter()
        .map(|d| Mount::volume(&volume_name(d), &format!("{INIT_MOUNT_ROOT}/{}", d.name)))
        .collect();
    s.mem_limit = "32m";
    s
}

fn header(plan: &Plan) -> String {
    let dir = plan.cfg.deploy.config_dir.trim_end_matches('/');
    format!(
        "{}#
# The stack as containers, for Docker and Podman. With the rendered tree
# installed at {dir}:
#   docker compose -f {dir}/{PATH} up -d
#   (or podman compose with the same arguments)
#
# Every service uses the host's network (network_mode: host) and publishes
# no port: each daemon binds exactly the address its rendered config names
# (127.0.0.1 unless the config asks for more), and the stack scrapes and
# probes the host's services over the host's loopback.
# The rendered configs and secret files are mounted read-only at the same
# paths as on the host; a secret must be readable by the `user:` of the
# service that reads it. State lives in named volumes, handed to each
# daemon's user by the one-shot {VOLUME_INIT} service.
# alloy has no healthcheck: its image ships neither wget nor curl, and Alloy
# has no built-in check.
# The eBPF probe (homelab-probe) is not a container: it runs as a host unit
# on every target.
",
        yaml::header(plan)
    )
}

pub fn render(plan: &Plan, tree: &mut Tree) -> Result<()> {
    let daemons = runtime::daemons(plan);
    if daemons.is_empty() {
        return Ok(());
    }
    let config_dir = plan.cfg.deploy.config_dir.trim_end_matches('/');
    let to_init: Vec<&Daemon> = daemons.iter().filter(|d| needs_init(d)).collect();
    let mut doc = Compose {
        services: BTreeMap::new(),
        volumes: BTreeMap::new(),
    };
    for d in &daemons {
        doc.services
            .insert(d.name.to_string(), service(d, config_dir, needs_init(d)));
        if d.data_dir.is_some() {
            doc.volumes.insert(volume_name(d), Volume {});
        }
    }
    if !to_init.is_empty() {
        doc.services
            .insert(VOLUME_INIT.to_string(), volume_init(&to_init));
    }
    let body = quote_users(&serde_yaml_ng::to_string(&doc)?, &doc);
    tree.add(PATH, header(plan) + &body)
}

/// Puts every `user:` value in quotes. YAML 1.1 parsers (PyYAML, in
/// docker-compose 1.x and podman-compose) read a plain `472:0` as the
/// base-60 integer 28320; the emitter only quotes what YAML 1.2 would misread.
fn quote_users(body: &str, doc: &Compose) -> String {
    let mut out = body.to_string();
    let users: std::collections::BTreeSet<&str> =
        doc.services.values().map(|s| s.user.as_str()).collect();
    for user in users {
        out = out.replace(
            &format!("\n    user: {user}\n"),
            &format!("\n    user: '{user}'\n"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Config;

    fn render_of(toml_text: &str) -> serde_yaml_ng::Value {
        let cfg: Config = toml::from_str(toml_text).unwrap();
        let mut tree = Tree::default();
        render(&Plan::new(&cfg), &mut tree).unwrap();
        serde_yaml_ng::from_str(tree.get(PATH).unwrap()).unwrap()
    }

    #[test]
    fn init_hands_each_volume_to_its_user() {
        let doc = render_of("");
        let init = &doc["services"][VOLUME_INIT];
        let script = init["command"][0].as_str().unwrap();
        assert!(
            script.contains("chown 65534:65534 /volumes/prometheus"),
            "{script}"
        );
        assert!(
            script.contains("chown 10001:10001 /volumes/loki"),
            "{script}"
        );
        assert!(script.contains("chown 472:0 /volumes/grafana"), "{script}");
        // Alloy runs as root: its volume needs no hand-over.
        assert!(!script.contains("alloy"), "{script}");
        assert!(doc["services"]["alloy"]["depends_on"].is_null());
        assert_eq!(
            doc["services"]["loki"]["depends_on"][VOLUME_INIT]["condition"],
            "service_completed_successfully"
        );
        assert!(init["restart"].is_null(), "a one-shot must not restart");
        assert_eq!(init["cap_add"][0], "CHOWN");
    }

    #[test]
    fn users_are_quoted_for_yaml_1_1_parsers() {
        let cfg = Config::default();
        let mut tree = Tree::default();
        render(&Plan::new(&cfg), &mut tree).unwrap();
        let text = tree.get(PATH).unwrap();
        assert!(text.contains("\n    user: '472:0'\n"), "{text}");
        assert!(!text.contains("\n    user: 4"), "{text}");
    }

    #[test]
    fn only_node_exporter_sees_host_pids() {
        let doc = render_of("");
        for (name, s) in doc["services"].as_mapping().unwrap() {
            let host_pid = s["pid"].as_str() == Some("host");
            assert_eq!(host_pid, name == "node-exporter", "{name:?}");
        }
    }

    #[test]
    fn host_root_follows_host_mounts() {
        let doc = render_of("");
        let mounts = doc["services"]["node-exporter"]["volumes"]
            .as_sequence()
            .unwrap();
        let root = mounts.iter().find(|m| m["target"] == "/host").unwrap();
        assert_eq!(root["bind"]["propagation"], "rslave");
        assert_eq!(root["read_only"], true);
    }

    #[test]
    fn a_config_file_outside_the_config_dir_is_mounted_too() {
        let doc = render_of("[grafana]\ndashboards_dir = \"/srv/dashboards\"\n");
        let mounts = doc["services"]["grafana"]["volumes"].as_sequence().unwrap();
        assert!(mounts
            .iter()
            .any(|m| m["source"] == "/srv/dashboards" && m["read_only"] == true));
    }

    #[test]
    fn agents_get_their_daemons_only() {
        let doc = render_of(
            "[host]\nrole = \"agent\"\nship_to = { prometheus_remote_write = \"http://s:9090/api/v1/write\", loki_push = \"http://s:3100/loki/api/v1/push\" }\n",
        );
        let names: Vec<&str> = doc["services"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["alloy", "blackbox-exporter", "cadvisor", "node-exporter"]
        );
    }
}
