//! Semantic checks the types cannot express: names, URLs, addresses,
//! durations, references between sections, secrets, listener clashes.
//! Every problem is reported (not just the first), each with its field path.

mod formats;
mod grafana;
mod listeners;
mod scrape;

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::alerts::Severity;
use crate::diagnostic::ConfigIssue;
use crate::model::*;
use formats::{check_host_port, check_sweep_cidr, is_host_name};
pub use formats::{is_label_name, is_plain_name, parse_duration_ms};

/// DNS record types blackbox_exporter is commonly asked for.
const RECORD_TYPES: [&str; 10] = [
    "A", "AAAA", "CAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT",
];

/// Every issue with `cfg`, including the alert catalogue's checks of overrides.
pub fn validate(cfg: &Config) -> Vec<ConfigIssue> {
    let mut c = Checker::default();
    c.host_section(&cfg.host);
    c.services(&cfg.services);
    c.traces(cfg);
    c.network(&cfg.network);
    c.prometheus(&cfg.prometheus);
    c.scrape_jobs(cfg);
    c.alerting(&cfg.alerting, &cfg.alertmanager);
    c.storage(cfg);
    c.grafana(&cfg.grafana);
    c.listeners(cfg);
    c.issues.extend(crate::alerts::check_overrides(cfg));
    c.issues
}

#[derive(Default)]
struct Checker {
    issues: Vec<ConfigIssue>,
}

impl Checker {
    fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(ConfigIssue::new(path, message));
    }

    fn host_section(&mut self, host: &Host) {
        if host.name.trim().is_empty() {
            self.issue("host.name", "must not be empty");
        }
        self.labels("host.labels", &host.labels, &["host"]);
        match (&host.role, &host.ship_to) {
            (Role::Agent, None) => self.issue(
                "host.role",
                "role = \"agent\" needs host.ship_to (where to send metrics, logs and traces)",
            ),
            (_, Some(ship)) => {
                self.http_url(
                    "host.ship_to.prometheus_remote_write",
                    &ship.prometheus_remote_write,
                );
                self.http_url("host.ship_to.loki_push", &ship.loki_push);
                if let Some(otlp) = &ship.otlp_grpc {
                    self.host_port("host.ship_to.otlp_grpc", otlp);
                }
            }
            (Role::Server, None) => {}
        }
    }

    /// `traces = true` (globally or for a service) needs somewhere to send the spans.
    fn traces(&mut self, cfg: &Config) {
        if crate::plan::has_trace_destination(cfg) {
            return;
        }
        let why = match cfg.host.role {
            Role::Server => {
                "spans need a trace destination: Tempo (tempo.enable) and Alloy (alloy.enable)"
            }
            Role::Agent => {
                "spans need a trace destination: host.ship_to.otlp_grpc and Alloy (alloy.enable)"
            }
        };
        if cfg.exporters.probe.traces == Some(true) {
            self.issue("exporters.probe.traces", why);
        }
        for (i, s) in cfg.services.iter().enumerate() {
            if s.red.as_ref().is_some_and(|r| r.traces == Some(true)) {
                self.issue(format!("services[{i}].red.traces"), why);
            }
        }
    }

    fn services(&mut self, services: &[Service]) {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, s) in services.iter().enumerate() {
            let at = |field: &str| format!("services[{i}].{field}");
            if s.name.is_empty() {
                self.issue(at("name"), "must not be empty");
            } else if !is_plain_name(&s.name) {
                self.issue(
                    at("name"),
                    format!("`{}` may only contain letters, digits, '-' and '_'", s.name),
                );
            }
            if let Some(first) = seen.insert(&s.name, i) {
                seen.insert(&s.name, first);
                self.issue(
                    at("name"),
                    format!(
                        "duplicate service name `{}` (first used by services[{first}])",
                        s.name
                    ),
                );
            }
            if let Some(interval) = &s.interval {
                self.duration(&at("interval"), interval, false);
            }
            self.labels(
                &at("labels"),
                &s.labels,
                &["service", "instance", "job", "host"],
            );
            if let Some(http) = &s.http {
                self.http_check(&at("http"), http);
            }
            if let Some(tcp) = &s.tcp {
                self.host_port(&at("tcp"), tcp);
            }
            if let Some(icmp) = &s.icmp {
                self.host(&at("icmp"), icmp);
            }
            if let Some(dns) = &s.dns {
                self.dns(&at("dns"), dns);
            }
            if let Some(red) = &s.red {
                if red.ports.is_empty()
                    && red.unit.is_none()
                    && red.container.is_none()
                    && red.client_ports.is_empty()
                {
                    self.issue(
                        at("red"),
                        "say what to watch: ports, unit, container or client_ports",
                    );
                }
                for (j, port) in red.ports.iter().enumerate() {
                    self.port(&at(&format!("red.ports[{j}]")), *port);
                }
                for (j, port) in red.client_ports.iter().enumerate() {
                    self.port(&at(&format!("red.client_ports[{j}]")), *port);
                }
                for (field, name) in [("unit", &red.unit), ("container", &red.container)] {
                    if let Some(name) = name {
                        if name.trim().is_empty() {
                            self.issue(at(&format!("red.{field}")), "must not be empty");
                        } else if name.contains('/') {
                            self.issue(
                                at(&format!("red.{field}")),
                                format!("`{name}` is not a {field} name"),
                            );
                        }
                    }
                }
                for (j, route) in red.routes.iter().enumerate() {
                    if !route.starts_with('/') {
                        self.issue(
                            at(&format!("red.routes[{j}]")),
                            format!("route template `{route}` must start with '/'"),
                        );
                    }
                }
            }
            match &s.logs {
                Some(LogSource::Unit(name)) if name.trim().is_empty() => {
                    self.issue(at("logs.unit"), "must not be empty")
                }
                Some(LogSource::Container(name)) if name.trim().is_empty() => {
                    self.issue(at("logs.container"), "must not be empty")
                }
                _ => {}
            }
        }
    }

    fn http_check(&mut self, path: &str, http: &HttpCheck) {
        let url = self.http_url(&format!("{path}.url"), &http.url);
        for (j, code) in http.valid_status_codes.iter().enumerate() {
            if !(100..=599).contains(code) {
                self.issue(
                    format!("{path}.valid_status_codes[{j}]"),
                    format!("{code} is not an HTTP status code (100-599)"),
                );
            }
        }
        if http.tls_expiry == Some(true) && url.is_some_and(|u| u.scheme() != "https") {
            self.issue(
                format!("{path}.tls_expiry"),
                "TLS expiry can only be watched on an https:// URL",
            );
        }
    }

    fn dns(&mut self, path: &str, dns: &DnsCheck) {
        let server = &dns.server;
        if server.starts_with('[') || server.matches(':').count() == 1 {
            self.host_port(&format!("{path}.server"), server);
        } else {
            self.host(&format!("{path}.server"), server);
        }
        if !is_host_name(dns.query.trim_end_matches('.')) {
            self.issue(
                format!("{path}.query"),
                format!("`{}` is not a valid DNS name", dns.query),
            );
        }
        if !RECORD_TYPES.contains(&dns.record_type.as_str()) {
            self.issue(
                format!("{path}.record_type"),
                format!(
                    "unknown record type `{}`; expected one of {}",
                    dns.record_type,
                    RECORD_TYPES.join(", ")
                ),
            );
        }
    }

    fn network(&mut self, net: &Network) {
        if let Some(gateway) = &net.gateway {
            self.host("network.gateway", gateway);
        }
        for (i, r) in net.resolvers.iter().enumerate() {
            self.host(&format!("network.resolvers[{i}]"), r);
        }
        if let Some(sweep) = &net.lan_sweep {
            if let Err(message) = check_sweep_cidr(&sweep.cidr) {
                self.issue("network.lan_sweep.cidr", message);
            }
            self.duration("network.lan_sweep.interval", &sweep.interval, false);
        }
    }

    fn prometheus(&mut self, p: &Prometheus) {
        self.duration("prometheus.scrape_interval", &p.scrape_interval, false);
        self.duration(
            "prometheus.evaluation_interval",
            &p.evaluation_interval,
            false,
        );
        self.duration("prometheus.retention", &p.retention, false);
        for (i, rw) in p.remote_write.iter().enumerate() {
            let at = |field: &str| format!("prometheus.remote_write[{i}].{field}");
            self.http_url(&at("url"), &rw.url);
            if let Some(auth) = &rw.basic_auth {
                if auth.username.is_empty() {
                    self.issue(at("basic_auth.username"), "must not be empty");
                }
                self.secret_file(&at("basic_auth.password_file"), &auth.password_file);
                if rw.bearer_token_file.is_some() {
                    self.issue(
                        at("bearer_token_file"),
                        "use either basic_auth or bearer_token_file, not both",
                    );
                }
            }
            if let Some(file) = &rw.bearer_token_file {
                self.secret_file(&at("bearer_token_file"), file);
            }
        }
    }

    fn alerting(&mut self, a: &Alerting, am: &Alertmanager) {
        let minor = self.alertmanager_minor(am);
        // url_file came with 0.26. For ntfy it also carries the templates in
        // http_config.http_headers, known from the pinned release's docs.
        let url_files = url_file_support(minor, 26, "has no url_file (added in 0.26)");
        let ntfy_url_files = url_file_support(
            minor,
            34,
            "is older than the pinned 0.34, whose http_headers carry ntfy's templates when the URL is in a file",
        );
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, r) in a.receivers.iter().enumerate() {
            let at = |field: &str| format!("alerting.receivers[{i}].{field}");
            if r.name().trim().is_empty() {
                self.issue(at("name"), "must not be empty");
            }
            if let Some(first) = names.insert(r.name(), i) {
                names.insert(r.name(), first);
                self.issue(
                    at("name"),
                    format!(
                        "duplicate receiver name `{}` (first used by alerting.receivers[{first}])",
                        r.name()
                    ),
                );
            }
            match r {
                Receiver::Email(e) => {
                    for (field, addr) in [("to", &e.to), ("from", &e.from)] {
                        if !addr.contains('@') {
                            self.issue(at(field), format!("`{addr}` is not an email address"));
                        }
                    }
                    self.host_port(&at("smarthost"), &e.smarthost);
                    if let Some(file) = &e.password_file {
                        self.secret_file(&at("password_file"), file);
                    }
                }
                Receiver::Webhook(w) => {
                    self.url_or_file(&at(""), "url", &w.url, &w.url_file, &url_files);
                }
                Receiver::Ntfy(n) => {
                    self.url_or_file(&at(""), "url", &n.url, &n.url_file, &ntfy_url_files);
                    if let Some(file) = &n.token_file {
                        self.secret_file(&at("token_file"), file);
                    }
                }
                Receiver::Telegram(t) => {
                    self.credential_file(
                        &at("bot_token_file"),
                        &t.bot_token_file,
                        minor,
                        26,
                        "telegram",
                    );
                    if t.chat_id == 0 {
                        self.issue(
                            at("chat_id"),
                            "must not be 0: the chat's id, e.g. from @userinfobot",
                        );
                    }
                }
                Receiver::Discord(d) => {
                    self.credential_file(
                        &at("webhook_url_file"),
                        &d.webhook_url_file,
                        minor,
                        27,
                        "discord",
                    );
                }
                Receiver::Pushover(p) => {
                    self.credential_file(
                        &at("user_key_file"),
                        &p.user_key_file,
                        minor,
                        26,
                        "pushover",
                    );
                    self.credential_file(&at("token_file"), &p.token_file, minor, 26, "pushover");
                }
            }
        }
        let known = |c: &mut Checker, path: String, name: &str| {
            if !names.contains_key(name) {
                c.issue(path, format!("unknown receiver `{name}`"));
            }
        };
        // The keys of `alerting.routes`: the severities an alert can carry.
        let severities = Severity::CHOOSABLE.map(Severity::as_str);
        for (severity, receivers) in &a.routes {
            if !severities.contains(&severity.as_str()) {
                self.issue(
                    format!("alerting.routes.{severity}"),
                    format!(
                        "unknown severity `{severity}`; expected one of {}",
                        severities.join(", ")
                    ),
                );
            }
            for (i, name) in receivers.iter().enumerate() {
                known(self, format!("alerting.routes.{severity}[{i}]"), name);
            }
        }
        for (i, name) in a.default_receivers.iter().enumerate() {
            known(self, format!("alerting.default_receivers[{i}]"), name);
        }
        if let Some(url) = &a.external_url {
            self.external_url("alerting.external_url", url);
        }
        for (i, label) in a.group_by.iter().enumerate() {
            if label != "..." && !is_label_name(label) {
                self.issue(
                    format!("alerting.group_by[{i}]"),
                    format!("`{label}` is not a valid label name"),
                );
            }
        }
        self.duration("alerting.group_wait", &a.group_wait, true);
        self.duration("alerting.group_interval", &a.group_interval, false);
        self.duration("alerting.repeat_interval", &a.repeat_interval, false);
        // Optional, unlike a receiver's URL: no heartbeat is fine.
        if a.watchdog_url.is_some() || a.watchdog_url_file.is_some() {
            self.url_or_file(
                "alerting.",
                "watchdog_url",
                &a.watchdog_url,
                &a.watchdog_url_file,
                &url_files,
            );
        }
        for (i, file) in a.extra_rule_files.iter().enumerate() {
            self.absolute(&format!("alerting.extra_rule_files[{i}]"), file);
        }
        for (timer, age) in &a.timer_max_age {
            let path = format!("alerting.timer_max_age[{timer}]");
            let unit_name = timer.strip_suffix(".timer").is_some_and(|stem| {
                !stem.is_empty()
                    && stem
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "@._:-".contains(c))
            });
            if !unit_name {
                self.issue(
                    &path,
                    format!("`{timer}` is not a timer unit name (e.g. restic-backup.timer)"),
                );
            }
            self.duration(&path, age, false);
        }
        for (name, o) in &a.overrides {
            if let Some(for_) = &o.for_ {
                self.duration(&format!("alerting.overrides.{name}.for"), for_, true);
            }
        }
    }

    /// The minor version of `alertmanager.version` ("0.MINOR"). An unreadable
    /// version is reported, and then treated as recent enough.
    fn alertmanager_minor(&mut self, am: &Alertmanager) -> Option<u32> {
        let minor = am
            .version
            .strip_prefix("0.")
            .and_then(|rest| rest.split('.').next())
            .and_then(|m| m.parse::<u32>().ok());
        if minor.is_none() {
            self.issue(
                "alertmanager.version",
                format!(
                    "`{}` is not an Alertmanager release such as 0.25 or 0.34",
                    am.version
                ),
            );
        }
        minor
    }

    /// A URL given either inline (`{prefix}{field}`) or by file
    /// (`{prefix}{field}_file`), exactly one of them. An inline URL must not
    /// carry credentials: they would sit in a rendered file.
    fn url_or_file(
        &mut self,
        prefix: &str,
        field: &str,
        url: &Option<String>,
        file: &Option<String>,
        url_files: &Result<(), String>,
    ) {
        let url_path = format!("{prefix}{field}");
        let file_path = format!("{url_path}_file");
        match (url, file) {
            (Some(_), Some(_)) => self.issue(
                file_path,
                format!("set either {field} or {field}_file, not both"),
            ),
            (None, None) => self.issue(url_path, format!("missing: set {field} or {field}_file")),
            (Some(url), None) => {
                if let Some(u) = self.http_url(&url_path, url) {
                    if let Some(what) = credentials_in(&u) {
                        self.issue(
                            url_path,
                            format!("this URL carries {what}, which would be written into alertmanager.yml; put the URL in a file and name it in {field}_file"),
                        );
                    }
                }
            }
            (None, Some(file)) => {
                self.secret_file(&file_path, file);
                if let Err(message) = url_files {
                    self.issue(file_path, message.clone());
                }
            }
        }
    }

    /// A receiver credential that Alertmanager reads from a file only since
    /// 0.`needs`: these receivers have no inline form in configgen.
    fn credential_file(
        &mut self,
        path: &str,
        file: &str,
        minor: Option<u32>,
        needs: u32,
        kind: &str,
    ) {
        self.secret_file(path, file);
        if let Some(m) = minor.filter(|&m| m < needs) {
            let field = path.rsplit('.').next().unwrap_or(path);
            self.issue(
                path,
                format!(
                    "Alertmanager 0.{m} has no {kind} {field} (added in 0.{needs}), and configgen takes {kind} credentials only from files; run the pinned image ({}) or send through ntfy or a webhook (docs/secrets.md)",
                    crate::runtime::release::ALERTMANAGER_VERSION
                ),
            );
        }
    }

    fn storage(&mut self, cfg: &Config) {
        self.duration("loki.retention", &cfg.loki.retention, false);
        self.absolute("loki.data_dir", &cfg.loki.data_dir);
        self.duration("tempo.retention", &cfg.tempo.retention, false);
        self.absolute("tempo.data_dir", &cfg.tempo.data_dir);
        for (i, socket) in cfg.alloy.container_sockets.iter().enumerate() {
            self.absolute(&format!("alloy.container_sockets[{i}]"), socket);
        }
        for (i, f) in cfg.alloy.log_files.iter().enumerate() {
            if f.job.trim().is_empty() {
                self.issue(format!("alloy.log_files[{i}].job"), "must not be empty");
            } else if !is_plain_name(&f.job) {
                self.issue(
                    format!("alloy.log_files[{i}].job"),
                    format!("`{}` may only contain letters, digits, '-' and '_'", f.job),
                );
            }
            self.absolute(&format!("alloy.log_files[{i}].path"), &f.path);
        }
        self.absolute("grafana.dashboards_dir", &cfg.grafana.dashboards_dir);
        for (field, dir) in [
            ("deploy.config_dir", &cfg.deploy.config_dir),
            ("prometheus.data_dir", &cfg.prometheus.data_dir),
            ("alertmanager.data_dir", &cfg.alertmanager.data_dir),
            ("alloy.data_dir", &cfg.alloy.data_dir),
            ("grafana.data_dir", &cfg.grafana.data_dir),
        ] {
            self.absolute(field, dir);
        }
        for (i, c) in cfg.exporters.node.collectors.iter().enumerate() {
            if c.is_empty()
                || !c
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                self.issue(
                    format!("exporters.node.collectors[{i}]"),
                    format!("`{c}` is not a node_exporter collector name"),
                );
            }
        }
    }

    /// Scheme and host only: each daemon's port is added to it.
    fn external_url(&mut self, path: &str, url: &str) {
        let Some(u) = self.http_url(path, url) else {
            return;
        };
        if u.port().is_some() || u.path() != "/" || u.query().is_some() {
            self.issue(
                path,
                format!(
                    "`{url}` must be scheme and host only (e.g. http://monitor.lan): \
                     each daemon's port is added to it"
                ),
            );
        }
    }

    fn port(&mut self, path: &str, port: u16) {
        if port == 0 {
            self.issue(path, "port 0 is not a usable port");
        }
    }

    fn labels(&mut self, path: &str, labels: &BTreeMap<String, String>, reserved: &[&str]) {
        for name in labels.keys() {
            let at = format!("{path}.{name}");
            if !is_label_name(name) {
                self.issue(
                    at,
                    format!("`{name}` is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)"),
                );
            } else if name.starts_with("__") {
                self.issue(
                    at,
                    format!("label names starting with `__` are reserved (`{name}`)"),
                );
            } else if reserved.contains(&name.as_str()) {
                self.issue(
                    at,
                    format!("label `{name}` is set by configgen and cannot be overridden here"),
                );
            }
        }
    }

    fn duration(&mut self, path: &str, value: &str, allow_zero: bool) {
        match parse_duration_ms(value) {
            None => self.issue(
                path,
                format!("`{value}` is not a Prometheus duration (e.g. 30s, 5m, 1h30m, 14d)"),
            ),
            Some(0) if !allow_zero => self.issue(path, "must be longer than 0"),
            Some(_) => {}
        }
    }

    fn http_url(&mut self, path: &str, value: &str) -> Option<url::Url> {
        match url::Url::parse(value) {
            Err(e) => {
                self.issue(path, format!("`{value}` is not a valid URL: {e}"));
                None
            }
            Ok(u) if u.scheme() != "http" && u.scheme() != "https" => {
                self.issue(
                    path,
                    format!("URL scheme must be http or https, not `{}`", u.scheme()),
                );
                None
            }
            Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                self.issue(path, format!("`{value}` has no host"));
                None
            }
            Ok(u) => Some(u),
        }
    }

    fn host_port(&mut self, path: &str, value: &str) {
        if let Err(message) = check_host_port(value) {
            self.issue(path, message);
        }
    }

    fn host(&mut self, path: &str, value: &str) {
        if value.parse::<IpAddr>().is_err() && !is_host_name(value) {
            self.issue(path, format!("`{value}` is not a host name or IP address"));
        }
    }

    fn absolute(&mut self, path: &str, value: &str) {
        if !value.starts_with('/') {
            self.issue(path, format!("`{value}` must be an absolute path"));
        }
    }

    /// Secrets are read at run time from a file; the file must not be in the
    /// world-readable Nix store, and a relative path would depend on the daemon's cwd.
    fn secret_file(&mut self, path: &str, value: &str) {
        if !value.starts_with('/') {
            self.issue(
                path,
                format!("secret file `{value}` must be an absolute path"),
            );
        } else if value.starts_with("/nix/store/") {
            self.issue(
                path,
                format!("secret file `{value}` is in the world-readable Nix store; use e.g. /run/secrets/"),
            );
        }
    }
}

/// What in an inline URL is a credential: a user or password, or a query
/// parameter named like a token. (A secret path segment cannot be told apart
/// from an ordinary one; docs/secrets.md asks for url_file there.)
fn credentials_in(url: &url::Url) -> Option<String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Some("a user name or password".into());
    }
    const SECRET_WORDS: [&str; 7] = ["token", "key", "secret", "pass", "auth", "sig", "cred"];
    url.query_pairs().find_map(|(name, _)| {
        let lower = name.to_lowercase();
        SECRET_WORDS
            .iter()
            .any(|w| lower.contains(w))
            .then(|| format!("the query parameter `{name}`"))
    })
}

/// Ok when an Alertmanager of minor version `minor` is at least 0.`needs`;
/// else the error for a `*_url_file` field, with `why`.
fn url_file_support(minor: Option<u32>, needs: u32, why: &str) -> Result<(), String> {
    match minor {
        Some(m) if m < needs => Err(format!(
            "Alertmanager 0.{m} {why}; run the pinned image ({}) or write the URL inline if it carries no secret (docs/secrets.md)",
            crate::runtime::release::ALERTMANAGER_VERSION
        )),
        _ => Ok(()),
    }
}
