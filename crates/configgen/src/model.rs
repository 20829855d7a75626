//! The declarative homelab config: what the user writes (TOML/YAML) or what the
//! NixOS module hands over (JSON). It knows nothing of output formats.
//!
//! Every struct rejects unknown keys so that a misspelled option is an error,
//! not a silently ignored line. Defaults live here, once.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// The whole config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub host: Host,
    /// Everything the stack watches: one entry per self-hosted service or device.
    pub services: Vec<Service>,
    pub network: Network,
    pub exporters: Exporters,
    pub prometheus: Prometheus,
    pub alertmanager: Alertmanager,
    pub alerting: Alerting,
    pub loki: Loki,
    pub alloy: Alloy,
    pub tempo: Tempo,
    pub grafana: Grafana,
    pub deploy: Deploy,
    pub discovery: Discovery,
}

/// What is found on the host without a config line (see docs/discovery.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Discovery {
    /// Probe and scrape the containers of `alloy.container_sockets` by their
    /// `homelab.*` labels and published ports (Prometheus `docker_sd_configs`).
    pub containers: bool,
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery { containers: true }
    }
}

/// Where the rendered tree is installed on the host. Units and compose.yaml
/// name the daemons' files by their path under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Deploy {
    pub config_dir: String,
}

impl Default for Deploy {
    fn default() -> Self {
        Deploy {
            config_dir: "/etc/homelab-observability".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the whole stack: Prometheus, Alertmanager, Loki, Tempo, Grafana.
    #[default]
    Server,
    /// Runs only exporters, the RED probe and Alloy, and ships everything to a server.
    Agent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Host {
    /// Host name, used as the `host` label on everything this host produces.
    pub name: String,
    pub role: Role,
    /// Labels added to every series, log line and span (Prometheus external_labels).
    pub labels: BTreeMap<String, String>,
    /// Where an agent ships to. Required when role = "agent", ignored on a server.
    pub ship_to: Option<ShipTo>,
}

impl Default for Host {
    fn default() -> Self {
        Host {
            name: "homelab".into(),
            role: Role::Server,
            labels: BTreeMap::new(),
            ship_to: None,
        }
    }
}

/// The server endpoints an agent pushes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipTo {
    /// Prometheus remote-write URL, e.g. "http://monitor.lan:9090/api/v1/write".
    pub prometheus_remote_write: String,
    /// Loki push URL, e.g. "http://monitor.lan:3100/loki/api/v1/push".
    pub loki_push: String,
    /// OTLP gRPC endpoint (host:port) of the server's Tempo, e.g. "monitor.lan:4317".
    pub otlp_grpc: Option<String>,
}

/// One watched service. Every check is optional; a service with none is only
/// used for RED metrics or logs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Service {
    /// Unique name: letters, digits, '-' and '_'. Becomes the `service` label.
    pub name: String,
    /// Probe interval for this service's checks (default: prometheus.scrape_interval).
    pub interval: Option<String>,
    /// Extra labels on this service's probe series.
    pub labels: BTreeMap<String, String>,
    pub http: Option<HttpCheck>,
    /// TCP connect probe, "host:port".
    pub tcp: Option<String>,
    /// ICMP echo probe, a host name or address.
    pub icmp: Option<String>,
    pub dns: Option<DnsCheck>,
    /// What the eBPF RED probe watches of this service: ports, unit, container, outgoing calls.
    pub red: Option<RedWatch>,
    /// Where this service's logs come from.
    pub logs: Option<LogSource>,
    /// The service's own Prometheus metrics endpoint, scraped as job `<name>`:
    /// a URL, or `{ url, interval }`.
    #[serde(deserialize_with = "service_metrics")]
    #[schemars(with = "Option<ServiceMetricsWritten>")]
    pub metrics: Option<ServiceMetrics>,
}

/// A service's metrics endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceMetrics {
    /// http:// or https:// URL of the metrics page, e.g. "http://127.0.0.1:9300/metrics".
    pub url: String,
    /// Scrape interval (default: prometheus.scrape_interval).
    #[serde(default)]
    pub interval: Option<String>,
}

/// `metrics` as written: the URL alone, or the full table.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ServiceMetricsWritten {
    Url(String),
    Full(ServiceMetrics),
}

fn service_metrics<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ServiceMetrics>, D::Error> {
    struct UrlOrTable;
    impl<'de> serde::de::Visitor<'de> for UrlOrTable {
        type Value = Option<ServiceMetrics>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a URL or a table { url, interval }")
        }
        fn visit_str<E: serde::de::Error>(self, url: &str) -> Result<Self::Value, E> {
            Ok(Some(ServiceMetrics {
                url: url.into(),
                interval: None,
            }))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            ServiceMetrics::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_any(UrlOrTable)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// http:// or https:// URL to GET.
    pub url: String,
    /// Accepted status codes; empty means any 2xx.
    #[serde(default)]
    pub valid_status_codes: Vec<u16>,
    /// Count 401/403 as up (a login-protected service is still up). Adds 401 and 403 to the accepted codes.
    #[serde(default)]
    pub accept_unauthorized: bool,
    /// Watch TLS certificate expiry (https only; default true for https).
    #[serde(default)]
    pub tls_expiry: Option<bool>,
    /// Skip certificate verification (self-signed homelab certs).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsCheck {
    /// Resolver to ask, "host" or "host:port".
    pub server: String,
    /// Name to resolve.
    pub query: String,
    /// Record type (A, AAAA, CNAME, MX, TXT, ...).
    #[serde(default = "default_dns_type")]
    pub record_type: String,
}

fn default_dns_type() -> String {
    "A".into()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedWatch {
    /// Local TCP ports the service listens on (requests it answers).
    pub ports: Vec<u16>,
    /// systemd unit whose TCP connections are watched, e.g. "jellyfin.service".
    pub unit: Option<String>,
    /// Docker/Podman container whose TCP connections are watched.
    pub container: Option<String>,
    /// Remote ports of the service's outgoing calls (any local process calling them is counted).
    pub client_ports: Vec<u16>,
    /// Route templates for the `http_route` label, e.g. "/api/items/{id}".
    pub routes: Vec<String>,
    /// Trace spans of these requests, sent by the probe to Alloy's OTLP HTTP receiver
    /// (which forwards them to Tempo). Unset: exporters.probe.traces decides. `true`
    /// needs a trace destination (Alloy, and Tempo or host.ship_to.otlp_grpc on an agent).
    pub traces: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum LogSource {
    /// A systemd unit, e.g. "jellyfin.service".
    Unit(String),
    /// A docker/podman container name.
    Container(String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// The router, pinged to tell "LAN down" from "internet down".
    pub gateway: Option<String>,
    /// Public resolvers pinged to tell whether the internet is reachable.
    pub resolvers: Vec<String>,
    pub lan_sweep: Option<LanSweep>,
}

/// Ping every address of a small LAN range for a presence timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LanSweep {
    /// IPv4 CIDR, at most /22 (1,024 addresses).
    pub cidr: String,
    #[serde(default = "default_sweep_interval")]
    pub interval: String,
}

fn default_sweep_interval() -> String {
    "5m".into()
}

/// A daemon listening on an address and port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    #[serde(default = "default_enable")]
    pub enable: bool,
    #[serde(default = "loopback")]
    pub listen_address: String,
    pub port: u16,
}

fn default_enable() -> bool {
    true
}

fn loopback() -> String {
    "127.0.0.1".into()
}

impl Listener {
    fn on(port: u16) -> Self {
        Listener {
            enable: true,
            listen_address: loopback(),
            port,
        }
    }

    /// This listener with the fields the user wrote replaced.
    fn overlay<'de, D: Deserializer<'de>>(mut self, d: D) -> Result<Self, D::Error> {
        let written = ListenerFields::deserialize(d)?;
        self.enable = written.enable.unwrap_or(self.enable);
        self.listen_address = written.listen_address.unwrap_or(self.listen_address);
        self.port = written.port.unwrap_or(self.port);
        Ok(self)
    }
}

/// A listener as written in the config: every field left out keeps its default
/// (enabled, 127.0.0.1, the daemon's usual port).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListenerFields {
    /// Default true.
    enable: Option<bool>,
    /// Default 127.0.0.1; 0.0.0.0 listens on every interface.
    listen_address: Option<String>,
    /// Default: the daemon's usual port (blackbox 9115, cAdvisor 8088).
    port: Option<u16>,
}

const BLACKBOX_PORT: u16 = 9115;
const CADVISOR_PORT: u16 = 8088;

fn blackbox_listener<'de, D: Deserializer<'de>>(d: D) -> Result<Listener, D::Error> {
    Listener::on(BLACKBOX_PORT).overlay(d)
}

fn cadvisor_listener<'de, D: Deserializer<'de>>(d: D) -> Result<Listener, D::Error> {
    Listener::on(CADVISOR_PORT).overlay(d)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Exporters {
    pub node: NodeExporter,
    #[serde(deserialize_with = "blackbox_listener")]
    #[schemars(with = "ListenerFields")]
    pub blackbox: Listener,
    /// cAdvisor, run with docker_only=false so systemd services show too.
    #[serde(deserialize_with = "cadvisor_listener")]
    #[schemars(with = "ListenerFields")]
    pub cadvisor: Listener,
    pub probe: Probe,
}

impl Default for Exporters {
    fn default() -> Self {
        Exporters {
            node: NodeExporter::default(),
            blackbox: Listener::on(BLACKBOX_PORT),
            cadvisor: Listener::on(CADVISOR_PORT),
            probe: Probe::default(),
        }
    }
}

/// The eBPF RED probe (homelab-probe), run as a host unit on every target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Probe {
    pub enable: bool,
    /// Address of its /metrics listener.
    pub listen_address: String,
    pub port: u16,
    /// Also measure HTTPS served or called through a dynamically linked
    /// libssl (uprobes on SSL_read/SSL_write). The kernel's uprobe PMU needs
    /// CAP_SYS_ADMIN for them, close to root, so it is off unless asked.
    pub tls: bool,
    /// Trace spans of every service's RED watch (`services[].red.traces` overrides it per
    /// service). Unset: on when this host has a trace destination (Alloy, and Tempo or
    /// host.ship_to.otlp_grpc on an agent), else off. `true` without one is an error.
    pub traces: Option<bool>,
    /// One JSON line per answered request on the probe's stdout (the journal, and Loki
    /// through Alloy): service, method, route, path without query, status, duration,
    /// client. Unset: on when this host ships logs to Loki.
    pub access_log: Option<bool>,
}

impl Default for Probe {
    fn default() -> Self {
        Probe {
            enable: true,
            listen_address: loopback(),
            port: 9464,
            tls: false,
            traces: None,
            access_log: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NodeExporter {
    pub enable: bool,
    pub listen_address: String,
    pub port: u16,
    /// Collectors enabled on top of node_exporter's defaults.
    pub collectors: Vec<String>,
}

impl Default for NodeExporter {
    fn default() -> Self {
        NodeExporter {
            enable: true,
            listen_address: loopback(),
            port: 9100,
            collectors: vec!["systemd".into(), "processes".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Prometheus {
    pub listen_address: String,
    pub port: u16,
    pub scrape_interval: String,
    pub evaluation_interval: String,
    /// How long samples are kept (Prometheus --storage.tsdb.retention.time).
    pub retention: String,
    pub data_dir: String,
    /// Accept remote writes from agents. Tempo's span metrics need it too,
    /// so it is on whenever Tempo runs.
    pub remote_write_receiver: bool,
    pub remote_write: Vec<RemoteWrite>,
    /// Your own scrape jobs: any exporter or metrics endpoint, with static targets.
    pub scrape_configs: Vec<ScrapeConfig>,
}

/// A scrape job of your own, in Prometheus' terms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    /// The job name and `job` label: letters, digits, '-' and '_'; not one of configgen's own jobs.
    pub job_name: String,
    /// "host:port" of each target.
    pub targets: Vec<String>,
    /// Labels added to every target's series.
    pub labels: BTreeMap<String, String>,
    /// "http" (default) or "https".
    pub scheme: Option<String>,
    /// Default "/metrics".
    pub metrics_path: Option<String>,
    /// Default: prometheus.scrape_interval.
    pub scrape_interval: Option<String>,
    /// Default: Prometheus' (10s, at most the interval).
    pub scrape_timeout: Option<String>,
    pub basic_auth: Option<BasicAuth>,
    /// File holding a bearer token, read by Prometheus at run time.
    pub bearer_token_file: Option<String>,
    pub tls_config: Option<TlsConfig>,
}

/// TLS settings of a scrape job. Files are read at run time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// CA certificate to verify the target with.
    pub ca_file: Option<String>,
    /// Client certificate, with key_file.
    pub cert_file: Option<String>,
    /// Client key, with cert_file.
    pub key_file: Option<String>,
    /// Name the target's certificate must carry, when it is not the target's host.
    pub server_name: Option<String>,
    /// Skip certificate verification (self-signed homelab certs).
    pub insecure_skip_verify: bool,
}

impl Default for Prometheus {
    fn default() -> Self {
        Prometheus {
            listen_address: loopback(),
            port: 9090,
            scrape_interval: "30s".into(),
            evaluation_interval: "30s".into(),
            retention: "30d".into(),
            data_dir: "/var/lib/prometheus/metrics2".into(),
            remote_write_receiver: false,
            remote_write: Vec::new(),
            scrape_configs: Vec::new(),
        }
    }
}

/// A remote-write target for users who outgrow one machine (Mimir, Thanos receive, VictoriaMetrics).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWrite {
    pub name: Option<String>,
    pub url: String,
    pub basic_auth: Option<BasicAuth>,
    /// File holding a bearer token, read by Prometheus at run time.
    pub bearer_token_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    /// File holding the password, read at run time; never inlined.
    pub password_file: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Alertmanager {
    pub listen_address: String,
    pub port: u16,
    pub data_dir: String,
    /// The Alertmanager release this host runs, "major.minor". Default: the
    /// pinned image's. Set "0.25" for Debian bookworm's package, which has no
    /// webhook `url_file`: configgen then refuses every `url_file` field and
    /// the telegram, discord and pushover receivers (their credentials come
    /// from files, which 0.25 cannot read).
    pub version: String,
}

impl Default for Alertmanager {
    fn default() -> Self {
        Alertmanager {
            listen_address: loopback(),
            port: 9093,
            data_dir: "/var/lib/prometheus/alertmanager".into(),
            version: crate::runtime::release::ALERTMANAGER_VERSION.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Alerting {
    pub receivers: Vec<Receiver>,
    /// Receivers per severity ("critical", "warning", "info"). A severity with
    /// no entry goes to `default_receivers`.
    pub routes: BTreeMap<String, Vec<String>>,
    /// Receivers for anything no severity route takes. Empty means alerts are
    /// only visible in Alertmanager and Grafana.
    pub default_receivers: Vec<String>,
    /// Labels whose values split alerts into separate notifications. The
    /// default, alertname alone, sends one message per kind of problem: the
    /// HTTP, TCP and ICMP checks of a down service, or three failed units,
    /// arrive together.
    pub group_by: Vec<String>,
    pub group_wait: String,
    pub group_interval: String,
    pub repeat_interval: String,
    /// External dead-man's switch (e.g. healthchecks.io) pinged by the always-firing Watchdog alert.
    /// Its URL is a secret (whoever knows it can fake the heartbeat): prefer `watchdog_url_file`.
    pub watchdog_url: Option<String>,
    /// File holding the heartbeat URL, read by Alertmanager (0.26+) at run time.
    pub watchdog_url_file: Option<String>,
    /// How other devices (a phone, a laptop) reach this host, e.g.
    /// "http://monitor.lan": scheme and host only. Links in notifications
    /// point there, with each daemon's port (Prometheus and Alertmanager get
    /// it as --web.external-url). Unset: links use the listen address.
    pub external_url: Option<String>,
    /// Per-alert overrides, keyed by alert name.
    pub overrides: BTreeMap<String, AlertOverride>,
    /// Extra Prometheus rule files (paths), loaded as they are.
    pub extra_rule_files: Vec<String>,
    /// Longest time a systemd timer may go without running, per timer unit,
    /// e.g. { "restic-backup.timer" = "26h" } (HostSystemdTimerLate; other
    /// timers use that alert's threshold).
    pub timer_max_age: BTreeMap<String, String>,
}

impl Default for Alerting {
    fn default() -> Self {
        Alerting {
            receivers: Vec::new(),
            routes: BTreeMap::new(),
            default_receivers: Vec::new(),
            group_by: vec!["alertname".into()],
            group_wait: "30s".into(),
            group_interval: "5m".into(),
            repeat_interval: "3h".into(),
            watchdog_url: None,
            watchdog_url_file: None,
            external_url: None,
            overrides: BTreeMap::new(),
            extra_rule_files: Vec::new(),
            timer_max_age: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AlertOverride {
    /// false removes the alert.
    pub enabled: Option<bool>,
    /// Replaces the alert's documented threshold.
    pub threshold: Option<f64>,
    /// Replaces the alert's `for` duration.
    #[serde(rename = "for")]
    pub for_: Option<String>,
    pub severity: Option<String>,
}

/// Where notifications go; `type` selects the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Receiver {
    Email(EmailReceiver),
    Webhook(WebhookReceiver),
    /// An ntfy topic.
    Ntfy(NtfyReceiver),
    /// A Telegram chat, through a bot (Alertmanager 0.26+).
    Telegram(TelegramReceiver),
    /// A Discord channel webhook (Alertmanager 0.27+).
    Discord(DiscordReceiver),
    /// Pushover (Alertmanager 0.26+).
    Pushover(PushoverReceiver),
}

impl Receiver {
    pub fn name(&self) -> &str {
        match self {
            Receiver::Email(r) => &r.name,
            Receiver::Webhook(r) => &r.name,
            Receiver::Ntfy(r) => &r.name,
            Receiver::Telegram(r) => &r.name,
            Receiver::Discord(r) => &r.name,
            Receiver::Pushover(r) => &r.name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailReceiver {
    /// Unique name, referenced by `alerting.routes`.
    pub name: String,
    pub to: String,
    pub from: String,
    /// SMTP server, "host:port".
    pub smarthost: String,
    pub username: Option<String>,
    /// File holding the SMTP password, read by Alertmanager at run time.
    pub password_file: Option<String>,
    #[serde(default = "default_enable")]
    pub require_tls: bool,
    #[serde(default = "default_enable")]
    pub send_resolved: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookReceiver {
    pub name: String,
    /// Inline URL: only for URLs that grant nothing (no token in them).
    pub url: Option<String>,
    /// File holding the URL, read by Alertmanager (0.26+) at run time.
    pub url_file: Option<String>,
    #[serde(default = "default_enable")]
    pub send_resolved: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NtfyReceiver {
    pub name: String,
    /// Topic URL, e.g. "https://ntfy.sh/my-homelab". Whoever knows an
    /// unprotected topic can read it: prefer `url_file`, or protect the topic
    /// with `token_file`.
    pub url: Option<String>,
    /// File holding the topic URL, read by Alertmanager (0.26+) at run time.
    pub url_file: Option<String>,
    /// File holding an ntfy access token, read at run time.
    pub token_file: Option<String>,
    #[serde(default = "default_enable")]
    pub send_resolved: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelegramReceiver {
    pub name: String,
    /// File holding the bot's token (from @BotFather), read by Alertmanager
    /// (0.26+) at run time.
    pub bot_token_file: String,
    /// The chat the bot writes to; negative for groups and channels.
    pub chat_id: i64,
    #[serde(default = "default_enable")]
    pub send_resolved: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscordReceiver {
    pub name: String,
    /// File holding the channel's webhook URL, read by Alertmanager (0.27+)
    /// at run time.
    pub webhook_url_file: String,
    #[serde(default = "default_enable")]
    pub send_resolved: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PushoverReceiver {
    pub name: String,
    /// File holding your Pushover user (or group) key, read by Alertmanager
    /// (0.26+) at run time. It must not end with a newline.
    pub user_key_file: String,
    /// File holding the Pushover application's API token, read by
    /// Alertmanager (0.26+) at run time. It must not end with a newline.
    pub token_file: String,
    #[serde(default = "default_enable")]
    pub send_resolved: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Loki {
    pub enable: bool,
    /// Address of the HTTP API: queries, and the push API agents send to.
    pub listen_address: String,
    pub port: u16,
    /// Loki's internal gRPC listener, always on 127.0.0.1.
    pub grpc_port: u16,
    pub data_dir: String,
    pub retention: String,
}

impl Default for Loki {
    fn default() -> Self {
        Loki {
            enable: true,
            listen_address: loopback(),
            port: 3100,
            grpc_port: 9096,
            data_dir: "/var/lib/loki".into(),
            retention: "30d".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Alloy {
    pub enable: bool,
    pub listen_address: String,
    pub port: u16,
    /// Docker or Podman API sockets whose containers' logs are collected: one
    /// path, a list (e.g. one per rootless user:
    /// "/run/user/1001/podman/podman.sock"), or false / [] for none.
    /// Formerly `container_socket`, still accepted.
    #[serde(alias = "container_socket", deserialize_with = "container_sockets")]
    #[schemars(schema_with = "container_sockets_schema")]
    pub container_sockets: Vec<String>,
    /// Extra log files by glob.
    pub log_files: Vec<LogFiles>,
    pub otlp_grpc_port: u16,
    pub otlp_http_port: u16,
    pub data_dir: String,
}

impl Default for Alloy {
    fn default() -> Self {
        Alloy {
            enable: true,
            listen_address: loopback(),
            port: 12345,
            container_sockets: vec!["/var/run/docker.sock".into()],
            log_files: Vec::new(),
            otlp_grpc_port: 4317,
            otlp_http_port: 4318,
            data_dir: "/var/lib/alloy".into(),
        }
    }
}

/// `alloy.container_sockets` as written: a path, a list of paths, or
/// false / null / [] for none (TOML has no null).
fn container_sockets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct Sockets;
    impl<'de> serde::de::Visitor<'de> for Sockets {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a socket path, a list of socket paths, or false")
        }
        fn visit_str<E: serde::de::Error>(self, path: &str) -> Result<Self::Value, E> {
            Ok(vec![path.into()])
        }
        fn visit_bool<E: serde::de::Error>(self, on: bool) -> Result<Self::Value, E> {
            if on {
                Err(E::custom(
                    "true is not a socket: give its path (e.g. \"/var/run/docker.sock\"), or false for none",
                ))
            } else {
                Ok(Vec::new())
            }
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::<String>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
        }
    }
    d.deserialize_any(Sockets)
}

fn container_sockets_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Docker or Podman API sockets for container logs: a path, a list of paths, or false / [] for none.",
        "anyOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": "string"}},
            {"const": false},
            {"type": "null"}
        ]
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogFiles {
    /// The `job` label, e.g. "nginx".
    pub job: String,
    /// Glob, e.g. "/var/log/nginx/*access.log".
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Tempo {
    pub enable: bool,
    /// Address of the HTTP API Grafana queries.
    pub listen_address: String,
    pub port: u16,
    /// Address of Tempo's OTLP gRPC receiver, the one Tempo listener agents
    /// send to. Tempo's gRPC API and memberlist stay on 127.0.0.1.
    pub otlp_grpc_listen_address: String,
    /// Tempo's own OTLP gRPC receiver (Alloy forwards to it).
    pub otlp_grpc_port: u16,
    pub data_dir: String,
    pub retention: String,
}

impl Default for Tempo {
    fn default() -> Self {
        Tempo {
            enable: true,
            listen_address: loopback(),
            port: 3200,
            otlp_grpc_listen_address: loopback(),
            otlp_grpc_port: 4327,
            data_dir: "/var/lib/tempo".into(),
            retention: "14d".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Grafana {
    pub enable: bool,
    pub listen_address: String,
    pub port: u16,
    /// Public domain Grafana is served under (for links in notifications).
    pub domain: String,
    /// The URL users open, e.g. "https://lab.example.org/grafana/" behind a
    /// reverse proxy (a path serves Grafana from that sub-path). Default:
    /// http://DOMAIN:PORT/.
    pub root_url: Option<String>,
    /// The first admin's login name.
    pub admin_user: String,
    /// File holding the admin password, read by Grafana at run time.
    pub admin_password_file: Option<String>,
    /// File holding the key Grafana encrypts its stored secrets with. Unset:
    /// Grafana's built-in key, which is public. Required with `oidc`.
    pub secret_key_file: Option<String>,
    pub smtp: Option<GrafanaSmtp>,
    /// Login through an OpenID Connect provider (Authentik, Authelia, Keycloak...).
    pub oidc: Option<GrafanaOidc>,
    /// Directory the rendered dashboards are installed to (the provider's path).
    pub dashboards_dir: String,
    pub data_dir: String,
}

/// The mail server Grafana sends invitations and password resets through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrafanaSmtp {
    /// "host:port".
    pub host: String,
    pub user: Option<String>,
    /// File holding the SMTP password, read by Grafana at run time.
    pub password_file: Option<String>,
    pub from_address: String,
}

/// Grafana's generic OAuth login against an OpenID Connect provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrafanaOidc {
    /// Shown on the login button ("Sign in with NAME").
    #[serde(default = "default_oidc_name")]
    pub name: String,
    pub client_id: String,
    /// File holding the client secret, read by Grafana at run time.
    pub client_secret_file: String,
    pub auth_url: String,
    pub token_url: String,
    /// The provider's userinfo endpoint.
    pub api_url: String,
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// JMESPath giving Grafana's role from the user's claims, e.g.
    /// "contains(groups[*], 'admins') && 'Admin' || 'Viewer'".
    pub role_attribute_path: Option<String>,
    /// Create a Grafana user at a provider user's first login.
    #[serde(default = "default_enable")]
    pub allow_sign_up: bool,
    #[serde(default = "default_enable")]
    pub use_pkce: bool,
}

fn default_oidc_name() -> String {
    "SSO".into()
}

fn default_oidc_scopes() -> Vec<String> {
    ["openid", "profile", "email", "groups"]
        .map(String::from)
        .into()
}

impl Default for Grafana {
    fn default() -> Self {
        Grafana {
            enable: true,
            listen_address: loopback(),
            port: 3000,
            domain: "localhost".into(),
            root_url: None,
            admin_user: "admin".into(),
            admin_password_file: None,
            secret_key_file: None,
            smtp: None,
            oidc: None,
            dashboards_dir: "/etc/homelab-observability/grafana/dashboards".into(),
            data_dir: "/var/lib/grafana".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partly_written_listener_keeps_its_other_defaults() {
        let cfg: Config = toml::from_str(
            "[exporters.probe]\nlisten_address = \"0.0.0.0\"\n[exporters.cadvisor]\nenable = false\n",
        )
        .unwrap();
        assert_eq!(
            cfg.exporters.probe,
            Probe {
                listen_address: "0.0.0.0".into(),
                ..Probe::default()
            }
        );
        assert_eq!(
            cfg.exporters.cadvisor,
            Listener {
                enable: false,
                listen_address: loopback(),
                port: 8088
            }
        );
        assert_eq!(cfg.exporters.blackbox, Listener::on(9115));
        assert!(toml::from_str::<Config>("[exporters.probe]\nprot = 1\n").is_err());
    }

    #[test]
    fn container_sockets_can_be_one_several_or_none_in_every_format() {
        let sockets = |toml: &str| {
            toml::from_str::<Config>(&format!("[alloy]\n{toml}\n"))
                .map(|c| c.alloy.container_sockets)
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            Config::default().alloy.container_sockets,
            ["/var/run/docker.sock"]
        );
        assert_eq!(
            sockets("container_socket = \"/run/podman/podman.sock\"").unwrap(),
            ["/run/podman/podman.sock"]
        );
        assert_eq!(
            sockets("container_sockets = [\"/run/user/1001/podman/podman.sock\", \"/run/user/1002/podman/podman.sock\"]").unwrap(),
            ["/run/user/1001/podman/podman.sock", "/run/user/1002/podman/podman.sock"]
        );
        assert_eq!(
            sockets("container_sockets = false").unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            sockets("container_socket = []").unwrap(),
            Vec::<String>::new()
        );
        assert!(sockets("container_sockets = true")
            .unwrap_err()
            .contains("true is not a socket"));
        let from_json =
            |json: &str| serde_json::from_str::<Config>(json).map(|c| c.alloy.container_sockets);
        assert_eq!(
            from_json(r#"{"alloy": {"container_socket": null}}"#).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            from_json(r#"{"alloy": {"container_sockets": false}}"#).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn service_metrics_is_a_url_or_a_table() {
        let metrics = |toml: &str| {
            toml::from_str::<Config>(&format!("[[services]]\nname = \"a\"\n{toml}\n"))
                .map(|c| c.services[0].metrics.clone())
        };
        assert_eq!(
            metrics("metrics = \"http://127.0.0.1:9300/metrics\"").unwrap(),
            Some(ServiceMetrics {
                url: "http://127.0.0.1:9300/metrics".into(),
                interval: None
            })
        );
        assert_eq!(
            metrics("metrics = { url = \"http://h:1/m\", interval = \"1m\" }").unwrap(),
            Some(ServiceMetrics {
                url: "http://h:1/m".into(),
                interval: Some("1m".into())
            })
        );
        assert_eq!(metrics("").unwrap(), None);
        assert!(metrics("metrics = { url = \"http://h:1/m\", intervall = \"1m\" }").is_err());
    }

    #[test]
    fn an_http_check_needs_a_url() {
        let err = toml::from_str::<Config>("[[services]]\nname = \"a\"\nhttp = {}\n").unwrap_err();
        assert!(err.to_string().contains("missing field `url`"), "{err}");
    }
}
