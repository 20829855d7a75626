//! How every daemon of the stack runs: program and pinned version, flags,
//! every listener, data directory, user, the files and secrets it reads, and
//! what it needs from the host. Decided here once; compose.yaml, the systemd
//! units and the NixOS module's wiring read these facts and add nothing of
//! their own.
//!
//! The rendered tree is installed at `deploy.config_dir` on the host and
//! mounted at that same path in containers; data directories and secret files
//! are also at the same paths everywhere. So a flag is one string on every
//! deployment target.

use std::collections::BTreeSet;

use crate::model::{Config, Receiver};
use crate::plan::{containers, job, join_host_port, scrape_address, Plan, INTERNAL_ADDRESS};
use crate::render::{grafana as grafana_render, tempo as tempo_render};

/// A container image, pinned to the exact upstream release the rendered
/// configs are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Image {
    pub repository: &'static str,
    pub tag: &'static str,
}

impl Image {
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

/// A daemon as Debian (or its upstream's own .deb) packages it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package {
    /// The package name, e.g. `prometheus-node-exporter`.
    pub name: &'static str,
    /// Whether Debian itself ships it; otherwise the upstream .deb does.
    pub in_debian: bool,
    /// The systemd unit the package installs.
    pub unit: &'static str,
    pub binary: &'static str,
    /// The system user the package creates and runs the daemon as.
    pub user: &'static str,
    /// Whether the package installs `unit`; otherwise configgen renders the
    /// whole unit and `binary` is where the user puts the upstream release.
    pub installs_unit: bool,
}

/// A socket the daemon opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// What the socket is for: `http`, `grpc`, `gossip`, `otlp-grpc`, ...
    pub purpose: &'static str,
    pub address: String,
    pub port: u16,
}

/// A host path a container needs to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMount {
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

impl HostMount {
    fn same_path(path: &str) -> Self {
        HostMount {
            source: path.into(),
            target: path.into(),
            read_only: true,
        }
    }
}

/// What running in a container needs beyond the common facts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerNeeds {
    /// `uid:gid` the image runs as; the data volume is handed to it.
    pub user: &'static str,
    /// Flags only a container needs (e.g. where the host's root is mounted);
    /// one also given in `args` replaces it there ([`Daemon::container_args`]).
    pub extra_args: Vec<String>,
    pub host_pid: bool,
    pub mounts: Vec<HostMount>,
    /// Numeric host groups the container's user joins (the container
    /// sockets' groups): a number is not looked up in the image.
    pub groups: Vec<u32>,
    pub devices: Vec<&'static str>,
    /// Capabilities only the container needs, beyond the daemon's own: group
    /// names are resolved in the image, not on the host, so an image user
    /// cannot join the host's groups by name (only by a number known when
    /// rendering, as for the container sockets) and reads their files
    /// through a capability instead.
    pub capabilities: Vec<&'static str>,
    /// Memory limit that fits a small server, in Compose's notation.
    pub memory_limit: &'static str,
    /// Paths the image writes outside the data directory; everything else
    /// of the image is mounted read-only.
    pub scratch: Vec<&'static str>,
    /// The command, run inside the container with what its image ships, that
    /// exits 0 once the daemon is ready. None: the image has no program
    /// that can probe it.
    pub healthcheck: Option<Vec<String>>,
}

/// An image of the stack that ships busybox's `chown`: it hands each new
/// data volume, created root-owned, to its daemon's user.
pub const VOLUME_INIT_IMAGE: Image = release::PROMETHEUS;

/// `wget` of busybox (Prometheus-project and Alpine-based images): exits 0
/// on a 2xx answer.
fn wget(address: &str, port: u16, path: &str) -> Option<Vec<String>> {
    let url = format!("http://{}{path}", scrape_address(address, port));
    Some(
        ["wget", "-q", "-O", "/dev/null", &url]
            .map(String::from)
            .into(),
    )
}

/// The built-in `-health` check of Loki's and Tempo's distroless images.
fn builtin_health(binary: &str, address: &str, port: u16) -> Option<Vec<String>> {
    let url = format!("-health.url=http://{}/ready", scrape_address(address, port));
    Some([binary, "-health", &url].map(String::from).into())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    /// Service name in compose.yaml and in our own units.
    pub name: &'static str,
    /// The `job` label of its own metrics.
    pub job: &'static str,
    pub image: Image,
    pub package: Package,
    /// Command-line flags, the same on every target.
    pub args: Vec<String>,
    /// Environment the daemon needs, the same on every target.
    pub env: Vec<(String, String)>,
    pub listeners: Vec<Listener>,
    pub data_dir: Option<String>,
    /// Rendered files it reads, as absolute paths under `deploy.config_dir`.
    pub config_files: Vec<String>,
    /// Secret files the config names, read by the daemon at run time.
    pub secrets: Vec<String>,
    /// Linux capabilities it needs beyond an unprivileged user's.
    pub capabilities: Vec<&'static str>,
    /// Re-reads its config files on SIGHUP; otherwise a config change needs
    /// a restart.
    pub reloads_on_sighup: bool,
    pub container: ContainerNeeds,
    pub unit: UnitNeeds,
}

impl Daemon {
    /// The container's command line: `args`, then the container's
    /// `extra_args`, each of which replaces the same flag of `args` (the Go
    /// flag parsers refuse a flag given twice).
    pub fn container_args(&self) -> Vec<String> {
        fn flag_name(arg: &str) -> &str {
            arg.split_once('=').map_or(arg, |(name, _)| name)
        }
        let extra = &self.container.extra_args;
        self.args
            .iter()
            .filter(|a| !extra.iter().any(|e| flag_name(e) == flag_name(a)))
            .chain(extra)
            .cloned()
            .collect()
    }
}

/// What running from its package under systemd needs beyond the common facts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitNeeds {
    /// Arguments before `args` that only the packaged binary needs (the
    /// image's entrypoint passes its own).
    pub leading_args: Vec<String>,
    /// Reads the host's devices, mount points, network interfaces and clock
    /// state: it must see the real /dev and /home, and may call adjtimex(2).
    pub inspects_host: bool,
    /// Host groups whose files it reads (the journal, the container sockets,
    /// log files), by name or number.
    pub groups: Vec<String>,
    /// Host paths mounted read-only into the unit's namespace by systemd,
    /// skipped when the source does not exist.
    pub mounts: Vec<HostMount>,
}

/// How a daemon reaching the container sockets sees them: each mounted
/// read-only at its [`containers::in_daemon`] path, and the sockets'
/// groups (those known on this host) to join.
#[derive(Default)]
struct SocketAccess {
    mounts: Vec<HostMount>,
    groups: Vec<u32>,
}

fn socket_access(plan: &Plan) -> SocketAccess {
    let sockets = &plan.cfg.alloy.container_sockets;
    let groups: BTreeSet<u32> = sockets
        .iter()
        .filter_map(|s| plan.socket_groups.get(s).copied())
        .collect();
    SocketAccess {
        mounts: sockets
            .iter()
            .map(|s| HostMount {
                source: s.clone(),
                target: containers::in_daemon(s),
                read_only: true,
            })
            .collect(),
        groups: groups.into_iter().collect(),
    }
}

/// The pinned releases. Every image tag and every version-dependent choice of
/// the renderers refers to this one table.
pub mod release {
    use super::Image;
    pub const PROMETHEUS: Image = Image {
        repository: "quay.io/prometheus/prometheus",
        tag: "v3.14.0",
    };
    pub const ALERTMANAGER: Image = Image {
        repository: "quay.io/prometheus/alertmanager",
        tag: "v0.34.0",
    };
    /// `alertmanager.version`'s default: the image's release, major.minor.
    pub const ALERTMANAGER_VERSION: &str = "0.34";
    pub const NODE_EXPORTER: Image = Image {
        repository: "quay.io/prometheus/node-exporter",
        tag: "v1.12.1",
    };
    pub const BLACKBOX_EXPORTER: Image = Image {
        repository: "quay.io/prometheus/blackbox-exporter",
        tag: "v0.28.0",
    };
    pub const CADVISOR: Image = Image {
        repository: "ghcr.io/google/cadvisor",
        tag: "0.60.5",
    };
    pub const LOKI: Image = Image {
        repository: "docker.io/grafana/loki",
        tag: "3.7.6",
    };
    pub const ALLOY: Image = Image {
        repository: "docker.io/grafana/alloy",
        tag: "v1.18.1",
    };
    pub const TEMPO: Image = Image {
        repository: "docker.io/grafana/tempo",
        tag: "3.0.3",
    };
    pub const GRAFANA: Image = Image {
        repository: "docker.io/grafana/grafana",
        tag: "13.2.0",
    };
}

/// Debian's packages of the Prometheus project: their own units, all run as
/// the `prometheus` user the packages create.
const fn prometheus_family(
    name: &'static str,
    unit: &'static str,
    binary: &'static str,
) -> Package {
    Package {
        name,
        in_debian: true,
        unit,
        binary,
        user: "prometheus",
        installs_unit: true,
    }
}

/// `nobody`, the user of the Prometheus project's images.
const NOBODY: &str = "65534:65534";

/// node_exporter's textfile collector directory: Debian's default, where the
/// scripts of prometheus-node-exporter-collectors write.
pub const NODE_TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";

/// How one daemon runs on this host, decided from the plan.
type DaemonOf = fn(&Plan) -> Daemon;

/// The daemons this host runs, in a stable order. The eBPF probe is not
/// among them: it runs as a host unit on every target (see `probe_args`).
pub fn daemons(plan: &Plan) -> Vec<Daemon> {
    let builders: [(&str, DaemonOf); 9] = [
        (job::PROMETHEUS, prometheus),
        (job::ALERTMANAGER, alertmanager),
        (job::NODE, node_exporter),
        (job::BLACKBOX_EXPORTER, blackbox_exporter),
        (job::CADVISOR, cadvisor),
        (job::LOKI, loki),
        (job::TEMPO, tempo),
        (job::ALLOY, alloy),
        (job::GRAFANA, grafana),
    ];
    builders
        .into_iter()
        .filter(|(job, _)| plan.runs(job))
        .map(|(_, daemon)| daemon(plan))
        .collect()
}

/// A file of the rendered tree, where the host (and every container) sees it.
fn file(cfg: &Config, rel: &str) -> String {
    format!("{}/{rel}", cfg.deploy.config_dir.trim_end_matches('/'))
}

fn http(address: &str, port: u16) -> Listener {
    Listener {
        purpose: "http",
        address: address.into(),
        port,
    }
}

fn listen_flag(l: &Listener) -> String {
    format!(
        "--web.listen-address={}",
        join_host_port(&l.address, l.port)
    )
}

fn prometheus(plan: &Plan) -> Daemon {
    let cfg = plan.cfg;
    let p = &cfg.prometheus;
    let l = http(&p.listen_address, p.port);
    let mut args = vec![
        format!("--config.file={}", file(cfg, "prometheus/prometheus.yml")),
        format!("--storage.tsdb.path={}", p.data_dir),
        format!("--storage.tsdb.retention.time={}", p.retention),
        listen_flag(&l),
        // Exemplars carry the trace ids behind the metric-to-trace links.
        "--enable-feature=exemplar-storage".into(),
    ];
    if accepts_remote_write(cfg, plan) {
        args.push("--web.enable-remote-write-receiver".into());
    }
    if let Some(url) = plan.external_url(job::PROMETHEUS) {
        // The links in alerts (generatorURL) point there.
        args.push(format!("--web.external-url={url}"));
    }
    // docker_sd reads the container sockets.
    let sockets = if plan.discovered_jobs().is_empty() {
        SocketAccess::default()
    } else {
        socket_access(plan)
    };
    Daemon {
        name: "prometheus",
        job: job::PROMETHEUS,
        image: release::PROMETHEUS,
        package: prometheus_family("prometheus", "prometheus.service", "/usr/bin/prometheus"),
        args,
        env: Vec::new(),
        listeners: vec![l],
        data_dir: Some(p.data_dir.clone()),
        config_files: vec![file(cfg, "prometheus")],
        secrets: prometheus_secrets(cfg),
        capabilities: Vec::new(),
        reloads_on_sighup: true,
        unit: UnitNeeds {
            groups: sockets.groups.iter().map(u32::to_string).collect(),
            mounts: sockets.mounts.clone(),
            ..Default::default()
        },
        container: ContainerNeeds {
            user: NOBODY,
            mounts: sockets.mounts,
            groups: sockets.groups,
            memory_limit: "1g",
            healthcheck: wget(&p.listen_address, p.port, "/-/healthy"),
            ..Default::default()
        },
    }
}

fn alertmanager(plan: &Plan) -> Daemon {
    let cfg = plan.cfg;
    let a = &cfg.alertmanager;
    let l = http(&a.listen_address, a.port);
    Daemon {
        name: "alertmanager",
        job: job::ALERTMANAGER,
        image: release::ALERTMANAGER,
        package: prometheus_family(
            "prometheus-alertmanager",
            "prometheus-alertmanager.service",
            "/usr/bin/prometheus-alertmanager",
        ),
        args: [
            format!(
                "--config.file={}",
                file(cfg, "alertmanager/alertmanager.yml")
            ),
            format!("--storage.path={}", a.data_dir),
            listen_flag(&l),
            // A single Alertmanager needs no cluster: an empty address
            // turns gossip off, so nothing listens on 9094.
            "--cluster.listen-address=".into(),
        ]
        .into_iter()
        // The links in notifications ({{ .ExternalURL }}) point there.
        .chain(
            plan.external_url(job::ALERTMANAGER)
                .map(|url| format!("--web.external-url={url}")),
        )
        .collect(),
        env: Vec::new(),
        listeners: vec![l],
        data_dir: Some(a.data_dir.clone()),
        config_files: vec![file(cfg, "alertmanager/alertmanager.yml")],
        secrets: receiver_secrets(cfg),
        capabilities: Vec::new(),
        reloads_on_sighup: true,
        unit: UnitNeeds::default(),
        container: ContainerNeeds {
            user: NOBODY,
            memory_limit: "128m",
            healthcheck: wget(&a.listen_address, a.port, "/-/healthy"),
            ..Default::default()
        },
    }
}

fn node_exporter(plan: &Plan) -> Daemon {
    let cfg = plan.cfg;
    let n = &cfg.exporters.node;
    let l = http(&n.listen_address, n.port);
    let mut args = vec![listen_flag(&l)];
    args.extend(n.collectors.iter().map(|c| format!("--collector.{c}")));
    // Scripts (Debian's prometheus-node-exporter-collectors, the reboot
    // check in docs/alerts.md) leave *.prom files there.
    args.push(format!(
        "--collector.textfile.directory={NODE_TEXTFILE_DIR}"
    ));
    let systemd = n.collectors.iter().any(|c| c == "systemd");
    if systemd {
        // node_systemd_service_restart_total, which the crash-loop alert counts.
        args.push("--collector.systemd.enable-restarts-metrics".into());
    }
    let mut mounts = vec![HostMount {
        source: "/".into(),
        target: "/host".into(),
        read_only: true,
    }];
    if systemd {
        mounts.push(HostMount::same_path("/run/dbus/system_bus_socket"));
    }
    Daemon {
        name: "node-exporter",
        job: job::NODE,
        image: release::NODE_EXPORTER,
        package: prometheus_family(
            "prometheus-node-exporter",
            "prometheus-node-exporter.service",
            "/usr/bin/prometheus-node-exporter",
        ),
        args,
        env: Vec::new(),
        listeners: vec![l],
        data_dir: None,
        config_files: Vec::new(),
        secrets: Vec::new(),
        capabilities: Vec::new(),
        reloads_on_sighup: false,
        unit: UnitNeeds {
            inspects_host: true,
            ..Default::default()
        },
        container: ContainerNeeds {
            user: NOBODY,
            extra_args: vec![
                "--path.rootfs=/host".into(),
                // The textfile collector does not read through --path.rootfs.
                format!("--collector.textfile.directory=/host{NODE_TEXTFILE_DIR}"),
            ],
            host_pid: true,
            mounts,
            memory_limit: "128m",
            healthcheck: wget(&n.listen_address, n.port, "/"),
            ..Default::default()
        },
    }
}

fn blackbox_exporter(plan: &Plan) -> Daemon {
    let cfg = plan.cfg;
    let b = &cfg.exporters.blackbox;
    let l = http(&b.listen_address, b.port);
    Daemon {
        name: "blackbox-exporter",
        job: job::BLACKBOX_EXPORTER,
        image: release::BLACKBOX_EXPORTER,
        package: prometheus_family(
            "prometheus-blackbox-exporter",
            "prometheus-blackbox-exporter.service",
            "/usr/bin/prometheus-blackbox-exporter",
        ),
        args: vec![
            format!("--config.file={}", file(cfg, "blackbox/blackbox.yml")),
            listen_flag(&l),
        ],
        env: Vec::new(),
        listeners: vec![l],
        data_dir: None,
        config_files: vec![file(cfg, "blackbox/blackbox.yml")],
        secrets: Vec::new(),
        // ICMP probes open raw sockets.
        capabilities: vec!["NET_RAW"],
        reloads_on_sighup: true,
        unit: UnitNeeds::default(),
        container: ContainerNeeds {
            // The image runs as root; a non-root container user would not
            // keep NET_RAW, and host networking rules out the ping sysctl.
            // Every other capability is dropped.
            user: "0:0",
            memory_limit: "64m",
            healthcheck: wget(&b.listen_address, b.port, "/-/healthy"),
            ..Default::default()
        },
    }
}

fn cadvisor(plan: &Plan) -> Daemon {
    let cfg = plan.cfg;
    let c = &cfg.exporters.cadvisor;
    let l = http(&c.listen_address, c.port);
    Daemon {
        name: "cadvisor",
        job: job::CADVISOR,
        image: release::CADVISOR,
        package: Package {
            // Not in Debian (bookworm or later) and no upstream .deb: the
            // static binary of cAdvisor's GitHub release.
            name: "cadvisor",
            in_debian: false,
            unit: "cadvisor.service",
            binary: "/usr/local/bin/cadvisor",
            user: "root",
            installs_unit: false,
        },
        args: vec![
            format!("--listen_ip={}", c.listen_address),
            format!("--port={}", c.port),
            // Systemd services too, not only Docker containers.
            "--docker_only=false".into(),
            "--housekeeping_interval=30s".into(),
        ],
        env: Vec::new(),
        listeners: vec![l],
        data_dir: None,
        config_files: Vec::new(),
        secrets: Vec::new(),
        capabilities: vec!["SYS_ADMIN", "DAC_READ_SEARCH"],
        reloads_on_sighup: false,
        unit: UnitNeeds {
            inspects_host: true,
            ..Default::default()
        },
        container: ContainerNeeds {
            user: "0:0",
            mounts: ["/", "/var/run", "/sys", "/var/lib/docker", "/dev/disk"]
                .into_iter()
                .map(|p| HostMount {
                    source: p.into(),
                    target: if p == "/" { "/rootfs".into() } else { p.into() },
                    read_only: true,
                })
                .collect(),
            devices: vec!["/dev/kmsg"],
            memory_limit: "256m",
            scratch: vec!["/tmp"],
            // The image's own check asks for `localhost`, which may
            // resolve to ::1 while cAdvisor listens on 127.0.0.1 only.
            healthcheck: wget(&c.listen_address, c.port, "/healthz"),
            ..Default::default()
        },
    }
}

fn loki(plan: &Plan) -> Daemon {
    let cfg = plan.cfg;
    let lk = &cfg.loki;
    Daemon {
        name: "loki",
        job: job::LOKI,
        image: release::LOKI,
        package: Package {
            name: "loki",
            in_debian: false,
            unit: "loki.service",
            binary: "/usr/bin/loki",
            user: "loki",
            installs_unit: true,
        },
        args: vec![format!("-config.file={}", file(cfg, "loki/loki.yaml"))],
        env: Vec::new(),
        listeners: vec![
            http(&lk.listen_address, lk.port),
            Listener {
                purpose: "grpc",
                address: INTERNAL_ADDRESS.into(),
                port: lk.grpc_port,
            },
        ],
        data_dir: Some(lk.data_dir.clone()),
        config_files: [file(cfg, "loki/loki.yaml")]
            .into_iter()
            .chain(
                plan.runs(job::ALERTMANAGER)
                    .then(|| file(cfg, crate::render::loki::RULES_FILE)),
            )
            .collect(),
        secrets: Vec::new(),
        capabilities: Vec::new(),
        reloads_on_sighup: false,
        unit: UnitNeeds::default(),
        container: ContainerNeeds {
            user: "10001:10001",
            memory_limit: "512m",
            scratch: vec!["/tmp"],
            healthcheck: builtin_health("/usr/bin/loki", &lk.listen_address, lk.port),
            ..Default::default()
        },
    }
}

fn tempo(plan: &Plan) -> Daemon {
    let cfg = plan.cfg;
    let t = &cfg.tempo;
    let on = |purpose, address: &str, port| Listener {
        purpose,
        address: address.into(),
        port,
    };
    Daemon {
        name: "tempo",
        job: job::TEMPO,
        image: release::TEMPO,
        package: Package {
            name: "tempo",
            in_debian: false,
            unit: "tempo.service",
            binary: "/usr/bin/tempo",
            user: "tempo",
            installs_unit: true,
        },
        args: vec![format!("-config.file={}", file(cfg, "tempo/tempo.yaml"))],
        env: Vec::new(),
        listeners: vec![
            on("http", &t.listen_address, t.port),
            on("grpc", INTERNAL_ADDRESS, tempo_render::GRPC_PORT),
            on("otlp-grpc", &t.otlp_grpc_listen_address, t.otlp_grpc_port),
            on("gossip", INTERNAL_ADDRESS, tempo_render::MEMBERLIST_PORT),
        ],
        data_dir: Some(t.data_dir.clone()),
        config_files: vec![file(cfg, "tempo/tempo.yaml")],
        secrets: Vec::new(),
        capabilities: Vec::new(),
        reloads_on_sighup: false,
        unit: UnitNeeds::default(),
        container: ContainerNeeds {
            user: "10001:10001",
            memory_limit: "512m",
            scratch: vec!["/tmp"],
            healthcheck: builtin_health("/tempo", &t.listen_address, t.port),
            ..Default::default()
        },
    }
}

fn alloy(plan: &Plan) -> Daemon {
    let cfg = plan.cfg;
    let a = &cfg.alloy;
    let on = |purpose, port| Listener {
        purpose,
        address: a.listen_address.clone(),
        port,
    };
    let mut mounts: Vec<HostMount> = ["/var/log/journal", "/run/log/journal", "/etc/machine-id"]
        .into_iter()
        .map(HostMount::same_path)
        .collect();
    // Debian's journal and log-file groups.
    let mut groups: Vec<String> = vec!["systemd-journal".into(), "adm".into()];
    let sockets = socket_access(plan);
    groups.extend(sockets.groups.iter().map(u32::to_string));
    mounts.extend(sockets.mounts.iter().cloned());
    let log_dirs: BTreeSet<&str> = a
        .log_files
        .iter()
        .filter_map(|f| glob_root(&f.path))
        .collect();
    mounts.extend(log_dirs.into_iter().map(HostMount::same_path));
    Daemon {
        name: "alloy",
        job: job::ALLOY,
        image: release::ALLOY,
        package: Package {
            name: "alloy",
            in_debian: false,
            unit: "alloy.service",
            binary: "/usr/bin/alloy",
            user: "alloy",
            installs_unit: true,
        },
        args: vec![
            "run".into(),
            format!(
                "--server.http.listen-addr={}",
                join_host_port(&a.listen_address, a.port)
            ),
            format!("--storage.path={}", a.data_dir),
            "--disable-reporting".into(),
            file(cfg, "alloy"),
        ],
        env: Vec::new(),
        listeners: vec![
            on("http", a.port),
            on("otlp-grpc", a.otlp_grpc_port),
            on("otlp-http", a.otlp_http_port),
        ],
        data_dir: Some(a.data_dir.clone()),
        config_files: vec![file(cfg, "alloy")],
        secrets: Vec::new(),
        capabilities: Vec::new(),
        reloads_on_sighup: true,
        unit: UnitNeeds {
            groups,
            mounts: sockets.mounts,
            ..Default::default()
        },
        container: ContainerNeeds {
            user: "0:0",
            mounts,
            groups: sockets.groups,
            // Log files of other users (e.g. www-data:adm 0640), which
            // root without its capabilities cannot read.
            capabilities: vec!["DAC_READ_SEARCH"],
            memory_limit: "256m",
            scratch: vec!["/tmp"],
            // No healthcheck: the image has neither wget nor curl, and
            // Alloy has no built-in check.
            ..Default::default()
        },
    }
}

fn grafana(plan: &Plan) -> Daemon {
    let cfg = plan.cfg;
    let g = &cfg.grafana;
    let secrets = grafana_render::ini::secret_files(g)
        .into_iter()
        .map(|(_, path)| path.to_string())
        .collect();
    let mut env = vec![(
        "GF_PATHS_CONFIG".to_string(),
        file(cfg, "grafana/grafana.ini"),
    )];
    env.extend(
        grafana_render::ini::paths(cfg)
            .map(|(key, value)| (format!("GF_PATHS_{}", key.to_uppercase()), value)),
    );
    Daemon {
        name: "grafana",
        job: job::GRAFANA,
        image: release::GRAFANA,
        package: Package {
            name: "grafana",
            in_debian: false,
            unit: "grafana-server.service",
            binary: "/usr/share/grafana/bin/grafana",
            user: "grafana",
            installs_unit: true,
        },
        args: Vec::new(),
        env,
        listeners: vec![http(&g.listen_address, g.port)],
        data_dir: Some(g.data_dir.clone()),
        config_files: vec![
            file(cfg, "grafana/grafana.ini"),
            file(cfg, "grafana/provisioning"),
            g.dashboards_dir.clone(),
        ],
        secrets,
        capabilities: Vec::new(),
        reloads_on_sighup: false,
        unit: UnitNeeds {
            // What the image's entrypoint passes: the package's binary
            // is the multi-command `grafana`, and GF_PATHS_CONFIG is
            // only read by that entrypoint script.
            leading_args: vec![
                "server".into(),
                "--homepath=/usr/share/grafana".into(),
                format!("--config={}", file(cfg, "grafana/grafana.ini")),
            ],
            ..Default::default()
        },
        container: ContainerNeeds {
            user: "472:0",
            memory_limit: "512m",
            // The image's default log mode also writes a file there.
            scratch: vec!["/tmp", "/var/log/grafana"],
            healthcheck: wget(&g.listen_address, g.port, "/api/health"),
            ..Default::default()
        },
    }
}

/// Agents remote-write to this Prometheus, and Tempo writes span metrics.
fn accepts_remote_write(cfg: &Config, plan: &Plan) -> bool {
    cfg.prometheus.remote_write_receiver || plan.runs(job::TEMPO)
}

/// Credentials of remote writes and of the user's scrape jobs, and the TLS
/// files those jobs name.
fn prometheus_secrets(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for rw in &cfg.prometheus.remote_write {
        out.extend(rw.basic_auth.iter().map(|b| b.password_file.clone()));
        out.extend(rw.bearer_token_file.iter().cloned());
    }
    for sc in &cfg.prometheus.scrape_configs {
        out.extend(sc.basic_auth.iter().map(|b| b.password_file.clone()));
        out.extend(sc.bearer_token_file.iter().cloned());
        if let Some(tls) = &sc.tls_config {
            out.extend(
                [&tls.ca_file, &tls.cert_file, &tls.key_file]
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        }
    }
    out
}

fn receiver_secrets(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for r in &cfg.alerting.receivers {
        match r {
            Receiver::Email(e) => out.extend(e.password_file.iter().cloned()),
            Receiver::Ntfy(n) => {
                out.extend(n.token_file.iter().cloned());
                out.extend(n.url_file.iter().cloned());
            }
            Receiver::Webhook(w) => out.extend(w.url_file.iter().cloned()),
            Receiver::Telegram(t) => out.push(t.bot_token_file.clone()),
            Receiver::Discord(d) => out.push(d.webhook_url_file.clone()),
            Receiver::Pushover(p) => {
                out.push(p.user_key_file.clone());
                out.push(p.token_file.clone());
            }
        }
    }
    out.extend(cfg.alerting.watchdog_url_file.iter().cloned());
    out
}

/// The directory a log-file glob lives in, e.g. `/var/log/nginx` for
/// `/var/log/nginx/*.log`.
fn glob_root(path: &str) -> Option<&str> {
    let cut = path.find(['*', '?', '[', '{']).unwrap_or(path.len());
    let dir = path[..cut].rsplit_once('/')?.0;
    (!dir.is_empty()).then_some(dir)
}

/// Where the probe's binary is installed on a host without Nix
/// (`cargo install --locked --path crates/probe --root /usr/local`).
pub const PROBE_BINARY: &str = "/usr/local/bin/homelab-probe";

/// The capabilities the probe needs, as measured in docs/probe.md
/// ("Capabilities"): load BPF programs and maps; attach them to tracepoints;
/// read tracefs event ids (mode 0700), other users' /proc/PID/fd and Docker's
/// container configs; readlink other users' /proc/PID/fd. The NixOS module's
/// probe.nix lists the same (a test compares).
pub const PROBE_CAPABILITIES: [&str; 4] = ["BPF", "PERFMON", "DAC_READ_SEARCH", "SYS_PTRACE"];

/// Only for TLS (libssl uprobes, `exporters.probe.tls`): the uprobe PMU
/// refuses CAP_PERFMON alone.
pub const PROBE_TLS_CAPABILITY: &str = "SYS_ADMIN";

/// The eBPF probe's command line, for the host unit every target runs.
pub fn probe_args(plan: &Plan) -> Option<Vec<String>> {
    if !plan.runs(job::RED_PROBE) {
        return None;
    }
    let dir = plan.cfg.deploy.config_dir.trim_end_matches('/');
    let mut args = vec![format!("--config={dir}/probe/probe.toml")];
    if !plan.cfg.exporters.probe.tls {
        args.push("--no-tls".into());
    }
    Some(args)
}

/// Only for Podman API sockets the probe asks for containers' labels
/// (`homelab.red`): they are 0660, owned by root or by the rootless user, and
/// the probe runs as a dynamic user. Talking to a Podman socket is control
/// over that user's containers; docs/probe.md weighs it.
pub const PROBE_SOCKET_CAPABILITY: &str = "DAC_OVERRIDE";

/// Whether the probe connects to Podman API sockets (containers' labels).
pub fn probe_uses_sockets(plan: &Plan) -> bool {
    crate::plan::containers::probe_sockets(plan.cfg).is_some_and(|s| !s.is_empty())
}

/// The capabilities of the probe's unit: CAP_SYS_ADMIN only with TLS,
/// CAP_DAC_OVERRIDE only with Podman sockets to ask.
pub fn probe_capabilities(plan: &Plan) -> Vec<&'static str> {
    let mut caps = PROBE_CAPABILITIES.to_vec();
    if plan.cfg.exporters.probe.tls {
        caps.push(PROBE_TLS_CAPABILITY);
    }
    if probe_uses_sockets(plan) {
        caps.push(PROBE_SOCKET_CAPABILITY);
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemons_of(toml_text: &str) -> Vec<Daemon> {
        let cfg: Config = toml::from_str(toml_text).unwrap();
        daemons(&Plan::new(&cfg))
    }

    fn find<'d>(ds: &'d [Daemon], name: &str) -> &'d Daemon {
        ds.iter().find(|d| d.name == name).unwrap()
    }

    #[test]
    fn every_listener_is_on_loopback_by_default() {
        let ds = daemons_of("");
        assert_eq!(
            ds.len(),
            9,
            "{:?}",
            ds.iter().map(|d| d.name).collect::<Vec<_>>()
        );
        for d in &ds {
            assert!(!d.listeners.is_empty(), "{}", d.name);
            for l in &d.listeners {
                assert_eq!(l.address, "127.0.0.1", "{} {}", d.name, l.purpose);
            }
        }
    }

    #[test]
    fn prometheus_flags_follow_the_config() {
        let ds = daemons_of(
            "[prometheus]\nretention = \"90d\"\nport = 9191\ndata_dir = \"/srv/prom\"\n[tempo]\nenable = false\n",
        );
        let p = find(&ds, "prometheus");
        assert!(p.args.contains(&"--storage.tsdb.retention.time=90d".into()));
        assert!(p
            .args
            .contains(&"--web.listen-address=127.0.0.1:9191".into()));
        assert!(p.args.contains(&"--storage.tsdb.path=/srv/prom".into()));
        assert!(!p
            .args
            .iter()
            .any(|a| a == "--web.enable-remote-write-receiver"));
        let with_tempo = daemons_of("");
        assert!(find(&with_tempo, "prometheus")
            .args
            .contains(&"--web.enable-remote-write-receiver".into()));
    }

    #[test]
    fn internal_listeners_stay_on_loopback_when_agents_push() {
        let ds = daemons_of(
            "[prometheus]\nlisten_address = \"0.0.0.0\"\n[loki]\nlisten_address = \"0.0.0.0\"\n[tempo]\notlp_grpc_listen_address = \"0.0.0.0\"\n",
        );
        let public: Vec<(&str, &str, u16)> = ds
            .iter()
            .flat_map(|d| {
                d.listeners
                    .iter()
                    .filter(|l| l.address != "127.0.0.1")
                    .map(move |l| (d.name, l.purpose, l.port))
            })
            .collect();
        assert_eq!(
            public,
            [
                ("prometheus", "http", 9090),
                ("loki", "http", 3100),
                ("tempo", "otlp-grpc", 4327)
            ]
        );
    }

    #[test]
    fn external_url_reaches_both_web_uis_with_their_ports() {
        let ds = daemons_of(r#"alerting.external_url = "http://monitor.lan""#);
        let flag = |name| {
            find(&ds, name)
                .args
                .iter()
                .find(|a| a.starts_with("--web.external-url="))
                .cloned()
        };
        assert_eq!(
            flag("prometheus").as_deref(),
            Some("--web.external-url=http://monitor.lan:9090/")
        );
        assert_eq!(
            flag("alertmanager").as_deref(),
            Some("--web.external-url=http://monitor.lan:9093/")
        );
        let ds = daemons_of("");
        assert!(ds
            .iter()
            .all(|d| d.args.iter().all(|a| !a.starts_with("--web.external-url"))));
    }

    #[test]
    fn alertmanager_never_gossips() {
        let ds = daemons_of("");
        assert!(find(&ds, "alertmanager")
            .args
            .contains(&"--cluster.listen-address=".into()));
    }

    #[test]
    fn node_textfile_directory_is_debians_and_read_through_the_host_root_in_containers() {
        let n = find(&daemons_of(""), "node-exporter").clone();
        assert!(n
            .args
            .contains(&"--collector.textfile.directory=/var/lib/prometheus/node-exporter".into()));
        let container = n.container_args();
        let textfile: Vec<&String> = container
            .iter()
            .filter(|a| a.starts_with("--collector.textfile.directory="))
            .collect();
        assert_eq!(
            textfile,
            ["--collector.textfile.directory=/host/var/lib/prometheus/node-exporter"]
        );
        assert!(container.contains(&"--path.rootfs=/host".into()));
    }

    #[test]
    fn node_collectors_become_flags() {
        let ds = daemons_of("[exporters.node]\ncollectors = [\"systemd\", \"ethtool\"]\n");
        let n = find(&ds, "node-exporter");
        assert!(n.args.contains(&"--collector.systemd".into()));
        assert!(n.args.contains(&"--collector.ethtool".into()));
        assert!(n
            .args
            .contains(&"--collector.systemd.enable-restarts-metrics".into()));
    }

    #[test]
    fn agents_run_no_server_daemons() {
        let ds = daemons_of(
            "[host]\nrole = \"agent\"\nship_to = { prometheus_remote_write = \"http://s:9090/api/v1/write\", loki_push = \"http://s:3100/loki/api/v1/push\" }\n",
        );
        let names: Vec<&str> = ds.iter().map(|d| d.name).collect();
        assert_eq!(
            names,
            ["node-exporter", "blackbox-exporter", "cadvisor", "alloy"]
        );
    }

    #[test]
    fn files_live_under_the_config_dir() {
        let ds = daemons_of("[deploy]\nconfig_dir = \"/opt/hlo/\"\n");
        assert!(find(&ds, "loki")
            .args
            .contains(&"-config.file=/opt/hlo/loki/loki.yaml".into()));
    }

    #[test]
    fn probe_tls_adds_sys_admin_and_drops_no_tls() {
        let off: Config = toml::from_str("").unwrap();
        let plan = Plan::new(&off);
        assert!(probe_args(&plan).unwrap().contains(&"--no-tls".into()));
        assert_eq!(probe_capabilities(&plan), PROBE_CAPABILITIES);
        let on: Config = toml::from_str("[exporters.probe]\ntls = true\n").unwrap();
        let plan = Plan::new(&on);
        assert!(!probe_args(&plan).unwrap().contains(&"--no-tls".into()));
        let podman: Config =
            toml::from_str("alloy.container_sockets = \"/run/user/1001/podman/podman.sock\"\n")
                .unwrap();
        assert_eq!(
            probe_capabilities(&Plan::new(&podman)).last(),
            Some(&PROBE_SOCKET_CAPABILITY)
        );
        assert_eq!(
            probe_capabilities(&plan).last(),
            Some(&PROBE_TLS_CAPABILITY)
        );
    }

    #[test]
    fn log_file_globs_mount_their_directory() {
        assert_eq!(glob_root("/var/log/nginx/*.log"), Some("/var/log/nginx"));
        assert_eq!(glob_root("/srv/app/log/{a,b}.log"), Some("/srv/app/log"));
        assert_eq!(glob_root("/x.log"), None);
    }
}
