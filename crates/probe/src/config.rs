//! What to watch: the TOML config file (format in the team contract) merged with flags.

use std::{
    fmt,
    net::{SocketAddr, ToSocketAddrs},
    path::{Path, PathBuf},
};

use serde::Deserialize;

pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// One watch rule. Exactly one of ports / client_ports / unit / container selects
/// the traffic; `service` names it (else the unit, container or process name is used).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    pub service: Option<String>,
    /// Local listening ports: connections accepted on them (server side).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Remote ports: outgoing connections of any process to them (client side).
    #[serde(default)]
    pub client_ports: Vec<u16>,
    /// systemd unit (e.g. "jellyfin.service"): all TCP connections of its cgroup.
    pub unit: Option<String>,
    /// Docker/Podman container name: all TCP connections of its cgroup.
    pub container: Option<String>,
    /// Route templates for http_route, e.g. "/Items/{id}".
    #[serde(default)]
    pub routes: Vec<String>,
    /// With `[traces]` on: false leaves this watch's requests out of the spans.
    pub traces: Option<bool>,
}

/// `[traces]`: spans over OTLP/HTTP (protobuf). Absent: no spans.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracesConfig {
    /// Default true when the section is present.
    pub enabled: Option<bool>,
    /// OTLP/HTTP base URL (`/v1/traces` is appended to a URL without a path), default
    /// `http://127.0.0.1:4318`.
    pub endpoint: Option<String>,
    /// Share of traces kept, 0 to 1 (decided on the trace id), default 1.
    pub sample_ratio: Option<f64>,
    /// Spans waiting to be sent; more are dropped and counted (default 4096).
    pub max_queue: Option<usize>,
    /// Spans per request at most (default 512).
    pub max_batch: Option<usize>,
    /// A batch is sent at the latest this long after its first span (default 1000 ms).
    pub batch_timeout_ms: Option<u64>,
}

pub const DEFAULT_OTLP_ENDPOINT: &str = "http://127.0.0.1:4318";

/// Effective span export settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Traces {
    /// Full URL of the OTLP/HTTP traces endpoint (`.../v1/traces`).
    pub url: String,
    pub sample_ratio: f64,
    pub max_queue: usize,
    pub max_batch: usize,
    pub batch_timeout: std::time::Duration,
}

/// An OTLP/HTTP base URL, or the full URL of its traces path.
pub fn otlp_traces_url(endpoint: &str) -> Result<String, String> {
    let mut url = reqwest::Url::parse(endpoint).map_err(|e| format!("{endpoint:?}: {e}"))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(format!(
                "{endpoint:?}: https is not supported (send to a local collector such as Alloy \
                 over http)"
            ))
        }
        other => return Err(format!("{endpoint:?}: scheme {other:?} is not http")),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{endpoint:?}: no query or fragment expected"));
    }
    if url.path() == "/" {
        url.set_path("/v1/traces");
    }
    Ok(url.to_string())
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub metrics_listen: Option<String>,
    pub max_connections: Option<usize>,
    pub max_routes_per_service: Option<usize>,
    pub ring_buffer_kib: Option<u32>,
    pub tls: Option<bool>,
    #[serde(default)]
    pub libssl: Vec<String>,
    /// Go executables to attach the crypto/tls uprobes to, besides those found running.
    #[serde(default)]
    pub go_binaries: Vec<String>,
    /// Executables with OpenSSL linked in statically (Node.js is found by itself).
    #[serde(default)]
    pub ssl_binaries: Vec<String>,
    /// Docker's data-root (default /var/lib/docker).
    pub docker_root: Option<PathBuf>,
    /// Podman's storage graphroot (default /var/lib/containers/storage).
    pub podman_storage: Option<PathBuf>,
    /// Watch the containers labelled `homelab.red=true` (crate::discovery).
    pub discover_containers: Option<bool>,
    /// Engine API sockets listing those containers (Podman's; a Docker daemon's is skipped).
    #[serde(default)]
    pub container_sockets: Vec<PathBuf>,
    #[serde(default)]
    pub watch: Vec<toml::Spanned<Watch>>,
    pub traces: Option<toml::Spanned<TracesConfig>>,
    /// One JSON line per answered request on stdout (default false).
    pub access_log: Option<bool>,
    /// Access log lines per second at most; more are counted, not written (default 100).
    pub access_log_max_per_second: Option<toml::Spanned<u32>>,
}

/// Effective settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub metrics_listen: SocketAddr,
    pub watches: Vec<Watch>,
    pub max_connections: usize,
    pub max_routes_per_service: usize,
    pub ring_buffer_kib: u32,
    pub tls: bool,
    pub libssl: Vec<String>,
    pub go_binaries: Vec<String>,
    pub ssl_binaries: Vec<String>,
    pub runtimes: crate::services::Runtimes,
    /// Where labelled containers are looked for; None: not looked for.
    pub discovery: Option<crate::discovery::Sources>,
    /// None: no spans (the default).
    pub traces: Option<Traces>,
    /// Lines per second at most of the access log; None: no access log (the default).
    pub access_log: Option<u32>,
    /// Frame HTTP/1.x in the kernel where it can (off: `--no-kernel-framing`).
    pub kernel_framing: bool,
}

pub const DEFAULT_ACCESS_LOG_MAX_PER_SECOND: u32 = 100;

/// A config error located in its file: `FILE:LINE:COL: field.path: what is wrong`.
#[derive(Debug)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.col, self.path, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

pub fn parse_file(file: &str, text: &str) -> Result<FileConfig, ConfigError> {
    let de = toml::Deserializer::new(text);
    let cfg: FileConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        let inner = e.into_inner();
        let (line, col) = inner.span().map_or((1, 1), |s| line_col(text, s.start));
        ConfigError {
            file: file.to_string(),
            line,
            col,
            path: if path == "." { "(root)".into() } else { path },
            message: inner.message().to_string(),
        }
    })?;
    for (i, w) in cfg.watch.iter().enumerate() {
        if let Err((field, message)) = validate_watch(w.get_ref()) {
            let (line, col) = line_col(text, w.span().start);
            return Err(ConfigError {
                file: file.to_string(),
                line,
                col,
                path: format!("watch[{i}]{field}"),
                message,
            });
        }
    }
    if let Some(addr) = &cfg.metrics_listen {
        if let Err(message) = parse_listen(addr) {
            let at = text.find("metrics_listen").unwrap_or(0);
            let (line, col) = line_col(text, at);
            return Err(ConfigError {
                file: file.to_string(),
                line,
                col,
                path: "metrics_listen".into(),
                message,
            });
        }
    }
    if let Some(rate) = &cfg.access_log_max_per_second {
        if *rate.get_ref() == 0 {
            let (line, col) = line_col(text, rate.span().start);
            return Err(ConfigError {
                file: file.to_string(),
                line,
                col,
                path: "access_log_max_per_second".into(),
                message: "must be at least 1".into(),
            });
        }
    }
    if let Some(t) = &cfg.traces {
        if let Err((field, message)) = traces_settings(t.get_ref(), None) {
            let (line, col) = line_col(text, t.span().start);
            return Err(ConfigError {
                file: file.to_string(),
                line,
                col,
                path: format!("traces.{field}"),
                message,
            });
        }
    }
    Ok(cfg)
}

/// The effective span settings of a `[traces]` section (None: off), with the endpoint of
/// `--otlp-endpoint` if given. On error returns (field, message).
pub fn traces_settings(
    t: &TracesConfig,
    flag_endpoint: Option<&str>,
) -> Result<Option<Traces>, (String, String)> {
    let url = otlp_traces_url(
        flag_endpoint
            .or(t.endpoint.as_deref())
            .unwrap_or(DEFAULT_OTLP_ENDPOINT),
    )
    .map_err(|m| ("endpoint".to_string(), m))?;
    let sample_ratio = t.sample_ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_ratio) {
        return Err((
            "sample_ratio".into(),
            format!("{sample_ratio} is not between 0 and 1"),
        ));
    }
    let positive = |field: &str, v: Option<usize>, default: usize| match v {
        Some(0) => Err((field.to_string(), "must be at least 1".to_string())),
        v => Ok(v.unwrap_or(default)),
    };
    let max_queue = positive("max_queue", t.max_queue, 4096)?;
    let max_batch = positive("max_batch", t.max_batch, 512)?;
    let timeout_ms = positive(
        "batch_timeout_ms",
        t.batch_timeout_ms.map(|v| v as usize),
        1000,
    )?;
    if !t.enabled.unwrap_or(true) && flag_endpoint.is_none() {
        return Ok(None);
    }
    Ok(Some(Traces {
        url,
        sample_ratio,
        max_queue,
        max_batch,
        batch_timeout: std::time::Duration::from_millis(timeout_ms as u64),
    }))
}

/// Checks one watch rule; on error returns (".field" suffix, message).
pub fn validate_watch(w: &Watch) -> Result<(), (String, String)> {
    let selectors = usize::from(!w.ports.is_empty())
        + usize::from(!w.client_ports.is_empty())
        + usize::from(w.unit.is_some())
        + usize::from(w.container.is_some());
    if selectors != 1 {
        return Err((
            String::new(),
            "set exactly one of ports, client_ports, unit, container".into(),
        ));
    }
    if let Some(p) = w.ports.iter().chain(&w.client_ports).find(|p| **p == 0) {
        return Err((".ports".into(), format!("port {p} is not a valid port")));
    }
    if let Some(s) = &w.service {
        if s.is_empty() {
            return Err((".service".into(), "must not be empty".into()));
        }
    }
    if let Some(u) = &w.unit {
        if u.is_empty() || u.contains('/') {
            return Err((".unit".into(), format!("{u:?} is not a unit name")));
        }
    }
    if let Some(c) = &w.container {
        if c.is_empty() || c.contains('/') {
            return Err((
                ".container".into(),
                format!("{c:?} is not a container name"),
            ));
        }
    }
    for (i, r) in w.routes.iter().enumerate() {
        if !r.starts_with('/') {
            return Err((
                format!(".routes[{i}]"),
                format!("{r:?} must start with '/'"),
            ));
        }
    }
    Ok(())
}

/// An address:port, or a host name:port resolved now (the first address it resolves to,
/// e.g. `localhost:9464`).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if s.rsplit_once(':')
        .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(format!("{s:?} is not an address:port or host:port"));
    }
    match s.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{s:?}: the host name resolves to no address")),
        Err(e) => Err(format!("{s:?}: cannot resolve the host name ({e})")),
    }
}

/// systemd unit types: a name without one of these suffixes means NAME.service, as for
/// systemctl.
const UNIT_TYPES: &[&str] = &[
    "service",
    "socket",
    "device",
    "mount",
    "automount",
    "swap",
    "target",
    "path",
    "timer",
    "slice",
    "scope",
];

/// The unit name as systemd spells it: `web` -> `web.service`.
pub fn unit_name(unit: &str) -> String {
    match unit.rsplit_once('.') {
        Some((_, kind)) if UNIT_TYPES.contains(&kind) => unit.to_string(),
        _ => format!("{unit}.service"),
    }
}

/// Flags that complete or override the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub metrics_listen: Option<String>,
    pub watch_ports: Vec<u16>,
    pub watch_client_ports: Vec<u16>,
    pub watch_units: Vec<String>,
    pub watch_containers: Vec<String>,
    pub routes: Vec<String>,
    pub max_connections: Option<usize>,
    pub max_routes_per_service: Option<usize>,
    pub ring_buffer_kib: Option<u32>,
    pub no_tls: bool,
    pub libssl: Vec<String>,
    pub go_binaries: Vec<String>,
    pub ssl_binaries: Vec<String>,
    pub docker_root: Option<PathBuf>,
    pub podman_storage: Option<PathBuf>,
    pub discover_containers: bool,
    pub container_sockets: Vec<PathBuf>,
    /// `--otlp-endpoint`: turns span export on.
    pub otlp_endpoint: Option<String>,
    /// `--access-log`: turns the access log on.
    pub access_log: bool,
    pub access_log_max_per_second: Option<u32>,
    pub no_kernel_framing: bool,
}

pub fn load(file: Option<&Path>, o: &Overrides) -> anyhow::Result<Settings> {
    let cfg = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
            parse_file(&path.display().to_string(), &text)?
        }
        None => FileConfig {
            metrics_listen: None,
            max_connections: None,
            max_routes_per_service: None,
            ring_buffer_kib: None,
            tls: None,
            libssl: vec![],
            go_binaries: vec![],
            ssl_binaries: vec![],
            docker_root: None,
            podman_storage: None,
            discover_containers: None,
            container_sockets: vec![],
            watch: vec![],
            traces: None,
            access_log: None,
            access_log_max_per_second: None,
        },
    };
    let mut watches: Vec<Watch> = cfg.watch.into_iter().map(|w| w.into_inner()).collect();
    // Watches from flags: an error names the flag that gave the bad value.
    let mut cli_watch = |flag: &str, w: Watch| -> anyhow::Result<()> {
        let w = Watch {
            routes: o.routes.clone(),
            ..w
        };
        validate_watch(&w).map_err(|(field, msg)| {
            let flag = if field.starts_with(".routes") {
                "--route"
            } else {
                flag
            };
            anyhow::anyhow!("{flag}: {msg}")
        })?;
        watches.push(w);
        Ok(())
    };
    for &p in &o.watch_ports {
        let ports = vec![p];
        cli_watch(
            "--watch-port",
            Watch {
                ports,
                ..Default::default()
            },
        )?;
    }
    for &p in &o.watch_client_ports {
        let client_ports = vec![p];
        cli_watch(
            "--watch-client-port",
            Watch {
                client_ports,
                ..Default::default()
            },
        )?;
    }
    for u in &o.watch_units {
        let unit = Some(u.clone());
        cli_watch(
            "--watch-unit",
            Watch {
                unit,
                ..Default::default()
            },
        )?;
    }
    for c in &o.watch_containers {
        let container = Some(c.clone());
        cli_watch(
            "--watch-container",
            Watch {
                container,
                ..Default::default()
            },
        )?;
    }
    for w in &mut watches {
        if let Some(u) = &mut w.unit {
            *u = unit_name(u);
        }
    }
    // A config file may legitimately list no service (configgen renders an empty list):
    // the probe then only serves its own metrics. Without any config it is a usage error.
    let discover = o.discover_containers || cfg.discover_containers.unwrap_or(false);
    if watches.is_empty() && file.is_none() && !discover {
        anyhow::bail!(
            "nothing to watch: give --watch-port, --watch-client-port, --watch-unit, \
             --watch-container, --discover-containers or a --config file with [[watch]] \
             entries"
        );
    }
    let listen = o
        .metrics_listen
        .clone()
        .or(cfg.metrics_listen)
        .unwrap_or_else(|| DEFAULT_METRICS_LISTEN.into());
    let metrics_listen =
        parse_listen(&listen).map_err(|e| anyhow::anyhow!("--metrics-listen: {e}"))?;
    let mut libssl = cfg.libssl;
    libssl.extend(o.libssl.iter().cloned());
    let mut go_binaries = cfg.go_binaries;
    go_binaries.extend(o.go_binaries.iter().cloned());
    let mut ssl_binaries = cfg.ssl_binaries;
    ssl_binaries.extend(o.ssl_binaries.iter().cloned());
    let traces = match (cfg.traces, &o.otlp_endpoint) {
        (None, None) => None,
        (t, flag) => {
            let t = t.map(|t| t.into_inner()).unwrap_or_default();
            traces_settings(&t, flag.as_deref()).map_err(|(field, msg)| {
                if flag.is_some() && field == "endpoint" {
                    anyhow::anyhow!("--otlp-endpoint: {msg}")
                } else {
                    anyhow::anyhow!("traces.{field}: {msg}")
                }
            })?
        }
    };
    if o.access_log_max_per_second == Some(0) {
        anyhow::bail!("--access-log-max-per-second: must be at least 1");
    }
    let access_log = (o.access_log || cfg.access_log.unwrap_or(false)).then(|| {
        o.access_log_max_per_second
            .or(cfg.access_log_max_per_second.map(|r| r.into_inner()))
            .unwrap_or(DEFAULT_ACCESS_LOG_MAX_PER_SECOND)
    });
    let runtimes = crate::services::Runtimes {
        docker_root: o
            .docker_root
            .clone()
            .or(cfg.docker_root)
            .unwrap_or_else(|| crate::services::DOCKER_ROOT.into()),
        podman_storage: o
            .podman_storage
            .clone()
            .or(cfg.podman_storage)
            .unwrap_or_else(|| crate::services::PODMAN_STORAGE.into()),
    };
    let mut sockets = cfg.container_sockets;
    sockets.extend(o.container_sockets.iter().cloned());
    let discovery = discover.then(|| crate::discovery::Sources {
        runtimes: runtimes.clone(),
        sockets,
    });
    Ok(Settings {
        traces,
        access_log,
        discovery,
        metrics_listen,
        watches,
        max_connections: o
            .max_connections
            .or(cfg.max_connections)
            .unwrap_or(16384)
            .max(16),
        max_routes_per_service: o
            .max_routes_per_service
            .or(cfg.max_routes_per_service)
            .unwrap_or(100)
            .max(1),
        ring_buffer_kib: o.ring_buffer_kib.or(cfg.ring_buffer_kib).unwrap_or(4096),
        tls: !o.no_tls && cfg.tls.unwrap_or(true),
        libssl,
        go_binaries,
        ssl_binaries,
        runtimes,
        kernel_framing: !o.no_kernel_framing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_example() {
        let text = r#"
metrics_listen = "127.0.0.1:9464"
[[watch]]
service = "jellyfin"
ports = [8096]
routes = ["/Items/{id}"]
[[watch]]
service = "immich"
container = "immich_server"
"#;
        let cfg = parse_file("probe.toml", text).unwrap();
        assert_eq!(cfg.watch.len(), 2);
        assert_eq!(cfg.watch[0].get_ref().ports, vec![8096]);
        assert_eq!(
            cfg.watch[1].get_ref().container.as_deref(),
            Some("immich_server")
        );
    }

    #[test]
    fn go_binaries_from_the_file_and_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe.toml");
        std::fs::write(
            &path,
            "go_binaries = [\"/usr/bin/caddy\"]\n[[watch]]\nports = [443]\n",
        )
        .unwrap();
        let o = Overrides {
            go_binaries: vec!["/opt/app".into()],
            ..Default::default()
        };
        let s = load(Some(&path), &o).unwrap();
        assert_eq!(s.go_binaries, ["/usr/bin/caddy", "/opt/app"]);
        std::fs::write(&path, "go_binaries = \"/usr/bin/caddy\"\n").unwrap();
        let e = load(Some(&path), &o).unwrap_err().to_string();
        assert!(
            e.contains("probe.toml:1:") && e.contains("go_binaries"),
            "{e}"
        );
    }

    #[test]
    fn ssl_binaries_from_the_file_and_the_flags_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe.toml");
        let text = "ssl_binaries = [\"/opt/app/node\"]\n[[watch]]\nports = [443]\n";
        std::fs::write(&path, text).unwrap();
        let flags = Overrides {
            ssl_binaries: vec!["/srv/bin/server".into()],
            ..Overrides::default()
        };
        let settings = load(Some(&path), &flags).unwrap();
        assert_eq!(settings.ssl_binaries, ["/opt/app/node", "/srv/bin/server"]);
        let e = parse_file("p.toml", "ssl_binaries = \"/opt/app/node\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.toml:1:16: ssl_binaries:"), "{e}");
    }

    #[test]
    fn unknown_field_is_located() {
        let text = "[[watch]]\nservice = \"a\"\nportz = [1]\n";
        let e = parse_file("p.toml", text).unwrap_err().to_string();
        assert!(
            e.starts_with("p.toml:3:1: watch[0].portz: unknown field"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_is_located() {
        let text = "[[watch]]\nports = [\"x\"]\n";
        let e = parse_file("p.toml", text).unwrap_err().to_string();
        assert!(e.starts_with("p.toml:2:10: watch[0].ports[0]:"), "{e}");
    }

    #[test]
    fn watch_needs_one_selector() {
        let text = "metrics_listen = \"127.0.0.1:1\"\n\n[[watch]]\nservice = \"a\"\n";
        let e = parse_file("p.toml", text).unwrap_err().to_string();
        assert!(
            e.starts_with("p.toml:3:1: watch[0]: set exactly one of"),
            "{e}"
        );
        let both = "[[watch]]\nports = [1]\nunit = \"x.service\"\n";
        assert!(parse_file("p.toml", both).is_err());
    }

    #[test]
    fn bad_listen_address_is_located() {
        let text = "metrics_listen = \"localhost\"\n";
        let e = parse_file("p.toml", text).unwrap_err().to_string();
        assert!(
            e.starts_with("p.toml:1:1: metrics_listen: \"localhost\" is not"),
            "{e}"
        );
    }

    /// configgen renders probe.toml from `services[].red`; its golden render of
    /// examples/homelab.toml (one rule per selector kind) must load here.
    #[test]
    fn loads_the_probe_toml_configgen_renders() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../configgen/tests/golden/homelab/probe/probe.toml"
        );
        let settings = load(Some(Path::new(path)), &Overrides::default()).unwrap();
        let has = |f: fn(&Watch) -> bool| settings.watches.iter().any(f);
        assert!(has(|w| !w.ports.is_empty() && !w.routes.is_empty()));
        assert!(has(|w| !w.client_ports.is_empty()));
        assert!(has(|w| w.unit.is_some()));
        assert!(has(|w| w.container.is_some()));
        assert!(settings.watches.iter().all(|w| w.service.is_some()));
        assert_eq!(settings.metrics_listen.to_string(), "127.0.0.1:9464");
        let traces = settings.traces.expect("jellyfin has traces = true");
        assert_eq!(traces.url, "http://127.0.0.1:4318/v1/traces");
        assert!(has(|w| w.traces.is_none() && !w.ports.is_empty()));
        assert_eq!(settings.access_log, Some(DEFAULT_ACCESS_LOG_MAX_PER_SECOND));
    }

    #[test]
    fn access_log_is_off_by_default_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("probe.toml");
        let load_text = |text: &str, o: &Overrides| {
            std::fs::write(&file, text).unwrap();
            load(Some(&file), o)
        };
        let watch = "[[watch]]\nports = [80]\n";
        let off = load_text(watch, &Overrides::default()).unwrap();
        assert_eq!(off.access_log, None);
        let on = load_text(
            &format!("access_log = true\n{watch}"),
            &Overrides::default(),
        );
        assert_eq!(on.unwrap().access_log, Some(100));
        let flags = Overrides {
            access_log: true,
            access_log_max_per_second: Some(7),
            ..Default::default()
        };
        let rate = "access_log_max_per_second = 50\n";
        assert_eq!(load_text(watch, &flags).unwrap().access_log, Some(7));
        assert_eq!(
            load_text(
                &format!("{rate}{watch}"),
                &Overrides {
                    access_log: true,
                    ..Default::default()
                }
            )
            .unwrap()
            .access_log,
            Some(50)
        );
        let e = parse_file("p.toml", "\naccess_log_max_per_second = 0\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml:2:29: access_log_max_per_second: must be at least 1"
        );
        let zero = Overrides {
            access_log_max_per_second: Some(0),
            ..flags
        };
        let e = load_text(watch, &zero).unwrap_err().to_string();
        assert_eq!(e, "--access-log-max-per-second: must be at least 1");
    }

    #[test]
    fn flag_errors_name_the_flag() {
        let err = |o: Overrides| load(None, &o).unwrap_err().to_string();
        let e = err(Overrides {
            watch_ports: vec![0],
            ..Default::default()
        });
        assert_eq!(e, "--watch-port: port 0 is not a valid port");
        let e = err(Overrides {
            watch_client_ports: vec![0],
            ..Default::default()
        });
        assert!(e.starts_with("--watch-client-port: "), "{e}");
        let e = err(Overrides {
            watch_units: vec!["a/b".into()],
            ..Default::default()
        });
        assert!(e.starts_with("--watch-unit: "), "{e}");
        let e = err(Overrides {
            watch_ports: vec![80],
            routes: vec!["users".into()],
            ..Default::default()
        });
        assert!(
            e.starts_with("--route: \"users\" must start with '/'"),
            "{e}"
        );
    }

    #[test]
    fn unit_without_type_is_a_service() {
        assert_eq!(unit_name("web"), "web.service");
        assert_eq!(unit_name("web.service"), "web.service");
        assert_eq!(unit_name("podman-web.scope"), "podman-web.scope");
        assert_eq!(unit_name("app.v2"), "app.v2.service");
        let o = Overrides {
            watch_units: vec!["web".into()],
            ..Default::default()
        };
        assert_eq!(
            load(None, &o).unwrap().watches[0].unit.as_deref(),
            Some("web.service")
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("probe.toml");
        std::fs::write(&file, "[[watch]]\nunit = \"jellyfin\"\n").unwrap();
        let s = load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(s.watches[0].unit.as_deref(), Some("jellyfin.service"));
    }

    #[test]
    fn container_discovery_from_the_file_or_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("probe.toml");
        std::fs::write(
            &file,
            "discover_containers = true\ncontainer_sockets = [\"/run/user/1001/podman/podman.sock\"]\nwatch = []\n",
        )
        .unwrap();
        let flags = Overrides {
            container_sockets: vec!["/run/podman/podman.sock".into()],
            docker_root: Some("/srv/docker".into()),
            ..Default::default()
        };
        let sources = load(Some(&file), &flags).unwrap().discovery.unwrap();
        assert_eq!(
            sources.sockets,
            [
                PathBuf::from("/run/user/1001/podman/podman.sock"),
                PathBuf::from("/run/podman/podman.sock")
            ]
        );
        assert_eq!(sources.runtimes.docker_root, PathBuf::from("/srv/docker"));
        let off = dir.path().join("off.toml");
        std::fs::write(&off, "watch = []\n").unwrap();
        assert!(load(Some(&off), &Overrides::default())
            .unwrap()
            .discovery
            .is_none());
        // The flag alone is something to watch.
        let only = Overrides {
            discover_containers: true,
            ..Default::default()
        };
        assert!(load(None, &only).unwrap().discovery.is_some());
    }

    #[test]
    fn listen_accepts_host_names() {
        let a = parse_listen("localhost:9464").unwrap();
        assert!(a.ip().is_loopback(), "{a}");
        assert_eq!(a.port(), 9464);
        assert_eq!(
            parse_listen("[::1]:9464").unwrap().to_string(),
            "[::1]:9464"
        );
        assert!(parse_listen("localhost").is_err());
        assert!(parse_listen("localhost:http").is_err());
        assert!(parse_listen(":9464").is_err());
        let e = parse_listen("no-such-host.invalid:9464").unwrap_err();
        assert!(e.contains("cannot resolve"), "{e}");
    }

    #[test]
    fn flags_alone_are_enough() {
        let o = Overrides {
            watch_ports: vec![8080, 8081],
            ..Default::default()
        };
        let s = load(None, &o).unwrap();
        assert_eq!(s.watches.len(), 2);
        assert_eq!(s.metrics_listen.to_string(), DEFAULT_METRICS_LISTEN);
        assert!(s.tls);
        assert!(load(None, &Overrides::default()).is_err());
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("probe.toml");
        std::fs::write(
            &empty,
            "# Generated\nmetrics_listen = \"127.0.0.1:1\"\nwatch = []\n",
        )
        .unwrap();
        assert!(load(Some(&empty), &Overrides::default())
            .unwrap()
            .watches
            .is_empty());
    }

    #[test]
    fn traces_are_off_by_default_and_configurable() {
        let load_text = |text: &str, o: &Overrides| {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("probe.toml");
            std::fs::write(&file, text).unwrap();
            load(Some(&file), o)
        };
        let watch = "[[watch]]\nports = [80]\n";
        assert_eq!(
            load_text(watch, &Overrides::default()).unwrap().traces,
            None
        );
        let t = load_text(&format!("{watch}[traces]\n"), &Overrides::default())
            .unwrap()
            .traces
            .unwrap();
        assert_eq!(
            t,
            Traces {
                url: "http://127.0.0.1:4318/v1/traces".into(),
                sample_ratio: 1.0,
                max_queue: 4096,
                max_batch: 512,
                batch_timeout: std::time::Duration::from_secs(1),
            }
        );
        let text =
            format!("{watch}[traces]\nenabled = false\nendpoint = \"http://alloy:4318/custom\"\n");
        assert_eq!(
            load_text(&text, &Overrides::default()).unwrap().traces,
            None
        );
        let flag = Overrides {
            otlp_endpoint: Some("http://[::1]:9999".into()),
            ..Default::default()
        };
        let t = load_text(&text, &flag).unwrap().traces.unwrap();
        assert_eq!(t.url, "http://[::1]:9999/v1/traces", "the flag turns it on");
        let custom = format!("{watch}[traces]\nendpoint = \"http://alloy:4318/custom\"\n");
        let t = load_text(&custom, &Overrides::default())
            .unwrap()
            .traces
            .unwrap();
        assert_eq!(t.url, "http://alloy:4318/custom", "a path is kept");
    }

    #[test]
    fn bad_traces_settings_are_located() {
        let e = parse_file("p.toml", "[traces]\nsample_ratio = 1.5\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "p.toml:1:1: traces.sample_ratio: 1.5 is not between 0 and 1"
        );
        let e = parse_file("p.toml", "\n[traces]\nendpoint = \"https://x:4318\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p.toml:2:1: traces.endpoint: \"https://x:4318\": https is not"),
            "{e}"
        );
        let e = parse_file("p.toml", "[traces]\nmax_batch = 0\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "p.toml:1:1: traces.max_batch: must be at least 1");
        let e = parse_file("p.toml", "[traces]\nendpoit = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("traces.endpoit: unknown field"), "{e}");
        let o = Overrides {
            watch_ports: vec![80],
            otlp_endpoint: Some("127.0.0.1:4318".into()),
            ..Default::default()
        };
        let e = load(None, &o).unwrap_err().to_string();
        assert!(e.starts_with("--otlp-endpoint: "), "{e}");
    }
}
