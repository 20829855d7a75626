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
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub metrics_listen: Option<String>,
    pub max_connections: Option<usize>,
    pub max_routes_per_service: Option<usize>,
    pub ring_buffer_kib: Option<u32>,
    pub tls: Option<bool>,
    #[serde(default)]
    pub libssl: Vec<String>,
    /// Docker's data-root (default /var/lib/docker).
    pub docker_root: Option<PathBuf>,
    /// Podman's storage graphroot (default /var/lib/containers/storage).
    pub podman_storage: Option<PathBuf>,
    #[serde(default)]
    pub watch: Vec<toml::Spanned<Watch>>,
}

/// Effective settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub metrics_listen: SocketAddr,
    pub watches: Vec<Watch>,
    pub max_connections: usize,
    pub max_routes_per_service: usize,
    pub ring_buffer_kib: u32,
    pub tls: bool,
    pub libssl: Vec<String>,
    pub runtimes: crate::services::Runtimes,
}

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
    Ok(cfg)
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
    pub docker_root: Option<PathBuf>,
    pub podman_storage: Option<PathBuf>,
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
            docker_root: None,
            podman_storage: None,
            watch: vec![],
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
    if watches.is_empty() && file.is_none() {
        anyhow::bail!(
            "nothing to watch: give --watch-port, --watch-client-port, --watch-unit, \
             --watch-container or a --config file with [[watch]] entries"
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
    Ok(Settings {
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
        runtimes: crate::services::Runtimes {
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
        },
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
}
