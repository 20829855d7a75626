//! Semantic checks the types cannot express: names, URLs, addresses,
//! durations, references between sections, secrets, listener clashes.
//! Every problem is reported (not just the first), each with its field path.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::diagnostic::ConfigIssue;
use crate::model::*;

/// Severities an alert can carry, and so the keys `alerting.routes` accepts.
pub const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];

/// DNS record types blackbox_exporter is commonly asked for.
const RECORD_TYPES: [&str; 10] = [
    "A", "AAAA", "CAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT",
];

/// Largest LAN sweep: a /22 is 1,024 addresses.
const MAX_SWEEP_PREFIX: u8 = 22;

/// Every issue with `cfg`, including the alert catalogue's checks of overrides.
pub fn validate(cfg: &Config) -> Vec<ConfigIssue> {
    let mut c = Checker::default();
    c.host_section(&cfg.host);
    c.services(&cfg.services);
    c.network(&cfg.network);
    c.prometheus(&cfg.prometheus);
    c.alerting(&cfg.alerting);
    c.storage(cfg);
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

    fn services(&mut self, services: &[Service]) {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, s) in services.iter().enumerate() {
            let at = |field: &str| format!("services[{i}].{field}");
            if s.name.is_empty() {
                self.issue(at("name"), "must not be empty");
            } else if !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
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
                if red.ports.is_empty() {
                    self.issue(
                        at("red.ports"),
                        "list the local ports the service listens on",
                    );
                }
                for (j, port) in red.ports.iter().enumerate() {
                    self.port(&at(&format!("red.ports[{j}]")), *port);
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

    fn alerting(&mut self, a: &Alerting) {
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
                    self.http_url(&at("url"), &w.url);
                }
                Receiver::Ntfy(n) => {
                    self.http_url(&at("url"), &n.url);
                    if let Some(file) = &n.token_file {
                        self.secret_file(&at("token_file"), file);
                    }
                }
            }
        }
        let known = |c: &mut Checker, path: String, name: &str| {
            if !names.contains_key(name) {
                c.issue(path, format!("unknown receiver `{name}`"));
            }
        };
        for (severity, receivers) in &a.routes {
            if !SEVERITIES.contains(&severity.as_str()) {
                self.issue(
                    format!("alerting.routes.{severity}"),
                    format!(
                        "unknown severity `{severity}`; expected one of {}",
                        SEVERITIES.join(", ")
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
        if let Some(url) = &a.watchdog_url {
            self.http_url("alerting.watchdog_url", url);
        }
        for (i, file) in a.extra_rule_files.iter().enumerate() {
            self.absolute(&format!("alerting.extra_rule_files[{i}]"), file);
        }
        for (name, o) in &a.overrides {
            if let Some(for_) = &o.for_ {
                self.duration(&format!("alerting.overrides.{name}.for"), for_, true);
            }
        }
    }

    fn storage(&mut self, cfg: &Config) {
        self.duration("loki.retention", &cfg.loki.retention, false);
        self.absolute("loki.data_dir", &cfg.loki.data_dir);
        self.duration("tempo.retention", &cfg.tempo.retention, false);
        self.absolute("tempo.data_dir", &cfg.tempo.data_dir);
        if let Some(socket) = &cfg.alloy.container_socket {
            self.absolute("alloy.container_socket", socket);
        }
        for (i, f) in cfg.alloy.log_files.iter().enumerate() {
            if f.job.trim().is_empty() {
                self.issue(format!("alloy.log_files[{i}].job"), "must not be empty");
            }
            self.absolute(&format!("alloy.log_files[{i}].path"), &f.path);
        }
        self.absolute("grafana.dashboards_dir", &cfg.grafana.dashboards_dir);
        if let Some(file) = &cfg.grafana.admin_password_file {
            self.secret_file("grafana.admin_password_file", file);
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

    /// Port 0, unparsable addresses, and two daemons on one address and port.
    /// A clash is reported on the listener the user changed from its default,
    /// since that is the line to fix.
    fn listeners(&mut self, cfg: &Config) {
        let defaults = listeners(&Config::default());
        let mut taken: Vec<(ListenerRef, IpAddr, bool)> = Vec::new();
        for (l, default) in listeners(cfg).into_iter().zip(defaults) {
            self.port(&l.port_path, l.port);
            let Ok(addr) = l.address.parse::<IpAddr>() else {
                self.issue(
                    l.address_path.clone(),
                    format!(
                        "`{}` is not an IP address (e.g. 127.0.0.1, or 0.0.0.0 for all interfaces)",
                        l.address
                    ),
                );
                continue;
            };
            if !l.enabled || l.port == 0 {
                continue;
            }
            let customized = l.port != default.port || l.address != default.address;
            let clash = taken.iter().find(|(other, other_addr, _)| {
                other.port == l.port
                    && (*other_addr == addr || other_addr.is_unspecified() || addr.is_unspecified())
            });
            match clash {
                Some((other, other_addr, other_customized)) => {
                    let (blamed, blamed_addr, holder, holder_addr) =
                        if customized || !other_customized {
                            (&l, addr, other, *other_addr)
                        } else {
                            (other, *other_addr, &l, addr)
                        };
                    self.issue(
                        blamed.port_path.clone(),
                        format!(
                            "{blamed_addr}:{} is already taken by {} ({holder_addr}:{})",
                            blamed.port, holder.port_path, holder.port
                        ),
                    );
                }
                None => taken.push((l, addr, customized)),
            }
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

struct ListenerRef {
    port_path: String,
    address_path: String,
    address: String,
    port: u16,
    enabled: bool,
}

/// Every daemon address:port of the stack, with whether it runs on this host.
fn listeners(cfg: &Config) -> Vec<ListenerRef> {
    let server = cfg.host.role == Role::Server;
    let mut out = Vec::new();
    let mut add = |section: &str, port_field: &str, address: &str, port: u16, enabled: bool| {
        out.push(ListenerRef {
            port_path: format!("{section}.{port_field}"),
            address_path: format!("{section}.listen_address"),
            address: address.to_string(),
            port,
            enabled,
        })
    };
    let e = &cfg.exporters;
    add(
        "exporters.node",
        "port",
        &e.node.listen_address,
        e.node.port,
        e.node.enable,
    );
    for (name, l) in [
        ("blackbox", &e.blackbox),
        ("cadvisor", &e.cadvisor),
        ("probe", &e.probe),
    ] {
        add(
            &format!("exporters.{name}"),
            "port",
            &l.listen_address,
            l.port,
            l.enable,
        );
    }
    let (p, am) = (&cfg.prometheus, &cfg.alertmanager);
    add("prometheus", "port", &p.listen_address, p.port, server);
    add("alertmanager", "port", &am.listen_address, am.port, server);
    let loki = &cfg.loki;
    add(
        "loki",
        "port",
        &loki.listen_address,
        loki.port,
        server && loki.enable,
    );
    add(
        "loki",
        "grpc_port",
        &loki.listen_address,
        loki.grpc_port,
        server && loki.enable,
    );
    let alloy = &cfg.alloy;
    add(
        "alloy",
        "port",
        &alloy.listen_address,
        alloy.port,
        alloy.enable,
    );
    add(
        "alloy",
        "otlp_grpc_port",
        &alloy.listen_address,
        alloy.otlp_grpc_port,
        alloy.enable,
    );
    add(
        "alloy",
        "otlp_http_port",
        &alloy.listen_address,
        alloy.otlp_http_port,
        alloy.enable,
    );
    let tempo = &cfg.tempo;
    add(
        "tempo",
        "port",
        &tempo.listen_address,
        tempo.port,
        server && tempo.enable,
    );
    add(
        "tempo",
        "otlp_grpc_port",
        &tempo.listen_address,
        tempo.otlp_grpc_port,
        server && tempo.enable,
    );
    let g = &cfg.grafana;
    add(
        "grafana",
        "port",
        &g.listen_address,
        g.port,
        server && g.enable,
    );
    out
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Milliseconds of a Prometheus duration (`1h30m`, `14d`, `500ms`, `0`): units
/// y w d h m s ms, each at most once and in that order. None if malformed.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut next_unit = 0;
    let mut total: u64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = if rest.starts_with("ms") {
            "ms"
        } else {
            rest.get(..1)?
        };
        let i = UNITS.iter().position(|(u, _)| *u == unit)?;
        if i < next_unit {
            return None;
        }
        next_unit = i + 1;
        total = total.checked_add(n.checked_mul(UNITS[i].1)?)?;
        rest = &rest[unit.len()..];
    }
    Some(total)
}

/// An IPv4 range of at most /22 written as its network address.
fn check_sweep_cidr(cidr: &str) -> Result<(), String> {
    let bad = || format!("`{cidr}` is not an IPv4 CIDR such as 192.168.1.0/24");
    let (addr, prefix) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(bad)?;
    if prefix < MAX_SWEEP_PREFIX {
        return Err(format!(
            "/{prefix} has {} addresses; a LAN sweep covers at most /{MAX_SWEEP_PREFIX} (1,024 addresses)",
            1u64 << (32 - prefix)
        ));
    }
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    let network = Ipv4Addr::from(u32::from(addr) & mask);
    if network != addr {
        return Err(format!(
            "`{cidr}` has host bits set; did you mean {network}/{prefix}?"
        ));
    }
    Ok(())
}

/// `host:port` or `[v6]:port` with a port in 1..=65535.
fn check_host_port(value: &str) -> Result<(), String> {
    let bad = || format!("`{value}` is not host:port (e.g. 192.168.1.20:445 or [fd00::1]:445)");
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (v6, port) = rest.split_once("]:").ok_or_else(bad)?;
        v6.parse::<Ipv6Addr>().map_err(|_| bad())?;
        (None, port)
    } else {
        let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
        if host.contains(':') {
            return Err(format!(
                "`{value}`: write IPv6 addresses in brackets, e.g. [fd00::1]:445"
            ));
        }
        (Some(host), port)
    };
    if let Some(host) = host {
        if host.parse::<Ipv4Addr>().is_err() && !is_host_name(host) {
            return Err(format!(
                "`{host}` in `{value}` is not a host name or IP address"
            ));
        }
    }
    match port.parse::<u16>() {
        Ok(0) => Err(format!("`{value}`: port 0 is not a usable port")),
        Ok(_) => Ok(()),
        Err(_) => Err(format!("`{port}` in `{value}` is not a port (1-65535)")),
    }
}

/// A DNS host name: dot-separated labels of letters, digits, '-' and '_'.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, ms) in [
            ("30s", 30_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("0", 0),
            ("1y2w", 0),
        ] {
            let parsed = parse_duration_ms(text);
            assert!(parsed.is_some(), "{text}");
            if ms != 0 {
                assert_eq!(parsed, Some(ms), "{text}");
            }
        }
        for text in [
            "",
            "30",
            "s",
            "1m1h",
            "1.5h",
            "1hh",
            "5 m",
            "-1s",
            "1d1d",
            "99999999999999999999y",
        ] {
            assert_eq!(parse_duration_ms(text), None, "{text}");
        }
    }

    #[test]
    fn host_ports() {
        for ok in [
            "192.168.1.20:445",
            "nas.lan:22",
            "[fd00::1]:53",
            "smtp.example.org:587",
        ] {
            assert_eq!(check_host_port(ok), Ok(()), "{ok}");
        }
        for bad in [
            "nas",
            "nas:0",
            "nas:http",
            ":80",
            "fd00::1:53",
            "[fd00::1]",
            "a b:1",
            "nas:65536",
        ] {
            assert!(check_host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sweep_cidrs() {
        assert_eq!(check_sweep_cidr("192.168.1.0/24"), Ok(()));
        assert_eq!(check_sweep_cidr("10.0.0.0/22"), Ok(()));
        assert!(check_sweep_cidr("10.0.0.0/21")
            .unwrap_err()
            .contains("2048 addresses"));
        assert!(check_sweep_cidr("192.168.1.7/24")
            .unwrap_err()
            .contains("192.168.1.0/24"));
        assert!(check_sweep_cidr("192.168.1.0").is_err());
        assert!(check_sweep_cidr("fd00::/120").is_err());
        assert!(check_sweep_cidr("10.0.0.0/33").is_err());
    }

    #[test]
    fn label_names() {
        assert!(is_label_name("site"));
        assert!(is_label_name("_x1"));
        assert!(!is_label_name("1x"));
        assert!(!is_label_name("a-b"));
        assert!(!is_label_name(""));
    }
}
