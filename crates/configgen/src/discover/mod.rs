//! `configgen discover`: the services a host already declares in its reverse
//! proxies (Caddyfile, nginx sites) and its container runtime, printed as
//! `[[services]]` blocks to review and keep.
//!
//! Readers turn each file into host facts ([`Vhost`], [`Container`]); the
//! rules below turn facts into services. They are the rules of the NixOS
//! module's discovery (nixos-modules/homelab-observability/discovery.nix):
//! the same service name and probe URL from the same virtual host, checked by
//! the `discover_parity` test of crates/nix-checks.

pub mod caddyfile;
pub mod engine;
pub mod nginx;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A virtual host of a reverse proxy, as its config file declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vhost {
    pub server: Server,
    /// Where it was declared, `file:line`.
    pub source: String,
    /// The address as written: a name (`jellyfin.home.lan`), with a port
    /// (`a.lan:8443`), Caddy's `:8080` or `http://a.lan`; nginx gives the
    /// first `server_name`.
    pub address: String,
    /// More names served by the same block.
    pub aliases: Vec<String>,
    /// nginx: TLS on its listen socket (Caddy: decided from the address).
    pub https: bool,
    /// nginx: the listen port (Caddy: part of the address).
    pub port: Option<u16>,
    /// Every upstream it proxies to (`127.0.0.1:8096`, `http://app:3000`,
    /// `unix//run/app.sock`), in order of appearance.
    pub upstreams: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Caddy,
    Nginx,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::Caddy => "caddy",
            Server::Nginx => "nginx",
        }
    }
}

/// A running container, as the Docker/Podman API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    /// (host address, host port) of each published TCP port.
    pub published: Vec<(String, u16)>,
    /// `homelab.enable=false`.
    pub opted_out: bool,
}

/// A service found, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub url: Option<String>,
    pub insecure_skip_verify: bool,
    pub tcp: Option<String>,
    pub red_ports: Vec<u16>,
    pub log_container: Option<String>,
    pub discovered_from: &'static str,
    /// Printed above the block.
    pub notes: Vec<String>,
    /// Printed commented out (e.g. containers already discovered continuously).
    pub commented: bool,
}

/// A service name: every character outside [A-Za-z0-9_-] becomes '-'.
pub fn service_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The port of an upstream on this host's loopback (`127.0.0.1:8096`,
/// `http://localhost:8096/x`, `[::1]:8096`, Caddy's `:8096`); None for other
/// hosts and sockets.
pub fn local_port(upstream: &str) -> Option<u16> {
    let rest = upstream
        .strip_prefix("http://")
        .or_else(|| upstream.strip_prefix("https://"))
        .unwrap_or(upstream);
    let rest = ["127.0.0.1:", "localhost:", "[::1]:", ":"]
        .iter()
        .find_map(|p| rest.strip_prefix(p))?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// One concrete host name (no wildcard, regex or catch-all): it can be probed.
pub fn probeable(host: &str) -> bool {
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

fn red_ports(upstreams: &[String]) -> Vec<u16> {
    let ports: BTreeSet<u16> = upstreams.iter().filter_map(|u| local_port(u)).collect();
    ports.into_iter().collect()
}

fn upstream_notes(v: &Vhost) -> Vec<String> {
    let mut notes = vec![format!("{}: {}", v.server.name(), v.source)];
    if !v.aliases.is_empty() {
        notes.push(format!("also serves {}", v.aliases.join(", ")));
    }
    for u in &v.upstreams {
        match local_port(u) {
            Some(p) => notes.push(format!("proxies to {u} (red watches port {p})")),
            None => notes.push(format!(
                "proxies to {u}: not a loopback port, so not in `red`"
            )),
        }
    }
    notes
}

/// The service of a virtual host, or None for one that cannot be probed
/// (wildcards, regexes, catch-alls). Rules of discovery.nix's nginxService
/// and caddyService.
pub fn vhost_service(v: &Vhost) -> Option<Found> {
    let (name, url, insecure) = match v.server {
        Server::Nginx => {
            if !probeable(&v.address) {
                return None;
            }
            let default = if v.https { 443 } else { 80 };
            let port = v.port.unwrap_or(default);
            let authority = if port == default {
                v.address.clone()
            } else {
                format!("{}:{port}", v.address)
            };
            let scheme = if v.https { "https" } else { "http" };
            (
                service_name(&v.address),
                format!("{scheme}://{authority}/"),
                false,
            )
        }
        Server::Caddy => {
            let plain = v.address.starts_with("http://");
            let host_port = v
                .address
                .trim_start_matches("http://")
                .trim_start_matches("https://");
            let any_host = host_port.starts_with(':');
            let host = host_port.split(':').next().unwrap_or("");
            if !any_host && !probeable(host) {
                return None;
            }
            let https = !plain && !any_host;
            let local = host == "localhost" || host == "127.0.0.1";
            let scheme = if https { "https" } else { "http" };
            if any_host {
                (
                    service_name(&format!("caddy{host_port}")),
                    format!("http://127.0.0.1{host_port}/"),
                    false,
                )
            } else {
                (
                    service_name(host_port),
                    format!("{scheme}://{host_port}/"),
                    // Caddy serves localhost with its own internal CA.
                    https && local,
                )
            }
        }
    };
    Some(Found {
        name,
        url: Some(url),
        insecure_skip_verify: insecure,
        tcp: None,
        red_ports: red_ports(&v.upstreams),
        log_container: None,
        discovered_from: v.server.name(),
        notes: upstream_notes(v),
        commented: false,
    })
}

/// The service of a container: its logs and a TCP check of its first
/// published port (discovery.nix's containerService). Printed commented out:
/// container discovery already watches it (docs/discovery.md).
pub fn container_service(c: &Container) -> Found {
    let tcp = c.published.first().map(|(addr, port)| {
        let addr = match addr.as_str() {
            "" | "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
            a => a,
        };
        crate::plan::join_host_port(addr, *port)
    });
    let mut notes = vec![format!("container {}", c.name)];
    notes.push(if c.opted_out {
        "labelled homelab.enable=false".to_string()
    } else {
        "already watched by container discovery (docs/discovery.md): keep this only with discovery.containers = false".to_string()
    });
    Found {
        name: service_name(&c.name),
        url: None,
        insecure_skip_verify: false,
        tcp,
        red_ports: Vec::new(),
        log_container: Some(c.name.clone()),
        discovered_from: "containers",
        notes,
        commented: true,
    }
}

/// The services of every virtual host, one per name: a name served both
/// over HTTP and HTTPS (nginx's redirect-to-HTTPS pattern) is the HTTPS one,
/// with the upstreams of both.
pub fn services(vhosts: &[Vhost], containers: &[Container]) -> (Vec<Found>, Vec<String>) {
    let mut found: Vec<Found> = Vec::new();
    let mut skipped = Vec::new();
    for v in vhosts {
        let Some(s) = vhost_service(v) else {
            skipped.push(format!(
                "{} {}: `{}` is not one host name (wildcard, regex or catch-all): not probed",
                v.server.name(),
                v.source,
                v.address
            ));
            continue;
        };
        match found.iter_mut().find(|f| f.name == s.name) {
            Some(existing) => {
                let https = |f: &Found| f.url.as_deref().is_some_and(|u| u.starts_with("https"));
                let mut ports: BTreeSet<u16> = existing.red_ports.iter().copied().collect();
                ports.extend(&s.red_ports);
                let mut notes = existing.notes.clone();
                notes.extend(s.notes.iter().cloned());
                if https(&s) && !https(existing) {
                    *existing = s;
                }
                existing.red_ports = ports.into_iter().collect();
                existing.notes = notes;
            }
            None => found.push(s),
        }
    }
    for c in containers {
        let s = container_service(c);
        if found.iter().any(|f| f.name == s.name) {
            skipped.push(format!(
                "container {}: a virtual host is already named {}",
                c.name, s.name
            ));
        } else {
            found.push(s);
        }
    }
    (found, skipped)
}

/// `"text"` as a TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The TOML the user reviews: a header, then one commented block per service.
pub fn to_toml(found: &[Found], skipped: &[String], read: &[String]) -> String {
    let mut out = String::new();
    out.push_str("# Services found by `configgen discover`. Review them, then keep what you\n");
    out.push_str("# want in your config file. Read:\n");
    for r in read {
        let _ = writeln!(out, "#   {r}");
    }
    for s in skipped {
        let _ = writeln!(out, "# Skipped: {s}");
    }
    for f in found {
        out.push('\n');
        for n in &f.notes {
            let _ = writeln!(out, "# {n}");
        }
        let mut lines = vec![
            "[[services]]".to_string(),
            format!("name = {}", quote(&f.name)),
        ];
        if let Some(url) = &f.url {
            let insecure = if f.insecure_skip_verify {
                ", insecure_skip_verify = true"
            } else {
                ""
            };
            lines.push(format!("http = {{ url = {}{insecure} }}", quote(url)));
        }
        if let Some(tcp) = &f.tcp {
            lines.push(format!("tcp = {}", quote(tcp)));
        }
        if !f.red_ports.is_empty() {
            let ports: Vec<String> = f.red_ports.iter().map(u16::to_string).collect();
            lines.push(format!("red = {{ ports = [{}] }}", ports.join(", ")));
        }
        if let Some(c) = &f.log_container {
            lines.push(format!("logs = {{ container = {} }}", quote(c)));
        }
        lines.push(format!(
            "labels = {{ discovered_from = {} }}",
            quote(f.discovered_from)
        ));
        for l in lines {
            if f.commented {
                out.push_str("# ");
            }
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

/// Files matching `pattern`: a path whose last component may hold `*`.
pub fn glob(pattern: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if !name.contains('*') {
        return Ok(vec![pattern.to_path_buf()]);
    }
    let dir = pattern.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(_) => return Ok(out),
    };
    for entry in entries {
        let entry = entry?;
        let file = entry.file_name().to_string_lossy().to_string();
        if wildcard(&name, &file) && entry.path().is_file() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

fn wildcard(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, tail)) => {
            s.starts_with(head)
                && (0..=s.len() - head.len()).any(|i| {
                    s.is_char_boundary(head.len() + i) && wildcard(tail, &s[head.len() + i..])
                })
        }
    }
}

/// Where `discover` looks. With nothing given, the usual places of a
/// Debian host; with any path given, only the paths given.
#[derive(Debug, Default)]
pub struct Sources {
    pub caddyfiles: Vec<PathBuf>,
    /// nginx prefix directories (sites-enabled/*, conf.d/*.conf) or site files.
    pub nginx: Vec<PathBuf>,
    pub sockets: Vec<PathBuf>,
}

pub const DEFAULT_CADDYFILE: &str = "/etc/caddy/Caddyfile";
pub const DEFAULT_NGINX: &str = "/etc/nginx";
pub const DEFAULT_SOCKETS: [&str; 2] = ["/var/run/docker.sock", "/run/podman/podman.sock"];

/// Reads every source and prints the services found as TOML.
pub fn run(given: Sources) -> anyhow::Result<String> {
    let defaults =
        given.caddyfiles.is_empty() && given.nginx.is_empty() && given.sockets.is_empty();
    let src = if defaults {
        let existing = |p: &str| Path::new(p).exists().then(|| PathBuf::from(p));
        Sources {
            caddyfiles: existing(DEFAULT_CADDYFILE).into_iter().collect(),
            nginx: existing(DEFAULT_NGINX).into_iter().collect(),
            sockets: DEFAULT_SOCKETS.iter().filter_map(|s| existing(s)).collect(),
        }
    } else {
        given
    };
    let mut read = Vec::new();
    let mut vhosts = Vec::new();
    for c in &src.caddyfiles {
        vhosts.extend(caddyfile::read(c)?);
        read.push(format!("Caddyfile {}", c.display()));
    }
    for n in &src.nginx {
        let (files, prefix, context) = if n.is_dir() {
            // nginx.conf includes the sites itself; without one, the usual places.
            let files = if n.join("nginx.conf").is_file() {
                vec![n.join("nginx.conf")]
            } else {
                let mut files = glob(&n.join("sites-enabled/*"))?;
                files.extend(glob(&n.join("conf.d/*.conf"))?);
                files
            };
            (files, n.clone(), Vec::new())
        } else {
            let dir = n.parent().unwrap_or(Path::new(".")).to_path_buf();
            let site_dir = dir.file_name().is_some_and(|d| {
                ["sites-enabled", "sites-available", "conf.d"]
                    .contains(&d.to_string_lossy().as_ref())
            });
            let prefix = if site_dir {
                dir.parent().unwrap_or(Path::new(".")).to_path_buf()
            } else {
                dir
            };
            // The upstream blocks a site uses are often declared in conf.d.
            let context = glob(&prefix.join("conf.d/*.conf"))?;
            (vec![n.clone()], prefix, context)
        };
        if !n.exists() {
            anyhow::bail!("{}: no such file or directory", n.display());
        }
        vhosts.extend(nginx::read(&files, &prefix, &context)?);
        read.push(format!(
            "nginx {} ({} file{})",
            n.display(),
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        ));
    }
    let mut containers = Vec::new();
    for s in &src.sockets {
        containers.extend(engine::read(s)?);
        read.push(format!("containers of {}", s.display()));
    }
    if read.is_empty() {
        read.push("nothing: no Caddyfile, nginx or container socket at the usual places".into());
    }
    let (found, skipped) = services(&vhosts, &containers);
    Ok(to_toml(&found, &skipped, &read))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_upstreams_give_ports_others_do_not() {
        assert_eq!(local_port("127.0.0.1:8096"), Some(8096));
        assert_eq!(local_port("http://localhost:3000/api"), Some(3000));
        assert_eq!(local_port("[::1]:9000"), Some(9000));
        assert_eq!(local_port(":3001"), Some(3001));
        assert_eq!(local_port("http://10.0.0.5:8080"), None);
        assert_eq!(local_port("jellyfin:8096"), None);
        assert_eq!(local_port("unix//run/php/fpm.sock"), None);
    }

    #[test]
    fn https_wins_over_its_redirect_and_merges_ports() {
        let v = |https: bool, port: u16, up: &str| Vhost {
            server: Server::Nginx,
            source: "x:1".into(),
            address: "cloud.home.lan".into(),
            aliases: vec![],
            https,
            port: Some(port),
            upstreams: vec![up.into()],
        };
        let (found, _) = services(
            &[
                v(false, 80, "127.0.0.1:8080"),
                v(true, 443, "127.0.0.1:8081"),
            ],
            &[],
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].url.as_deref(), Some("https://cloud.home.lan/"));
        assert_eq!(found[0].red_ports, [8080, 8081]);
    }

    #[test]
    fn wildcards_match_like_a_shell() {
        assert!(wildcard("*.conf", "a.conf"));
        assert!(!wildcard("*.conf", "a.conf.bak"));
        assert!(wildcard("*", "x"));
        assert!(wildcard("site-*.caddy", "site-1.caddy"));
    }
}
