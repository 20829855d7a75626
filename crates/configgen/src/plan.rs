//! Derived facts, decided once: which scrape jobs exist, with which targets
//! and labels, and which blackbox modules they use. Every renderer that needs
//! them (prometheus.yml, Alloy on agents, blackbox.yml, dashboards, rules)
//! reads them from here.
//!
//! Service checks are grouped into one Prometheus job per (check kind,
//! interval), because the scrape interval is a per-job setting. The group at
//! the default interval is named after the job (`blackbox_http`); a group at
//! another interval gets the interval appended (`blackbox_http_15s`) and its
//! targets carry an explicit `job` label, so that every series still has the
//! contract's job label (`job="blackbox_http"`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::diagnostic::ConfigIssue;
use crate::model::{BasicAuth, Config, HttpCheck, RedWatch, Role, Service, TlsConfig};

pub mod containers;
pub use containers::DiscoveredJob;

/// Job label values. Dashboards and alert rules select on these.
/// Address of the listeners only a daemon itself uses (Loki's and Tempo's
/// gRPC, Tempo's memberlist): never beyond loopback, whatever the config says
/// about the listeners agents reach.
pub const INTERNAL_ADDRESS: &str = "127.0.0.1";

/// Whether spans have somewhere to go from this host: Alloy runs (the probe sends to its
/// OTLP receiver) and forwards them to the local Tempo (server) or to
/// `host.ship_to.otlp_grpc` (agent).
pub fn has_trace_destination(cfg: &Config) -> bool {
    cfg.alloy.enable
        && match cfg.host.role {
            Role::Server => cfg.tempo.enable,
            Role::Agent => cfg
                .host
                .ship_to
                .as_ref()
                .is_some_and(|s| s.otlp_grpc.is_some()),
        }
}

pub mod job {
    pub const PROMETHEUS: &str = "prometheus";
    pub const ALERTMANAGER: &str = "alertmanager";
    pub const NODE: &str = "node";
    pub const BLACKBOX_EXPORTER: &str = "blackbox_exporter";
    pub const CADVISOR: &str = "cadvisor";
    pub const RED_PROBE: &str = "red_probe";
    pub const LOKI: &str = "loki";
    pub const TEMPO: &str = "tempo";
    pub const ALLOY: &str = "alloy";
    pub const GRAFANA: &str = "grafana";
    /// Service checks through blackbox_exporter; series carry `service` and `instance` labels.
    pub const BLACKBOX_HTTP: &str = "blackbox_http";
    pub const BLACKBOX_TCP: &str = "blackbox_tcp";
    pub const BLACKBOX_ICMP: &str = "blackbox_icmp";
    pub const BLACKBOX_DNS: &str = "blackbox_dns";
    /// Every service check job, e.g. for `job=~"blackbox_http|..."` selectors.
    pub const SERVICE_CHECKS: [&str; 4] =
        [BLACKBOX_HTTP, BLACKBOX_TCP, BLACKBOX_ICMP, BLACKBOX_DNS];
    /// ICMP to the gateway and public resolvers; series carry `role` = gateway | resolver.
    pub const NETWORK: &str = "network";
    /// ICMP sweep of the LAN range; one target per address.
    pub const LAN_SWEEP: &str = "lan_sweep";
    /// Job name (not label) of the containers scraped by their
    /// `homelab.metrics.port` label; their series carry the service name as `job`.
    pub const CONTAINER_METRICS: &str = super::containers::METRICS_JOB;
    /// Every job label configgen gives its own jobs. The user's scrape jobs
    /// (`prometheus.scrape_configs`, `services[].metrics`) are every other job.
    pub const BUILTIN: [&str; 16] = [
        PROMETHEUS,
        ALERTMANAGER,
        NODE,
        BLACKBOX_EXPORTER,
        CADVISOR,
        RED_PROBE,
        LOKI,
        TEMPO,
        ALLOY,
        GRAFANA,
        BLACKBOX_HTTP,
        BLACKBOX_TCP,
        BLACKBOX_ICMP,
        BLACKBOX_DNS,
        NETWORK,
        LAN_SWEEP,
    ];

    /// Whether a job name is configgen's: one of [`BUILTIN`], the container
    /// jobs, or a service check job at another interval (`blackbox_http_15s`).
    pub fn is_builtin(name: &str) -> bool {
        BUILTIN.contains(&name)
            || name == CONTAINER_METRICS
            || SERVICE_CHECKS.iter().any(|j| {
                name.strip_prefix(j)
                    .is_some_and(|rest| rest.starts_with('_'))
            })
    }
}

/// Blackbox module names that always exist in blackbox.yml, whether or not a
/// service uses them (users may point their own scrape configs at them).
pub mod module {
    pub const HTTP_2XX: &str = "http_2xx";
    pub const HTTP_2XX_OR_401: &str = "http_2xx_or_401";
    pub const TCP_CONNECT: &str = "tcp_connect";
    pub const ICMP: &str = "icmp";
    /// TCP connect plus TLS handshake: certificate expiry of non-HTTP services.
    pub const TLS: &str = "tls";
}

/// Status codes of `http_2xx_or_401`: the RFC 9110 2xx codes plus the answers
/// of a login-protected service that is up.
pub const STATUS_2XX_OR_401: &[u16] = &[200, 201, 202, 203, 204, 205, 206, 401, 403];

/// Labels every target of a job may carry.
pub mod label {
    /// External label: the host name.
    pub const HOST: &str = "host";
    pub const JOB: &str = "job";
    pub const INSTANCE: &str = "instance";
    pub const SERVICE: &str = "service";
    pub const ROLE: &str = "role";
    pub const PARAM_TARGET: &str = "__param_target";
    pub const PARAM_MODULE: &str = "__param_module";
}

/// A scrape job, independent of the format it is written in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScrapeJob {
    /// Unique job name (Prometheus `job_name`, fragment file name).
    pub name: String,
    /// The `job` label its series carry (one of [`job`], or the user's job
    /// name). When it differs from `name`, every target also carries it as an
    /// explicit `job` label.
    pub job: String,
    /// None: the global scrape interval.
    pub interval: Option<String>,
    /// None: Prometheus' default.
    pub timeout: Option<String>,
    /// None: http.
    pub scheme: Option<String>,
    pub metrics_path: String,
    pub auth: Option<Auth>,
    pub tls: Option<TlsConfig>,
    pub targets: Vec<Target>,
}

/// How a scrape job authenticates; secrets stay in files read at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    Basic(BasicAuth),
    Bearer { token_file: String },
}

/// One scrape target. For blackbox jobs `address` is the exporter and the
/// probed thing travels in the `__param_target` / `__param_module` labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub address: String,
    pub labels: BTreeMap<String, String>,
}

/// What a blackbox module does; blackbox.yml is rendered from these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlackboxModule {
    Http {
        /// Accepted codes; empty means blackbox's default (any 2xx).
        valid_status_codes: Vec<u16>,
        insecure_skip_verify: bool,
    },
    Tcp {
        tls: bool,
    },
    Icmp,
    Dns {
        query_name: String,
        query_type: String,
    },
}

impl BlackboxModule {
    fn http_for(check: &HttpCheck) -> Self {
        let mut codes = check.valid_status_codes.clone();
        if check.accept_unauthorized {
            if codes.is_empty() {
                codes.extend_from_slice(STATUS_2XX_OR_401);
            } else {
                codes.extend_from_slice(&[401, 403]);
            }
        }
        codes.sort_unstable();
        codes.dedup();
        BlackboxModule::Http {
            valid_status_codes: codes,
            insecure_skip_verify: check.insecure_skip_verify,
        }
    }

    /// The module's name, derived from what it does, so that equal modules
    /// share one name and one entry in blackbox.yml.
    fn derived_name(&self) -> String {
        match self {
            BlackboxModule::Http {
                valid_status_codes,
                insecure_skip_verify,
            } => {
                let base = if valid_status_codes.is_empty() {
                    module::HTTP_2XX.to_string()
                } else if valid_status_codes == STATUS_2XX_OR_401 {
                    module::HTTP_2XX_OR_401.to_string()
                } else {
                    let codes: Vec<String> =
                        valid_status_codes.iter().map(u16::to_string).collect();
                    format!("http_{}", codes.join("_"))
                };
                if *insecure_skip_verify {
                    format!("{base}_insecure")
                } else {
                    base
                }
            }
            BlackboxModule::Tcp { tls: false } => module::TCP_CONNECT.into(),
            BlackboxModule::Tcp { tls: true } => module::TLS.into(),
            BlackboxModule::Icmp => module::ICMP.into(),
            BlackboxModule::Dns {
                query_name,
                query_type,
            } => format!(
                "dns_{}_{}",
                sanitize(query_type),
                sanitize(query_name.trim_end_matches('.'))
            ),
        }
    }
}

/// Lowercase, with every run of characters outside [a-z0-9] turned into one '_'.
fn sanitize(s: &str) -> String {
    let mut out = String::new();
    for c in s.to_ascii_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

pub struct Plan<'a> {
    pub cfg: &'a Config,
    daemons: Vec<&'static str>,
    scrape_jobs: Vec<ScrapeJob>,
    discovered_jobs: Vec<DiscoveredJob>,
    blackbox_modules: BTreeMap<String, BlackboxModule>,
    issues: Vec<ConfigIssue>,
    /// The groups of the container sockets on the host the daemons run on;
    /// empty unless given by [`Plan::with_socket_groups`].
    pub socket_groups: containers::SocketGroups,
}

impl<'a> Plan<'a> {
    pub fn new(cfg: &'a Config) -> Self {
        let mut builder = Builder {
            cfg,
            daemons: Vec::new(),
            jobs: Vec::new(),
            modules: BTreeMap::new(),
            issues: Vec::new(),
        };
        builder.build();
        // The server's Prometheus reads the container sockets; on an agent,
        // Alloy runs the same jobs and remote-writes what they scrape.
        let scraper = builder.daemons.contains(&job::PROMETHEUS)
            || (cfg.host.role == Role::Agent && builder.daemons.contains(&job::ALLOY));
        let discovered_jobs = if cfg.discovery.containers && scraper {
            let blackbox = builder
                .daemons
                .contains(&job::BLACKBOX_EXPORTER)
                .then(|| builder.blackbox_address());
            containers::jobs(&cfg.alloy.container_sockets, blackbox.as_deref())
        } else {
            Vec::new()
        };
        Plan {
            cfg,
            daemons: builder.daemons,
            scrape_jobs: builder.jobs,
            discovered_jobs,
            blackbox_modules: builder.modules,
            issues: builder.issues,
            socket_groups: containers::SocketGroups::new(),
        }
    }

    /// The plan for a host whose container sockets are owned by these groups.
    pub fn with_socket_groups(mut self, groups: containers::SocketGroups) -> Self {
        self.socket_groups = groups;
        self
    }

    /// Whether the daemon with this job label (one of [`job`]'s daemons,
    /// e.g. `job::LOKI`) runs on this host: enabled, and on an agent only if
    /// it is not a server-only daemon.
    pub fn runs(&self, daemon: &str) -> bool {
        self.daemons.contains(&daemon)
    }

    /// Whether the probe sends spans of this RED watch: its own `traces`, else
    /// `exporters.probe.traces`, else on; and only where spans have a destination.
    pub fn traced(&self, red: &RedWatch) -> bool {
        has_trace_destination(self.cfg)
            && red
                .traces
                .or(self.cfg.exporters.probe.traces)
                .unwrap_or(true)
    }

    /// Whether the probe prints its access log: `exporters.probe.access_log`, else on
    /// where Alloy takes the journal to a Loki (the local one, or `ship_to` on an agent).
    pub fn access_log(&self) -> bool {
        let ships_logs = self.runs(job::ALLOY)
            && match self.cfg.host.role {
                Role::Server => self.runs(job::LOKI),
                Role::Agent => self.cfg.host.ship_to.is_some(),
            };
        self.cfg.exporters.probe.access_log.unwrap_or(ships_logs)
    }

    /// The labels every series and log stream of this host carries outside
    /// it: `host` (the host name) first, then `host.labels` in key order.
    pub fn external_labels(&self) -> Vec<(String, String)> {
        let host = &self.cfg.host;
        let mut labels = vec![(label::HOST.to_string(), host.name.clone())];
        labels.extend(
            host.labels
                .iter()
                .filter(|(k, _)| k.as_str() != label::HOST)
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        labels
    }

    /// Every scrape job of this host, in a stable order: daemons' own metrics
    /// first, then service checks, then network checks, then the user's own
    /// jobs (services' metrics endpoints, then `prometheus.scrape_configs`). On an agent the jobs
    /// of server-only daemons are left out (Alloy scrapes the rest).
    pub fn scrape_jobs(&self) -> &[ScrapeJob] {
        &self.scrape_jobs
    }

    /// Jobs whose targets are discovered on the container sockets
    /// (`discovery.containers`): by Prometheus on a server, by Alloy on an
    /// agent; rendered after [`Self::scrape_jobs`].
    pub fn discovered_jobs(&self) -> &[DiscoveredJob] {
        &self.discovered_jobs
    }

    /// Every blackbox module by name: the fixed set plus those the checks use.
    pub fn blackbox_modules(&self) -> &BTreeMap<String, BlackboxModule> {
        &self.blackbox_modules
    }

    /// Problems found while planning (things validation should have caught).
    pub fn issues(&self) -> &[ConfigIssue] {
        &self.issues
    }

    /// The URL other devices open for a daemon with a web UI
    /// (`job::PROMETHEUS` or `job::ALERTMANAGER`): alerting.external_url with
    /// the daemon's port; None when unset.
    pub fn external_url(&self, daemon: &str) -> Option<String> {
        let base = self.cfg.alerting.external_url.as_deref()?;
        let port = match daemon {
            job::PROMETHEUS => self.cfg.prometheus.port,
            job::ALERTMANAGER => self.cfg.alertmanager.port,
            _ => return None,
        };
        let mut url = url::Url::parse(base).ok()?;
        url.set_port(Some(port)).ok()?;
        Some(url.to_string())
    }

    /// host:port of the Alertmanager, as Prometheus reaches it.
    pub fn alertmanager_address(&self) -> String {
        let am = &self.cfg.alertmanager;
        scrape_address(&am.listen_address, am.port)
    }
}

/// The address to reach a daemon listening on `listen:port` from this host:
/// a wildcard listen address is reached over loopback.
pub fn scrape_address(listen: &str, port: u16) -> String {
    let host = match listen {
        "" | "0.0.0.0" => "127.0.0.1",
        "::" | "[::]" => "[::1]",
        other => other,
    };
    join_host_port(host, port)
}

/// `host:port`, with brackets around an IPv6 address.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Largest LAN sweep: a /22 is 1,024 addresses.
pub const MAX_SWEEP_PREFIX: u8 = 22;

/// The host addresses of an IPv4 CIDR of at most /22 (network and broadcast
/// addresses excluded when the range has them).
pub fn lan_addresses(cidr: &str) -> Result<Vec<Ipv4Addr>, String> {
    let (addr, prefix) = cidr
        .split_once('/')
        .ok_or_else(|| format!("{cidr:?} is not a CIDR (expected e.g. \"192.168.1.0/24\")"))?;
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
    let prefix: u32 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("{prefix:?} is not a prefix length (0-32)"))?;
    if prefix < u32::from(MAX_SWEEP_PREFIX) {
        return Err(format!(
            "/{prefix} is too large to sweep: at most /{MAX_SWEEP_PREFIX} (1,024 addresses)"
        ));
    }
    let size = 1u32 << (32 - prefix);
    let network = u32::from(addr) & !(size - 1);
    let hosts = if size > 2 {
        (network + 1)..(network + size - 1)
    } else {
        network..(network + size)
    };
    Ok(hosts.map(Ipv4Addr::from).collect())
}

struct Builder<'a> {
    cfg: &'a Config,
    daemons: Vec<&'static str>,
    jobs: Vec<ScrapeJob>,
    modules: BTreeMap<String, BlackboxModule>,
    issues: Vec<ConfigIssue>,
}

/// A service check kind and the blackbox job it lands in.
#[derive(Clone, Copy)]
enum Check {
    Http,
    Tcp,
    Icmp,
    Dns,
}

impl Check {
    const ALL: [Check; 4] = [Check::Http, Check::Tcp, Check::Icmp, Check::Dns];

    fn job(self) -> &'static str {
        match self {
            Check::Http => job::BLACKBOX_HTTP,
            Check::Tcp => job::BLACKBOX_TCP,
            Check::Icmp => job::BLACKBOX_ICMP,
            Check::Dns => job::BLACKBOX_DNS,
        }
    }

    /// The probed target and its module, if the service has this check.
    fn of(self, service: &Service) -> Option<(String, BlackboxModule)> {
        match self {
            Check::Http => service
                .http
                .as_ref()
                .map(|h| (h.url.clone(), BlackboxModule::http_for(h))),
            Check::Tcp => service
                .tcp
                .clone()
                .map(|t| (t, BlackboxModule::Tcp { tls: false })),
            Check::Icmp => service.icmp.clone().map(|t| (t, BlackboxModule::Icmp)),
            Check::Dns => service.dns.as_ref().map(|d| {
                (
                    d.server.clone(),
                    BlackboxModule::Dns {
                        query_name: d.query.clone(),
                        query_type: d.record_type.to_ascii_uppercase(),
                    },
                )
            }),
        }
    }
}

impl Builder<'_> {
    fn build(&mut self) {
        for m in [
            BlackboxModule::Http {
                valid_status_codes: Vec::new(),
                insecure_skip_verify: false,
            },
            BlackboxModule::Http {
                valid_status_codes: STATUS_2XX_OR_401.to_vec(),
                insecure_skip_verify: false,
            },
            BlackboxModule::Tcp { tls: false },
            BlackboxModule::Tcp { tls: true },
            BlackboxModule::Icmp,
        ] {
            self.module_name(m);
        }
        self.daemon_jobs();
        if self.daemons.contains(&job::BLACKBOX_EXPORTER) {
            for check in Check::ALL {
                self.service_check_jobs(check);
            }
            self.network_job();
            self.lan_sweep_job();
        }
        self.service_metrics_jobs();
        self.user_jobs();
    }

    /// `services[].metrics`: one job per service, named after it, its target
    /// labelled with the service.
    fn service_metrics_jobs(&mut self) {
        for (i, service) in self.cfg.services.iter().enumerate() {
            let Some(metrics) = &service.metrics else {
                continue;
            };
            let url = match url::Url::parse(&metrics.url) {
                Ok(u) if u.host_str().is_some() => u,
                _ => {
                    self.issues.push(ConfigIssue::new(
                        format!("services[{i}].metrics.url"),
                        format!("`{}` is not a valid URL", metrics.url),
                    ));
                    continue;
                }
            };
            let host = url.host_str().unwrap_or_default();
            let port = url.port_or_known_default().unwrap_or(80);
            let mut labels = service.labels.clone();
            labels.insert(label::SERVICE.into(), service.name.clone());
            self.jobs.push(ScrapeJob {
                name: service.name.clone(),
                job: service.name.clone(),
                interval: metrics
                    .interval
                    .clone()
                    .filter(|i| *i != self.cfg.prometheus.scrape_interval),
                scheme: (url.scheme() != "http").then(|| url.scheme().to_string()),
                metrics_path: url.path().to_string(),
                targets: vec![Target {
                    address: join_host_port(host.trim_matches(['[', ']']), port),
                    labels,
                }],
                ..ScrapeJob::default()
            });
        }
    }

    /// `prometheus.scrape_configs`, as written.
    fn user_jobs(&mut self) {
        for sc in &self.cfg.prometheus.scrape_configs {
            let auth = match (&sc.basic_auth, &sc.bearer_token_file) {
                (Some(basic), _) => Some(Auth::Basic(basic.clone())),
                (None, Some(file)) => Some(Auth::Bearer {
                    token_file: file.clone(),
                }),
                (None, None) => None,
            };
            self.jobs.push(ScrapeJob {
                name: sc.job_name.clone(),
                job: sc.job_name.clone(),
                interval: sc
                    .scrape_interval
                    .clone()
                    .filter(|i| *i != self.cfg.prometheus.scrape_interval),
                timeout: sc.scrape_timeout.clone(),
                scheme: sc.scheme.clone().filter(|s| s != "http"),
                metrics_path: sc.metrics_path.clone().unwrap_or_else(|| "/metrics".into()),
                auth,
                tls: sc.tls_config.clone(),
                targets: sc
                    .targets
                    .iter()
                    .map(|t| Target {
                        address: t.clone(),
                        labels: sc.labels.clone(),
                    })
                    .collect(),
            });
        }
    }

    /// The name of a module, registering it. Two different modules deriving
    /// the same name (e.g. DNS queries "a-b.org" and "a.b.org") get a numeric
    /// suffix in order of appearance.
    fn module_name(&mut self, m: BlackboxModule) -> String {
        let base = m.derived_name();
        let mut name = base.clone();
        let mut n = 2;
        loop {
            match self.modules.get(&name) {
                Some(existing) if *existing == m => return name,
                Some(_) => {
                    name = format!("{base}_{n}");
                    n += 1;
                }
                None => {
                    self.modules.insert(name.clone(), m);
                    return name;
                }
            }
        }
    }

    fn daemon_jobs(&mut self) {
        let cfg = self.cfg;
        let server = cfg.host.role == Role::Server;
        let ex = &cfg.exporters;
        let daemons: [(&'static str, bool, &str, u16); 10] = [
            (
                job::PROMETHEUS,
                server,
                &cfg.prometheus.listen_address,
                cfg.prometheus.port,
            ),
            (
                job::ALERTMANAGER,
                server,
                &cfg.alertmanager.listen_address,
                cfg.alertmanager.port,
            ),
            (
                job::NODE,
                ex.node.enable,
                &ex.node.listen_address,
                ex.node.port,
            ),
            (
                job::BLACKBOX_EXPORTER,
                ex.blackbox.enable,
                &ex.blackbox.listen_address,
                ex.blackbox.port,
            ),
            (
                job::CADVISOR,
                ex.cadvisor.enable,
                &ex.cadvisor.listen_address,
                ex.cadvisor.port,
            ),
            (
                job::RED_PROBE,
                ex.probe.enable,
                &ex.probe.listen_address,
                ex.probe.port,
            ),
            (
                job::LOKI,
                server && cfg.loki.enable,
                &cfg.loki.listen_address,
                cfg.loki.port,
            ),
            (
                job::TEMPO,
                server && cfg.tempo.enable,
                &cfg.tempo.listen_address,
                cfg.tempo.port,
            ),
            (
                job::ALLOY,
                cfg.alloy.enable,
                &cfg.alloy.listen_address,
                cfg.alloy.port,
            ),
            (
                job::GRAFANA,
                server && cfg.grafana.enable,
                &cfg.grafana.listen_address,
                cfg.grafana.port,
            ),
        ];
        for (job, enabled, listen, port) in daemons {
            if !enabled {
                continue;
            }
            self.daemons.push(job);
            // One target per job on this host: the host name is the clearest instance.
            let labels = BTreeMap::from([(label::INSTANCE.to_string(), cfg.host.name.clone())]);
            self.jobs.push(ScrapeJob {
                name: job.into(),
                job: job.into(),
                metrics_path: "/metrics".into(),
                targets: vec![Target {
                    address: scrape_address(listen, port),
                    labels,
                }],
                ..ScrapeJob::default()
            });
        }
    }

    fn blackbox_address(&self) -> String {
        let bb = &self.cfg.exporters.blackbox;
        scrape_address(&bb.listen_address, bb.port)
    }

    /// A blackbox target probing `probed` with `module`, plus extra labels.
    fn probe_target(
        &self,
        probed: &str,
        module: String,
        extra: &BTreeMap<String, String>,
    ) -> Target {
        let mut labels = extra.clone();
        labels.insert(label::INSTANCE.into(), probed.into());
        labels.insert(label::PARAM_TARGET.into(), probed.into());
        labels.insert(label::PARAM_MODULE.into(), module);
        Target {
            address: self.blackbox_address(),
            labels,
        }
    }

    fn service_check_jobs(&mut self, check: Check) {
        let cfg = self.cfg;
        // interval (None = default) -> targets, in the order services are declared.
        let mut groups: BTreeMap<Option<String>, Vec<Target>> = BTreeMap::new();
        for service in &cfg.services {
            let Some((probed, module)) = check.of(service) else {
                continue;
            };
            let module = self.module_name(module);
            let mut extra = service.labels.clone();
            extra.insert(label::SERVICE.into(), service.name.clone());
            let interval = service
                .interval
                .clone()
                .filter(|i| *i != cfg.prometheus.scrape_interval);
            let target = self.probe_target(&probed, module, &extra);
            groups.entry(interval).or_default().push(target);
        }
        for (interval, targets) in groups {
            self.push_blackbox_job(check.job(), interval, targets);
        }
    }

    /// Pushes a blackbox job; a job at a non-default interval is named
    /// `<job>_<interval>` and its targets carry the `job` label explicitly.
    fn push_blackbox_job(
        &mut self,
        job: &'static str,
        interval: Option<String>,
        mut targets: Vec<Target>,
    ) {
        let name = match &interval {
            None => job.to_string(),
            Some(i) => {
                for t in &mut targets {
                    t.labels.insert(label::JOB.into(), job.into());
                }
                format!("{job}_{i}")
            }
        };
        self.jobs.push(ScrapeJob {
            name,
            job: job.into(),
            interval,
            metrics_path: "/probe".into(),
            targets,
            ..ScrapeJob::default()
        });
    }

    fn network_job(&mut self) {
        let net = &self.cfg.network;
        let roles = net
            .gateway
            .iter()
            .map(|g| (g, "gateway"))
            .chain(net.resolvers.iter().map(|r| (r, "resolver")));
        let mut targets = Vec::new();
        for (addr, role) in roles {
            let extra = BTreeMap::from([(label::ROLE.to_string(), role.to_string())]);
            targets.push(self.probe_target(addr, module::ICMP.into(), &extra));
        }
        if !targets.is_empty() {
            self.push_blackbox_job(job::NETWORK, None, targets);
        }
    }

    fn lan_sweep_job(&mut self) {
        let Some(sweep) = &self.cfg.network.lan_sweep else {
            return;
        };
        let addresses = match lan_addresses(&sweep.cidr) {
            Ok(a) => a,
            Err(e) => {
                self.issues
                    .push(ConfigIssue::new("network.lan_sweep.cidr", e));
                return;
            }
        };
        let targets = addresses
            .iter()
            .map(|a| self.probe_target(&a.to_string(), module::ICMP.into(), &BTreeMap::new()))
            .collect();
        // Its interval is its own, never the default: the job keeps its plain name.
        self.jobs.push(ScrapeJob {
            name: job::LAN_SWEEP.into(),
            job: job::LAN_SWEEP.into(),
            interval: Some(sweep.interval.clone()),
            metrics_path: "/probe".into(),
            targets,
            ..ScrapeJob::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        toml::from_str(toml).expect("test config parses")
    }

    fn job<'p>(plan: &'p Plan, name: &str) -> &'p ScrapeJob {
        plan.scrape_jobs()
            .iter()
            .find(|j| j.name == name)
            .unwrap_or_else(|| panic!("no job {name}"))
    }

    fn names(plan: &Plan) -> Vec<String> {
        plan.scrape_jobs().iter().map(|j| j.name.clone()).collect()
    }

    #[test]
    fn server_with_defaults_scrapes_every_daemon_under_the_host_name() {
        let cfg = config("host.name = \"nas\"");
        let plan = Plan::new(&cfg);
        assert_eq!(
            names(&plan),
            [
                "prometheus",
                "alertmanager",
                "node",
                "blackbox_exporter",
                "cadvisor",
                "red_probe",
                "loki",
                "tempo",
                "alloy",
                "grafana"
            ]
        );
        let node = job(&plan, "node");
        assert_eq!(node.targets[0].address, "127.0.0.1:9100");
        assert_eq!(node.targets[0].labels["instance"], "nas");
        assert_eq!(job(&plan, "cadvisor").targets[0].address, "127.0.0.1:8088");
        assert!(plan.issues().is_empty());
    }

    #[test]
    fn agent_leaves_out_server_daemons() {
        let cfg = config(
            r#"
            host = { name = "pi", role = "agent", ship_to = { prometheus_remote_write = "http://m:9090/api/v1/write", loki_push = "http://m:3100/loki/api/v1/push" } }
            exporters.cadvisor = { enable = false, port = 8088 }
            "#,
        );
        let plan = Plan::new(&cfg);
        assert_eq!(
            names(&plan),
            ["node", "blackbox_exporter", "red_probe", "alloy"]
        );
    }

    #[test]
    fn wildcard_listen_addresses_are_scraped_over_loopback() {
        assert_eq!(scrape_address("0.0.0.0", 9100), "127.0.0.1:9100");
        assert_eq!(scrape_address("::", 9100), "[::1]:9100");
        assert_eq!(scrape_address("fd00::5", 9100), "[fd00::5]:9100");
        assert_eq!(scrape_address("10.0.0.2", 9100), "10.0.0.2:9100");
    }

    #[test]
    fn service_checks_are_grouped_by_interval_keeping_the_job_label() {
        let cfg = config(
            r#"
            prometheus.scrape_interval = "30s"
            [[services]]
            name = "a"
            http = { url = "http://a/" }
            [[services]]
            name = "b"
            interval = "15s"
            labels = { category = "media" }
            http = { url = "http://b/" }
            [[services]]
            name = "c"
            interval = "30s"
            http = { url = "http://c/" }
            "#,
        );
        let plan = Plan::new(&cfg);
        let default = job(&plan, "blackbox_http");
        assert_eq!(default.interval, None);
        let probed: Vec<&str> = default
            .targets
            .iter()
            .map(|t| t.labels["instance"].as_str())
            .collect();
        assert_eq!(probed, ["http://a/", "http://c/"]);
        assert!(!default.targets[0].labels.contains_key("job"));

        let fast = job(&plan, "blackbox_http_15s");
        assert_eq!(fast.job, "blackbox_http");
        assert_eq!(fast.interval.as_deref(), Some("15s"));
        let t = &fast.targets[0];
        assert_eq!(t.address, "127.0.0.1:9115");
        assert_eq!(fast.metrics_path, "/probe");
        let expected: BTreeMap<String, String> = [
            ("__param_module", "http_2xx"),
            ("__param_target", "http://b/"),
            ("category", "media"),
            ("instance", "http://b/"),
            ("job", "blackbox_http"),
            ("service", "b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(t.labels, expected);
    }

    #[test]
    fn service_labels_cannot_override_the_contract_labels() {
        let cfg = config(
            r#"
            [[services]]
            name = "a"
            labels = { service = "spoof", instance = "spoof" }
            tcp = "10.0.0.1:22"
            "#,
        );
        let plan = Plan::new(&cfg);
        let t = &job(&plan, "blackbox_tcp").targets[0];
        assert_eq!(t.labels["service"], "a");
        assert_eq!(t.labels["instance"], "10.0.0.1:22");
        assert_eq!(t.labels["__param_module"], "tcp_connect");
    }

    #[test]
    fn http_modules_follow_the_check() {
        let cfg = config(
            r#"
            [[services]]
            name = "login"
            http = { url = "https://a/", accept_unauthorized = true }
            [[services]]
            name = "selfsigned"
            http = { url = "https://b/", insecure_skip_verify = true }
            [[services]]
            name = "redirect"
            http = { url = "http://c/", valid_status_codes = [301, 200], accept_unauthorized = true }
            "#,
        );
        let plan = Plan::new(&cfg);
        let modules: Vec<&str> = job(&plan, "blackbox_http")
            .targets
            .iter()
            .map(|t| t.labels["__param_module"].as_str())
            .collect();
        assert_eq!(
            modules,
            [
                "http_2xx_or_401",
                "http_2xx_insecure",
                "http_200_301_401_403"
            ]
        );
        assert_eq!(
            plan.blackbox_modules()["http_200_301_401_403"],
            BlackboxModule::Http {
                valid_status_codes: vec![200, 301, 401, 403],
                insecure_skip_verify: false
            }
        );
        for fixed in ["http_2xx", "http_2xx_or_401", "tcp_connect", "icmp", "tls"] {
            assert!(plan.blackbox_modules().contains_key(fixed), "{fixed}");
        }
    }

    #[test]
    fn dns_modules_are_named_per_query_and_type_without_collisions() {
        let cfg = config(
            r#"
            [[services]]
            name = "one"
            dns = { server = "1.1.1.1", query = "a-b.org" }
            [[services]]
            name = "two"
            dns = { server = "9.9.9.9:53", query = "a.b.org", record_type = "aaaa" }
            [[services]]
            name = "three"
            dns = { server = "9.9.9.9", query = "a.b.org.", record_type = "A" }
            [[services]]
            name = "four"
            dns = { server = "9.9.9.9", query = "a-b.org" }
            "#,
        );
        let plan = Plan::new(&cfg);
        let modules: Vec<&str> = job(&plan, "blackbox_dns")
            .targets
            .iter()
            .map(|t| t.labels["__param_module"].as_str())
            .collect();
        assert_eq!(
            modules,
            [
                "dns_a_a_b_org",
                "dns_aaaa_a_b_org",
                "dns_a_a_b_org_2",
                "dns_a_a_b_org"
            ]
        );
        assert_eq!(
            plan.blackbox_modules()["dns_a_a_b_org_2"],
            BlackboxModule::Dns {
                query_name: "a.b.org.".into(),
                query_type: "A".into()
            }
        );
    }

    #[test]
    fn network_targets_carry_their_role() {
        let cfg = config(
            r#"
            network = { gateway = "192.168.1.1", resolvers = ["1.1.1.1"] }
            "#,
        );
        let plan = Plan::new(&cfg);
        let net = job(&plan, "network");
        let roles: Vec<(&str, &str)> = net
            .targets
            .iter()
            .map(|t| (t.labels["instance"].as_str(), t.labels["role"].as_str()))
            .collect();
        assert_eq!(roles, [("192.168.1.1", "gateway"), ("1.1.1.1", "resolver")]);
        assert!(net
            .targets
            .iter()
            .all(|t| t.labels["__param_module"] == "icmp"));
    }

    #[test]
    fn lan_sweep_has_one_target_per_host_address() {
        let cfg = config(r#"network.lan_sweep = { cidr = "192.168.1.77/24" }"#);
        let plan = Plan::new(&cfg);
        let sweep = job(&plan, "lan_sweep");
        assert_eq!(sweep.interval.as_deref(), Some("5m"));
        assert_eq!(sweep.targets.len(), 254);
        assert_eq!(sweep.targets[0].labels["instance"], "192.168.1.1");
        assert_eq!(sweep.targets[253].labels["__param_target"], "192.168.1.254");
    }

    #[test]
    fn lan_ranges_are_checked() {
        assert_eq!(lan_addresses("10.0.0.0/22").unwrap().len(), 1022);
        assert_eq!(lan_addresses("10.0.0.8/31").unwrap().len(), 2);
        assert_eq!(
            lan_addresses("10.0.0.8/32").unwrap(),
            [Ipv4Addr::new(10, 0, 0, 8)]
        );
        assert!(lan_addresses("10.0.0.0/21")
            .unwrap_err()
            .contains("at most /22"));
        assert!(lan_addresses("10.0.0.0").is_err());
        assert!(lan_addresses("10.0.0/24").is_err());
        assert!(lan_addresses("10.0.0.0/33").is_err());

        let cfg = config(r#"network.lan_sweep = { cidr = "10.0.0.0/16" }"#);
        let plan = Plan::new(&cfg);
        assert_eq!(plan.issues()[0].path, "network.lan_sweep.cidr");
        assert!(!names(&plan).contains(&"lan_sweep".to_string()));
    }

    #[test]
    fn the_users_jobs_come_last_with_their_own_job_label() {
        let cfg = config(
            r#"
            [[services]]
            name = "authentik"
            labels = { category = "auth" }
            metrics = "https://[fd00::5]:9300/metrics"
            [[services]]
            name = "immich"
            metrics = { url = "http://127.0.0.1:8081/metrics", interval = "1m" }
            [[prometheus.scrape_configs]]
            job_name = "envoy"
            targets = ["127.0.0.1:9901", "10.0.0.2:9901"]
            metrics_path = "/stats/prometheus"
            scheme = "http"
            labels = { site = "edge" }
            bearer_token_file = "/run/secrets/envoy"
            "#,
        );
        let plan = Plan::new(&cfg);
        let names = names(&plan);
        assert_eq!(names[names.len() - 3..], ["authentik", "immich", "envoy"]);

        let authentik = job(&plan, "authentik");
        assert_eq!(authentik.job, "authentik");
        assert_eq!(authentik.scheme.as_deref(), Some("https"));
        assert_eq!(authentik.metrics_path, "/metrics");
        assert_eq!(authentik.targets[0].address, "[fd00::5]:9300");
        assert_eq!(authentik.targets[0].labels["service"], "authentik");
        assert_eq!(authentik.targets[0].labels["category"], "auth");
        assert_eq!(job(&plan, "immich").interval.as_deref(), Some("1m"));

        let envoy = job(&plan, "envoy");
        assert_eq!(envoy.scheme, None, "http is the default, not written");
        assert_eq!(envoy.metrics_path, "/stats/prometheus");
        assert_eq!(envoy.targets.len(), 2);
        assert_eq!(envoy.targets[1].labels["site"], "edge");
        assert_eq!(
            envoy.auth,
            Some(Auth::Bearer {
                token_file: "/run/secrets/envoy".into()
            })
        );
    }

    #[test]
    fn builtin_job_names_include_interval_suffixed_service_checks() {
        assert!(job::is_builtin("node"));
        assert!(job::is_builtin("blackbox_http_15s"));
        assert!(!job::is_builtin("blackbox_httpd"));
        assert!(!job::is_builtin("envoy"));
    }

    #[test]
    fn no_blackbox_exporter_means_no_probe_jobs() {
        let cfg = config(
            r#"
            exporters.blackbox = { enable = false, port = 9115 }
            network = { gateway = "192.168.1.1" }
            [[services]]
            name = "a"
            icmp = "10.0.0.1"
            "#,
        );
        let plan = Plan::new(&cfg);
        assert!(plan
            .scrape_jobs()
            .iter()
            .all(|j| j.metrics_path != "/probe"));
    }
}
