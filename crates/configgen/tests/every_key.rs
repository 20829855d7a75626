//! Every config key takes effect on every deployment target, or is refused
//! with a clear error (issue 8).
//!
//! The table below has a row for every leaf key of `configgen schema` (keys
//! inside arrays of tables, receiver variants and per-alert overrides
//! included): a completeness check fails naming any key without one, so a new
//! key needs a new row. Each row changes one key of a realistic base config
//! (examples/homelab.toml with the sections it leaves commented out, or an
//! agent), loads both through configgen's validating loader (as JSON, the
//! form the NixOS module hands over) and renders both. The change must reach
//! every target: a shared file the daemons read (prometheus/, alertmanager/,
//! blackbox/, loki/, alloy/, tempo/, grafana/, probe/) or both compose.yaml
//! (Docker/Podman) and a file under systemd/ (Debian packages). A key that
//! cannot have an effect on some config is refused there: its row expects the
//! loader's error. The keys that legitimately reach one target only are in
//! `ONE_TARGET`, each with its reason.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use configgen::load::{self, Format, Source};
use configgen::model::Config;
use configgen::render::Tree;
use serde_json::{json, Value};

/// Top-level directories of the files every target's daemons read.
const SHARED: &[&str] = &[
    "prometheus/",
    "alertmanager/",
    "blackbox/",
    "loki/",
    "alloy/",
    "tempo/",
    "grafana/",
    "probe/",
];

/// Keys whose change reaches one deployment target only, and why that is right.
const ONE_TARGET: &[(&str, &str)] = &[(
    "exporters.probe.tls",
    "the probe runs as a host unit on every target, Docker/Podman hosts included \
     (compose.yaml has no probe service), so systemd/homelab-probe.service alone \
     carries its --no-tls and CAP_SYS_ADMIN",
)];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Base {
    /// examples/homelab.toml plus the sections it only shows in comments.
    Server,
    /// An agent shipping to a server.
    Agent,
}

enum Expect {
    /// A shared file changes, or both compose.yaml and systemd/ do (or one
    /// target, for the keys of `ONE_TARGET`).
    Rendered,
    /// The loader refuses the changed config with an error holding this text.
    Refused(&'static str),
}

struct Row {
    key: &'static str,
    base: Base,
    /// JSON pointers into the config and their new values; more than one when
    /// a key only makes sense with another (a renamed receiver and its routes).
    set: Vec<(&'static str, Value)>,
    /// Settings of the base the row needs, on both sides of the comparison.
    given: Vec<(&'static str, Value)>,
    expect: Expect,
}

fn row(key: &'static str, at: &'static str, value: Value) -> Row {
    Row {
        key,
        base: Base::Server,
        set: vec![(at, value)],
        given: Vec::new(),
        expect: Expect::Rendered,
    }
}

impl Row {
    fn also(mut self, at: &'static str, value: Value) -> Row {
        self.set.push((at, value));
        self
    }
    fn given(mut self, at: &'static str, value: Value) -> Row {
        self.given.push((at, value));
        self
    }
    fn on(mut self, base: Base) -> Row {
        self.base = base;
        self
    }
    fn refused(mut self, needle: &'static str) -> Row {
        self.expect = Expect::Refused(needle);
        self
    }
}

/// One row per schema key. Services of the server base, in
/// examples/homelab.toml's order: 0 jellyfin, 1 immich, 2 authentik, 3 caddy,
/// 4 nas-smb, 5 router, 6 dns-cloudflare.
fn rows() -> Vec<Row> {
    vec![
        // [host]
        row("host.name", "/host/name", json!("nas2")),
        row("host.role", "/host/role", json!("server")).on(Base::Agent),
        row("host.labels", "/host/labels/rack", json!("b")),
        row(
            "host.ship_to.prometheus_remote_write",
            "/host/ship_to/prometheus_remote_write",
            json!("http://monitor2.lan:9090/api/v1/write"),
        )
        .on(Base::Agent),
        row(
            "host.ship_to.loki_push",
            "/host/ship_to/loki_push",
            json!("http://monitor2.lan:3100/loki/api/v1/push"),
        )
        .on(Base::Agent),
        row(
            "host.ship_to.otlp_grpc",
            "/host/ship_to/otlp_grpc",
            json!("monitor2.lan:4317"),
        )
        .on(Base::Agent),
        // [[services]]
        row("services[].name", "/services/0/name", json!("jellyfin2")),
        row("services[].interval", "/services/0/interval", json!("20s")),
        row(
            "services[].labels",
            "/services/0/labels/tier",
            json!("gold"),
        ),
        row(
            "services[].http.url",
            "/services/0/http/url",
            json!("http://127.0.0.1:8096/ping"),
        ),
        row(
            "services[].http.valid_status_codes",
            "/services/0/http/valid_status_codes",
            json!([200, 204]),
        ),
        row(
            "services[].http.accept_unauthorized",
            "/services/0/http/accept_unauthorized",
            json!(true),
        ),
        // https://photos.example.org/: expiry watched by default.
        row(
            "services[].http.tls_expiry",
            "/services/1/http/tls_expiry",
            json!(false),
        ),
        row(
            "services[].http.insecure_skip_verify",
            "/services/1/http/insecure_skip_verify",
            json!(true),
        ),
        row(
            "services[].tcp",
            "/services/4/tcp",
            json!("192.168.1.20:139"),
        ),
        row("services[].icmp", "/services/4/icmp", json!("192.168.1.21")),
        row(
            "services[].dns.server",
            "/services/6/dns/server",
            json!("9.9.9.9"),
        ),
        row(
            "services[].dns.query",
            "/services/6/dns/query",
            json!("example.com"),
        ),
        row(
            "services[].dns.record_type",
            "/services/6/dns/record_type",
            json!("AAAA"),
        ),
        row(
            "services[].red.ports",
            "/services/0/red/ports",
            json!([8096, 8920]),
        ),
        row(
            "services[].red.unit",
            "/services/3/red/unit",
            json!("caddy-api.service"),
        ),
        row(
            "services[].red.container",
            "/services/1/red/container",
            json!("immich_web"),
        ),
        row(
            "services[].red.client_ports",
            "/services/1/red/client_ports",
            json!([3003, 5432]),
        ),
        row(
            "services[].red.routes",
            "/services/0/red/routes",
            json!(["/Items/{id}"]),
        ),
        row(
            "services[].red.traces",
            "/services/0/red/traces",
            json!(false),
        ),
        row(
            "services[].logs.unit",
            "/services/0/logs",
            json!({"unit": "jellyfin-server.service"}),
        ),
        row(
            "services[].logs.container",
            "/services/1/logs",
            json!({"container": "immich_web"}),
        ),
        // The URL alone (the shorthand).
        row(
            "services[].metrics",
            "/services/2/metrics",
            json!("http://127.0.0.1:9301/metrics"),
        ),
        row(
            "services[].metrics.url",
            "/services/1/metrics/url",
            json!("http://127.0.0.1:8082/metrics"),
        ),
        row(
            "services[].metrics.interval",
            "/services/1/metrics/interval",
            json!("2m"),
        ),
        // [network]
        row(
            "network.gateway",
            "/network/gateway",
            json!("192.168.1.254"),
        ),
        row(
            "network.resolvers",
            "/network/resolvers",
            json!(["1.1.1.1"]),
        ),
        row(
            "network.lan_sweep.cidr",
            "/network/lan_sweep/cidr",
            json!("192.168.2.0/24"),
        ),
        row(
            "network.lan_sweep.interval",
            "/network/lan_sweep/interval",
            json!("10m"),
        ),
        // [exporters.*]
        row(
            "exporters.node.enable",
            "/exporters/node/enable",
            json!(false),
        ),
        row(
            "exporters.node.listen_address",
            "/exporters/node/listen_address",
            json!("0.0.0.0"),
        ),
        row("exporters.node.port", "/exporters/node/port", json!(9101)),
        row(
            "exporters.node.collectors",
            "/exporters/node/collectors",
            json!(["processes"]),
        ),
        row(
            "exporters.blackbox.enable",
            "/exporters/blackbox/enable",
            json!(false),
        ),
        row(
            "exporters.blackbox.listen_address",
            "/exporters/blackbox/listen_address",
            json!("0.0.0.0"),
        ),
        row(
            "exporters.blackbox.port",
            "/exporters/blackbox/port",
            json!(9116),
        ),
        row(
            "exporters.cadvisor.enable",
            "/exporters/cadvisor/enable",
            json!(false),
        ),
        row(
            "exporters.cadvisor.listen_address",
            "/exporters/cadvisor/listen_address",
            json!("0.0.0.0"),
        ),
        row(
            "exporters.cadvisor.port",
            "/exporters/cadvisor/port",
            json!(8089),
        ),
        row(
            "exporters.probe.enable",
            "/exporters/probe/enable",
            json!(false),
        ),
        row(
            "exporters.probe.listen_address",
            "/exporters/probe/listen_address",
            json!("0.0.0.0"),
        ),
        row("exporters.probe.port", "/exporters/probe/port", json!(9465)),
        row("exporters.probe.tls", "/exporters/probe/tls", json!(true)),
        row(
            "exporters.probe.traces",
            "/exporters/probe/traces",
            json!(false),
        ),
        row(
            "exporters.probe.access_log",
            "/exporters/probe/access_log",
            json!(false),
        ),
        // [prometheus]
        row(
            "prometheus.listen_address",
            "/prometheus/listen_address",
            json!("0.0.0.0"),
        ),
        row("prometheus.port", "/prometheus/port", json!(9091)),
        row(
            "prometheus.scrape_interval",
            "/prometheus/scrape_interval",
            json!("15s"),
        ),
        row(
            "prometheus.evaluation_interval",
            "/prometheus/evaluation_interval",
            json!("15s"),
        ),
        row(
            "prometheus.retention",
            "/prometheus/retention",
            json!("30d"),
        ),
        row(
            "prometheus.data_dir",
            "/prometheus/data_dir",
            json!("/srv/prometheus"),
        ),
        // Tempo's span metrics turn the receiver on by themselves.
        row(
            "prometheus.remote_write_receiver",
            "/prometheus/remote_write_receiver",
            json!(true),
        )
        .given("/tempo/enable", json!(false)),
        row(
            "prometheus.remote_write[].name",
            "/prometheus/remote_write/0/name",
            json!("mimir2"),
        ),
        row(
            "prometheus.remote_write[].url",
            "/prometheus/remote_write/0/url",
            json!("https://mimir2.example.org/api/v1/push"),
        ),
        row(
            "prometheus.remote_write[].basic_auth.username",
            "/prometheus/remote_write/0/basic_auth/username",
            json!("lab"),
        ),
        row(
            "prometheus.remote_write[].basic_auth.password_file",
            "/prometheus/remote_write/0/basic_auth/password_file",
            json!("/run/secrets/mimir-password-2"),
        ),
        row(
            "prometheus.remote_write[].bearer_token_file",
            "/prometheus/remote_write/1/bearer_token_file",
            json!("/run/secrets/vm-token-2"),
        ),
        row(
            "prometheus.scrape_configs[].job_name",
            "/prometheus/scrape_configs/0/job_name",
            json!("envoy-admin"),
        ),
        row(
            "prometheus.scrape_configs[].targets",
            "/prometheus/scrape_configs/0/targets",
            json!(["127.0.0.1:9902"]),
        ),
        row(
            "prometheus.scrape_configs[].labels",
            "/prometheus/scrape_configs/0/labels/category",
            json!("network"),
        ),
        row(
            "prometheus.scrape_configs[].scheme",
            "/prometheus/scrape_configs/0/scheme",
            json!("https"),
        ),
        row(
            "prometheus.scrape_configs[].metrics_path",
            "/prometheus/scrape_configs/0/metrics_path",
            json!("/stats"),
        ),
        row(
            "prometheus.scrape_configs[].scrape_interval",
            "/prometheus/scrape_configs/0/scrape_interval",
            json!("45s"),
        ),
        row(
            "prometheus.scrape_configs[].scrape_timeout",
            "/prometheus/scrape_configs/0/scrape_timeout",
            json!("5s"),
        ),
        row(
            "prometheus.scrape_configs[].basic_auth.username",
            "/prometheus/scrape_configs/3/basic_auth/username",
            json!("scraper"),
        ),
        row(
            "prometheus.scrape_configs[].basic_auth.password_file",
            "/prometheus/scrape_configs/3/basic_auth/password_file",
            json!("/run/secrets/unifi-exporter-2"),
        ),
        row(
            "prometheus.scrape_configs[].bearer_token_file",
            "/prometheus/scrape_configs/4/bearer_token_file",
            json!("/run/secrets/hass-token-2"),
        ),
        row(
            "prometheus.scrape_configs[].tls_config.ca_file",
            "/prometheus/scrape_configs/3/tls_config/ca_file",
            json!("/etc/ssl/other-ca.pem"),
        ),
        row(
            "prometheus.scrape_configs[].tls_config.cert_file",
            "/prometheus/scrape_configs/3/tls_config/cert_file",
            json!("/etc/ssl/prometheus-2.pem"),
        ),
        row(
            "prometheus.scrape_configs[].tls_config.key_file",
            "/prometheus/scrape_configs/3/tls_config/key_file",
            json!("/etc/ssl/prometheus-2.key"),
        ),
        row(
            "prometheus.scrape_configs[].tls_config.server_name",
            "/prometheus/scrape_configs/3/tls_config/server_name",
            json!("unifi.home.arpa"),
        ),
        row(
            "prometheus.scrape_configs[].tls_config.insecure_skip_verify",
            "/prometheus/scrape_configs/3/tls_config/insecure_skip_verify",
            json!(true),
        ),
        // [alertmanager]
        row(
            "alertmanager.listen_address",
            "/alertmanager/listen_address",
            json!("0.0.0.0"),
        ),
        row("alertmanager.port", "/alertmanager/port", json!(9094)),
        row(
            "alertmanager.data_dir",
            "/alertmanager/data_dir",
            json!("/srv/alertmanager"),
        ),
        // The release the host runs: it decides which fields validation
        // accepts (Debian's 0.25 cannot read URLs from files); the files are
        // written for every release from 0.25 on.
        row(
            "alertmanager.version",
            "/alertmanager/version",
            json!("0.25"),
        )
        .refused("Alertmanager 0.25 has no url_file"),
        // [alerting]
        row(
            "alerting.routes",
            "/alerting/routes/warning",
            json!(["phone", "mail"]),
        ),
        row(
            "alerting.default_receivers",
            "/alerting/default_receivers",
            json!(["mail"]),
        ),
        row(
            "alerting.group_by",
            "/alerting/group_by",
            json!(["alertname", "host"]),
        ),
        row("alerting.group_wait", "/alerting/group_wait", json!("1m")),
        row(
            "alerting.group_interval",
            "/alerting/group_interval",
            json!("10m"),
        ),
        row(
            "alerting.repeat_interval",
            "/alerting/repeat_interval",
            json!("12h"),
        ),
        row(
            "alerting.watchdog_url",
            "/alerting/watchdog_url",
            json!("https://hc-ping.com/abc"),
        )
        .also("/alerting/watchdog_url_file", Value::Null),
        row(
            "alerting.watchdog_url_file",
            "/alerting/watchdog_url_file",
            json!("/run/secrets/heartbeat-2"),
        ),
        row(
            "alerting.external_url",
            "/alerting/external_url",
            json!("http://monitor.lan"),
        ),
        row(
            "alerting.timer_max_age",
            "/alerting/timer_max_age",
            json!({ "restic-backup.timer": "26h" }),
        ),
        row(
            "alerting.overrides.*.enabled",
            "/alerting/overrides/HostHighCpuLoad/enabled",
            json!(true),
        ),
        row(
            "alerting.overrides.*.threshold",
            "/alerting/overrides/HostDiskAlmostFull/threshold",
            json!(8),
        ),
        row(
            "alerting.overrides.*.for",
            "/alerting/overrides/HostDiskAlmostFull/for",
            json!("30m"),
        ),
        row(
            "alerting.overrides.*.severity",
            "/alerting/overrides/HostDiskAlmostFull/severity",
            json!("warning"),
        ),
        row(
            "alerting.extra_rule_files",
            "/alerting/extra_rule_files",
            json!(["/etc/prometheus/my-rules.yml"]),
        ),
        // [[alerting.receivers]]: 0 email "mail", 1 ntfy "phone", 2 webhook "chat".
        row(
            "alerting.receivers[email].name",
            "/alerting/receivers/0/name",
            json!("email"),
        )
        .also("/alerting/routes/critical", json!(["email", "phone"])),
        row(
            "alerting.receivers[email].to",
            "/alerting/receivers/0/to",
            json!("you@example.org"),
        ),
        row(
            "alerting.receivers[email].from",
            "/alerting/receivers/0/from",
            json!("lab@example.org"),
        ),
        row(
            "alerting.receivers[email].smarthost",
            "/alerting/receivers/0/smarthost",
            json!("smtp.example.org:465"),
        ),
        row(
            "alerting.receivers[email].username",
            "/alerting/receivers/0/username",
            json!("lab"),
        ),
        row(
            "alerting.receivers[email].password_file",
            "/alerting/receivers/0/password_file",
            json!("/run/secrets/smtp-password-2"),
        ),
        row(
            "alerting.receivers[email].require_tls",
            "/alerting/receivers/0/require_tls",
            json!(false),
        ),
        row(
            "alerting.receivers[email].send_resolved",
            "/alerting/receivers/0/send_resolved",
            json!(false),
        ),
        row(
            "alerting.receivers[ntfy].name",
            "/alerting/receivers/1/name",
            json!("pager"),
        )
        .also("/alerting/default_receivers", json!(["pager"]))
        .also(
            "/alerting/routes",
            json!({"critical": ["mail", "pager"], "warning": ["pager"], "info": []}),
        ),
        row(
            "alerting.receivers[ntfy].url",
            "/alerting/receivers/1/url",
            json!("https://ntfy.example.org/lab"),
        ),
        row(
            "alerting.receivers[ntfy].url_file",
            "/alerting/receivers/1/url_file",
            json!("/run/secrets/ntfy-url"),
        )
        .also("/alerting/receivers/1/url", Value::Null),
        row(
            "alerting.receivers[ntfy].token_file",
            "/alerting/receivers/1/token_file",
            json!("/run/secrets/ntfy-token-2"),
        ),
        row(
            "alerting.receivers[ntfy].send_resolved",
            "/alerting/receivers/1/send_resolved",
            json!(false),
        ),
        row(
            "alerting.receivers[webhook].name",
            "/alerting/receivers/2/name",
            json!("chat2"),
        )
        .also("/alerting/routes/info", json!(["chat2"])),
        row(
            "alerting.receivers[webhook].url",
            "/alerting/receivers/2/url",
            json!("http://127.0.0.1:9999/hook"),
        )
        .also("/alerting/receivers/2/url_file", Value::Null),
        row(
            "alerting.receivers[webhook].url_file",
            "/alerting/receivers/2/url_file",
            json!("/run/secrets/chat-webhook-url-2"),
        ),
        row(
            "alerting.receivers[webhook].send_resolved",
            "/alerting/receivers/2/send_resolved",
            json!(false),
        ),
        // 3 telegram, 4 discord, 5 pushover: credentials only from files.
        row(
            "alerting.receivers[telegram].name",
            "/alerting/receivers/3/name",
            json!("telegram2"),
        ),
        row(
            "alerting.receivers[telegram].bot_token_file",
            "/alerting/receivers/3/bot_token_file",
            json!("/run/secrets/telegram-bot-token-2"),
        ),
        row(
            "alerting.receivers[telegram].chat_id",
            "/alerting/receivers/3/chat_id",
            json!(-1001234567890_i64),
        ),
        row(
            "alerting.receivers[telegram].send_resolved",
            "/alerting/receivers/3/send_resolved",
            json!(false),
        ),
        row(
            "alerting.receivers[discord].name",
            "/alerting/receivers/4/name",
            json!("discord2"),
        ),
        row(
            "alerting.receivers[discord].webhook_url_file",
            "/alerting/receivers/4/webhook_url_file",
            json!("/run/secrets/discord-webhook-url-2"),
        ),
        row(
            "alerting.receivers[discord].send_resolved",
            "/alerting/receivers/4/send_resolved",
            json!(false),
        ),
        row(
            "alerting.receivers[pushover].name",
            "/alerting/receivers/5/name",
            json!("pushover2"),
        ),
        row(
            "alerting.receivers[pushover].user_key_file",
            "/alerting/receivers/5/user_key_file",
            json!("/run/secrets/pushover-user-key-2"),
        ),
        row(
            "alerting.receivers[pushover].token_file",
            "/alerting/receivers/5/token_file",
            json!("/run/secrets/pushover-token-2"),
        ),
        row(
            "alerting.receivers[pushover].send_resolved",
            "/alerting/receivers/5/send_resolved",
            json!(false),
        ),
        // [loki]
        row("loki.enable", "/loki/enable", json!(false)),
        row(
            "loki.listen_address",
            "/loki/listen_address",
            json!("0.0.0.0"),
        ),
        row("loki.port", "/loki/port", json!(3101)),
        row("loki.grpc_port", "/loki/grpc_port", json!(9097)),
        row("loki.data_dir", "/loki/data_dir", json!("/srv/loki")),
        row("loki.retention", "/loki/retention", json!("60d")),
        // [alloy]
        row("alloy.enable", "/alloy/enable", json!(false)),
        row(
            "alloy.listen_address",
            "/alloy/listen_address",
            json!("0.0.0.0"),
        ),
        row("alloy.port", "/alloy/port", json!(12346)),
        row(
            "alloy.container_sockets",
            "/alloy/container_sockets",
            json!(["/run/podman/podman.sock"]),
        ),
        row(
            "alloy.log_files[].job",
            "/alloy/log_files/0/job",
            json!("proxy"),
        ),
        row(
            "alloy.log_files[].path",
            "/alloy/log_files/0/path",
            json!("/var/log/nginx/*error.log"),
        ),
        row("alloy.otlp_grpc_port", "/alloy/otlp_grpc_port", json!(4319)),
        row("alloy.otlp_http_port", "/alloy/otlp_http_port", json!(4320)),
        row("alloy.data_dir", "/alloy/data_dir", json!("/srv/alloy")),
        // [tempo]
        row("tempo.enable", "/tempo/enable", json!(false)),
        row(
            "tempo.listen_address",
            "/tempo/listen_address",
            json!("0.0.0.0"),
        ),
        row("tempo.port", "/tempo/port", json!(3201)),
        row(
            "tempo.otlp_grpc_listen_address",
            "/tempo/otlp_grpc_listen_address",
            json!("0.0.0.0"),
        ),
        row("tempo.otlp_grpc_port", "/tempo/otlp_grpc_port", json!(4328)),
        row("tempo.data_dir", "/tempo/data_dir", json!("/srv/tempo")),
        row("tempo.retention", "/tempo/retention", json!("7d")),
        // [grafana]
        row("grafana.enable", "/grafana/enable", json!(false)),
        row(
            "grafana.listen_address",
            "/grafana/listen_address",
            json!("0.0.0.0"),
        ),
        row("grafana.port", "/grafana/port", json!(3001)),
        row(
            "grafana.domain",
            "/grafana/domain",
            json!("lab.example.org"),
        ),
        row(
            "grafana.root_url",
            "/grafana/root_url",
            json!("https://lab.example.org/"),
        ),
        row("grafana.admin_user", "/grafana/admin_user", json!("root")),
        row(
            "grafana.admin_password_file",
            "/grafana/admin_password_file",
            json!("/run/secrets/grafana-admin-2"),
        ),
        row(
            "grafana.secret_key_file",
            "/grafana/secret_key_file",
            json!("/run/secrets/grafana-key-2"),
        ),
        row(
            "grafana.smtp.host",
            "/grafana/smtp/host",
            json!("smtp.example.org:465"),
        ),
        row("grafana.smtp.user", "/grafana/smtp/user", json!("grafana")),
        row(
            "grafana.smtp.password_file",
            "/grafana/smtp/password_file",
            json!("/run/secrets/grafana-smtp"),
        ),
        row(
            "grafana.smtp.from_address",
            "/grafana/smtp/from_address",
            json!("dash@example.org"),
        ),
        row("grafana.oidc.name", "/grafana/oidc/name", json!("Keycloak")),
        row(
            "grafana.oidc.client_id",
            "/grafana/oidc/client_id",
            json!("grafana-2"),
        ),
        row(
            "grafana.oidc.client_secret_file",
            "/grafana/oidc/client_secret_file",
            json!("/run/secrets/oidc-2"),
        ),
        row(
            "grafana.oidc.auth_url",
            "/grafana/oidc/auth_url",
            json!("https://id.example.org/authorize"),
        ),
        row(
            "grafana.oidc.token_url",
            "/grafana/oidc/token_url",
            json!("https://id.example.org/token"),
        ),
        row(
            "grafana.oidc.api_url",
            "/grafana/oidc/api_url",
            json!("https://id.example.org/userinfo"),
        ),
        row(
            "grafana.oidc.scopes",
            "/grafana/oidc/scopes",
            json!(["openid", "email"]),
        ),
        row(
            "grafana.oidc.role_attribute_path",
            "/grafana/oidc/role_attribute_path",
            json!("'Viewer'"),
        ),
        row(
            "grafana.oidc.allow_sign_up",
            "/grafana/oidc/allow_sign_up",
            json!(false),
        ),
        row(
            "grafana.oidc.use_pkce",
            "/grafana/oidc/use_pkce",
            json!(false),
        ),
        row(
            "grafana.dashboards_dir",
            "/grafana/dashboards_dir",
            json!("/srv/dashboards"),
        ),
        row(
            "grafana.data_dir",
            "/grafana/data_dir",
            json!("/srv/grafana"),
        ),
        // [deploy]
        row("deploy.config_dir", "/deploy/config_dir", json!("/opt/hlo")),
        // [discovery]
        row(
            "discovery.containers",
            "/discovery/containers",
            json!(false),
        ),
    ]
}

// ---------------------------------------------------------------------------
// The schema's leaf keys.
// ---------------------------------------------------------------------------

/// Every leaf key of the schema: `a.b`, `list[].field`, `map.*.field`, and
/// `list[variant].field` for tagged variants (whose `type` tag selects the
/// variant and is not a key of its own).
fn schema_leaves() -> BTreeSet<String> {
    let schema: Value = serde_json::from_str(&configgen::schema::json_schema()).unwrap();
    let mut out = BTreeSet::new();
    walk(&schema, &schema, String::new(), &mut out);
    out
}

fn resolve<'s>(root: &'s Value, mut node: &'s Value) -> &'s Value {
    while let Some(r) = node.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("local $ref");
        node = &root["$defs"][name];
    }
    node
}

fn is_table(root: &Value, node: &Value) -> bool {
    let node = resolve(root, node);
    node.get("properties").is_some() || node.get("oneOf").is_some() || node.get("anyOf").is_some()
}

fn walk(root: &Value, node: &Value, path: String, out: &mut BTreeSet<String>) {
    let node = resolve(root, node);
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        let mut path = path.clone();
        if let Some(tag) = props.values().find_map(|p| p.get("const")) {
            let list = path.strip_suffix("[]").expect("a tagged table in a list");
            path = format!("{list}[{}]", tag.as_str().unwrap());
        }
        for (key, prop) in props {
            if prop.get("const").is_none() {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(root, prop, sub, out);
            }
        }
        return;
    }
    if let Some(alternatives) = node
        .get("oneOf")
        .or_else(|| node.get("anyOf"))
        .and_then(Value::as_array)
    {
        let mut scalar = false;
        for alt in alternatives {
            let alt = resolve(root, alt);
            if is_table(root, alt) {
                walk(root, alt, path.clone(), out);
            } else if alt.get("type") != Some(&json!("null")) {
                scalar = true;
            }
        }
        if scalar {
            out.insert(path);
        }
        return;
    }
    if let Some(items) = node.get("items") {
        if is_table(root, items) {
            return walk(root, items, format!("{path}[]"), out);
        }
    }
    if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
        if resolve(root, values).get("properties").is_some() {
            return walk(root, values, join("*"), out);
        }
    }
    out.insert(path);
}

// ---------------------------------------------------------------------------
// Bases, loading and rendering.
// ---------------------------------------------------------------------------

/// examples/homelab.toml, with the sections it shows only in comments (a
/// webhook receiver, remote writes, scrape jobs behind TLS and a login), as
/// the JSON the loader reads.
fn server_base() -> Value {
    let example = support::parse(&std::fs::read_to_string(support::example()).unwrap());
    let mut base = serde_json::to_value(&example).unwrap();
    set(
        &mut base,
        "/alerting/receivers/2",
        json!({"type": "webhook", "name": "chat", "url_file": "/run/secrets/chat-webhook-url"}),
    );
    set(
        &mut base,
        "/alerting/receivers/3",
        json!({"type": "telegram", "name": "telegram", "chat_id": 42,
               "bot_token_file": "/run/secrets/telegram-bot-token"}),
    );
    set(
        &mut base,
        "/alerting/receivers/4",
        json!({"type": "discord", "name": "discord",
               "webhook_url_file": "/run/secrets/discord-webhook-url"}),
    );
    set(
        &mut base,
        "/alerting/receivers/5",
        json!({"type": "pushover", "name": "pushover",
               "user_key_file": "/run/secrets/pushover-user-key",
               "token_file": "/run/secrets/pushover-token"}),
    );
    set(
        &mut base,
        "/prometheus/remote_write",
        json!([
            {"name": "mimir", "url": "https://mimir.example.org/api/v1/push",
             "basic_auth": {"username": "homelab", "password_file": "/run/secrets/mimir-password"}},
            {"url": "https://vm.example.org/api/v1/write", "bearer_token_file": "/run/secrets/vm-token"}
        ]),
    );
    set(
        &mut base,
        "/prometheus/scrape_configs/3",
        json!({"job_name": "unifi", "targets": ["unifi.lan:9130"], "scheme": "https",
               "basic_auth": {"username": "prometheus", "password_file": "/run/secrets/unifi-exporter"},
               "tls_config": {"ca_file": "/etc/ssl/homelab-ca.pem", "server_name": "unifi.lan",
                              "cert_file": "/etc/ssl/prometheus.pem", "key_file": "/etc/ssl/prometheus.key"}}),
    );
    set(
        &mut base,
        "/prometheus/scrape_configs/4",
        json!({"job_name": "hass", "targets": ["127.0.0.1:8123"], "metrics_path": "/api/prometheus",
               "bearer_token_file": "/run/secrets/hass-token"}),
    );
    base
}

fn agent_base() -> Value {
    json!({
        "host": {
            "name": "pi",
            "role": "agent",
            "ship_to": {
                "prometheus_remote_write": "http://monitor.lan:9090/api/v1/write",
                "loki_push": "http://monitor.lan:3100/loki/api/v1/push",
                "otlp_grpc": "monitor.lan:4317"
            }
        },
        "services": [{"name": "app", "http": {"url": "http://127.0.0.1:8080/"}, "red": {"ports": [8080]}}]
    })
}

/// Sets the value at a JSON pointer, creating the tables (and appending the
/// list entry) on the way.
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let mut node = doc;
    let mut keys = pointer.split('/').skip(1).peekable();
    while let Some(key) = keys.next() {
        let last = keys.peek().is_none();
        node = match node {
            Value::Array(list) => {
                let i: usize = key.parse().unwrap_or_else(|_| panic!("{pointer}: {key}"));
                assert!(i <= list.len(), "{pointer}: index {i} past the end");
                if i == list.len() {
                    list.push(json!({}));
                }
                &mut list[i]
            }
            Value::Null => {
                *node = json!({});
                node.as_object_mut()
                    .unwrap()
                    .entry(key)
                    .or_insert(Value::Null)
            }
            Value::Object(table) => table.entry(key).or_insert(Value::Null),
            other => panic!("{pointer}: {key} inside {other}"),
        };
        if last {
            *node = value;
            return;
        }
    }
}

/// The config through configgen's validating loader, as the NixOS module
/// hands it over.
fn load_json(doc: &Value) -> Result<Config, String> {
    let text = serde_json::to_string_pretty(doc).unwrap();
    load::load(&Source::new("every-key.json", text, Format::Json)).map_err(|diagnostics| {
        diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// Paths whose contents differ, including files only one tree has.
fn changed(a: &Tree, b: &Tree) -> BTreeSet<String> {
    let a: BTreeMap<&str, &str> = a.files().collect();
    let b: BTreeMap<&str, &str> = b.files().collect();
    a.keys()
        .chain(b.keys())
        .filter(|p| a.get(*p) != b.get(*p))
        .map(|p| p.to_string())
        .collect()
}

fn reaches_every_target(paths: &BTreeSet<String>) -> bool {
    let shared = paths
        .iter()
        .any(|p| SHARED.iter().any(|dir| p.starts_with(dir)));
    let compose = paths.contains("compose.yaml");
    let systemd = paths.iter().any(|p| p.starts_with("systemd/"));
    shared || (compose && systemd)
}

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

#[test]
fn every_schema_key_has_a_row() {
    let leaves = schema_leaves();
    let table: BTreeSet<String> = rows().iter().map(|r| r.key.to_string()).collect();
    for (key, _) in ONE_TARGET {
        assert!(
            table.contains(*key),
            "ONE_TARGET names {key}, which has no row"
        );
    }
    let missing: Vec<&String> = leaves.difference(&table).collect();
    let unknown: Vec<&String> = table.difference(&leaves).collect();
    assert!(
        missing.is_empty(),
        "config keys without a row in tests/every_key.rs (add one that changes the key): {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "rows for keys the schema does not have: {unknown:?}"
    );
    println!("{} schema keys, each with a row", leaves.len());
}

#[test]
fn the_leaf_walk_sees_nested_lists_variants_and_maps() {
    let leaves = schema_leaves();
    for key in [
        "host.name",
        "services[].http.url",
        "services[].metrics",
        "services[].metrics.interval",
        "services[].logs.container",
        "alerting.receivers[ntfy].token_file",
        "alerting.overrides.*.for",
        "prometheus.scrape_configs[].tls_config.server_name",
        "exporters.probe.tls",
        "alloy.container_sockets",
    ] {
        assert!(leaves.contains(key), "{key} not among {leaves:?}");
    }
    assert!(!leaves.iter().any(|k| k.ends_with(".type")), "{leaves:?}");
    assert!(
        !leaves.contains("services"),
        "a list of tables is not a leaf"
    );
}

#[test]
fn a_change_on_one_target_alone_does_not_count() {
    let paths = |list: &[&str]| list.iter().map(|p| p.to_string()).collect::<BTreeSet<_>>();
    assert!(!reaches_every_target(&paths(&["compose.yaml"])));
    assert!(!reaches_every_target(&paths(&[
        "systemd/prometheus.service.d/homelab-observability.conf"
    ])));
    assert!(reaches_every_target(&paths(&[
        "compose.yaml",
        "systemd/prometheus.service.d/homelab-observability.conf"
    ])));
    assert!(reaches_every_target(&paths(&["alloy/config.alloy"])));
}

#[test]
fn every_key_takes_effect_on_every_target() {
    let bases = BTreeMap::from([(Base::Server, server_base()), (Base::Agent, agent_base())]);
    let rows = rows();
    let mut keys = BTreeSet::new();
    // Rendered bases, by their JSON (most rows share one).
    let mut base_trees: BTreeMap<String, (Config, Tree)> = BTreeMap::new();
    let mut failures = Vec::new();
    let (mut everywhere, mut refused, mut only) = (0, 0, Vec::new());
    for row in &rows {
        assert!(keys.insert(row.key), "two rows for {}", row.key);
        let mut before = bases[&row.base].clone();
        for (at, value) in &row.given {
            set(&mut before, at, value.clone());
        }
        let mut after = before.clone();
        for (at, value) in &row.set {
            set(&mut after, at, value.clone());
        }
        let (base_cfg, base_tree) = base_trees.entry(before.to_string()).or_insert_with(|| {
            let cfg = load_json(&before)
                .unwrap_or_else(|e| panic!("{}: the base is refused:\n{e}", row.key));
            let tree = support::render(&cfg);
            (cfg, tree)
        });
        let loaded = load_json(&after);
        match (&row.expect, loaded) {
            (Expect::Refused(needle), Err(message)) => {
                if message.contains(needle) {
                    refused += 1;
                } else {
                    failures.push(format!(
                        "{}: refused, but the error does not say `{needle}`:\n{message}",
                        row.key
                    ));
                }
            }
            (Expect::Refused(_), Ok(_)) => {
                failures.push(format!("{}: expected a refusal, but it loads", row.key))
            }
            (_, Err(message)) => failures.push(format!(
                "{}: the changed config is refused:\n{message}",
                row.key
            )),
            (Expect::Rendered, Ok(cfg)) => {
                if cfg == *base_cfg {
                    failures.push(format!(
                        "{}: the row does not change the loaded config",
                        row.key
                    ));
                    continue;
                }
                let paths = changed(base_tree, &support::render(&cfg));
                let one_target = ONE_TARGET.iter().find(|(key, _)| *key == row.key);
                match one_target {
                    _ if paths.is_empty() => failures.push(format!(
                        "{}: changes nothing in the rendered tree",
                        row.key
                    )),
                    None if reaches_every_target(&paths) => everywhere += 1,
                    None => failures.push(format!(
                        "{}: reaches only {paths:?}: no shared file, and not both compose.yaml and systemd/",
                        row.key
                    )),
                    Some(_) if reaches_every_target(&paths) => failures.push(format!(
                        "{}: in ONE_TARGET, but it reaches every target ({paths:?}): remove it there",
                        row.key
                    )),
                    Some((_, why)) => only.push(format!("{}: changes {paths:?}: {why}", row.key)),
                }
            }
        }
    }
    println!(
        "{} rows: {everywhere} reach every target, {refused} refused with a clear error, {} on one target by design:",
        rows.len(),
        only.len()
    );
    for line in &only {
        println!("  {line}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} config keys fail:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
