//! The NixOS module's discovery (discovery.nix) and `configgen discover`
//! (configgen::discover) make the same service of the same virtual host:
//! each case below is one set of host facts, handed to discovery.nix as
//! NixOS would (services.nginx/caddy.virtualHosts) and to configgen as its
//! readers would (a Caddy site through configgen's own Caddyfile reader);
//! name, probe URL, TLS check and RED ports must agree, and a site neither
//! can probe (a wildcard) is skipped by both.
//! Needs NIXPKGS_LIB and nix-instantiate, else SKIPPED.

mod common;

use std::process::Command;

use configgen::discover::{caddyfile, vhost_service, Server, Vhost};
use serde_json::Value;

struct Case {
    server: Server,
    address: &'static str,
    https: bool,
    port: Option<u16>,
    upstream: Option<&'static str>,
    /// A Caddy site's body (extraConfig) other than `reverse_proxy UPSTREAM`.
    caddy_body: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        server: Server::Nginx,
        address: "jellyfin.lan",
        https: false,
        port: None,
        upstream: Some("http://127.0.0.1:8096"),
        caddy_body: None,
    },
    Case {
        server: Server::Nginx,
        address: "cloud.lan",
        https: true,
        port: None,
        upstream: Some("http://localhost:11000/"),
        caddy_body: None,
    },
    Case {
        server: Server::Nginx,
        address: "grafana.lan",
        https: true,
        port: Some(8443),
        upstream: Some("http://[::1]:3000"),
        caddy_body: None,
    },
    Case {
        server: Server::Nginx,
        address: "printer.lan",
        https: false,
        port: Some(8080),
        upstream: Some("http://192.168.1.40:631"),
        caddy_body: None,
    },
    Case {
        server: Server::Nginx,
        address: "static.lan",
        https: false,
        port: None,
        upstream: None,
        caddy_body: None,
    },
    Case {
        server: Server::Caddy,
        address: "photos.home.example",
        https: false,
        port: None,
        upstream: Some("127.0.0.1:2283"),
        caddy_body: None,
    },
    Case {
        server: Server::Caddy,
        address: "http://printer.home.example",
        https: false,
        port: None,
        upstream: Some("192.168.1.40:631"),
        caddy_body: None,
    },
    Case {
        server: Server::Caddy,
        address: ":8080",
        https: false,
        port: None,
        upstream: Some(":3001"),
        caddy_body: None,
    },
    Case {
        server: Server::Caddy,
        address: "localhost",
        https: false,
        port: None,
        upstream: None,
        caddy_body: None,
    },
    Case {
        server: Server::Caddy,
        address: "git.home.example:8443",
        https: false,
        port: None,
        upstream: Some("localhost:3002"),
        caddy_body: None,
    },
    Case {
        server: Server::Caddy,
        address: "apps.home.example",
        https: false,
        port: None,
        upstream: None,
        caddy_body: Some(
            "encode gzip\nreverse_proxy /api/* localhost:9000\nreverse_proxy @ws 127.0.0.1:9001\nreverse_proxy {\n  to localhost:9003 192.168.1.5:80\n  lb_policy first\n}\nreverse_proxy localhost:9000",
        ),
    },
    Case {
        server: Server::Caddy,
        address: "*.home.example",
        https: false,
        port: None,
        upstream: Some("localhost:9999"),
        caddy_body: None,
    },
];

fn nix_string(s: &str) -> String {
    serde_json::to_string(s).unwrap().replace('$', "\\$")
}

/// The NixOS config discovery.nix reads, as a Nix expression.
fn nixos_config() -> String {
    let mut nginx = String::new();
    let mut caddy = String::new();
    for (i, c) in CASES.iter().enumerate() {
        match c.server {
            Server::Nginx => {
                let listen = match c.port {
                    Some(p) => {
                        format!("[{{ addr = \"0.0.0.0\"; port = {p}; ssl = {}; }}]", c.https)
                    }
                    None => "[]".into(),
                };
                let proxy = c.upstream.map_or("null".into(), nix_string);
                nginx.push_str(&format!(
                    "\"vhost{i}\" = {{ serverName = {}; onlySSL = false; forceSSL = {}; listen = {listen}; locations.\"/\".proxyPass = {proxy}; }};\n",
                    nix_string(c.address),
                    c.https
                ));
            }
            Server::Caddy => {
                let extra = caddy_body(c);
                caddy.push_str(&format!(
                    "{} = {{ hostName = {}; extraConfig = {}; }};\n",
                    nix_string(c.address),
                    nix_string(c.address),
                    nix_string(&extra)
                ));
            }
        }
    }
    format!(
        "{{
          services.nginx = {{ enable = true; defaultHTTPListenPort = 80; defaultSSLListenPort = 443; virtualHosts = {{ {nginx} }}; }};
          services.caddy = {{ enable = true; virtualHosts = {{ {caddy} }}; }};
          virtualisation.oci-containers.containers = {{ }};
        }}"
    )
}

fn caddy_body(c: &Case) -> String {
    c.caddy_body.map_or_else(
        || {
            c.upstream
                .map_or(String::new(), |u| format!("reverse_proxy {u}"))
        },
        String::from,
    )
}

/// The site as configgen's Caddyfile reader sees it.
fn caddy_vhost(c: &Case) -> Vhost {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Caddyfile");
    std::fs::write(&path, format!("{} {{\n{}\n}}\n", c.address, caddy_body(c))).unwrap();
    let mut vhosts = caddyfile::read(&path).unwrap_or_else(|e| panic!("{}: {e:#}", c.address));
    assert_eq!(vhosts.len(), 1, "{}: {vhosts:?}", c.address);
    vhosts.remove(0)
}

/// configgen's service for the case, or None where it skips the site.
fn ours(c: &Case) -> Option<Value> {
    let v = match c.server {
        Server::Nginx => Vhost {
            server: c.server,
            source: "case".into(),
            address: c.address.into(),
            aliases: vec![],
            https: c.https,
            port: c.port,
            upstreams: c.upstream.map(String::from).into_iter().collect(),
        },
        Server::Caddy => caddy_vhost(c),
    };
    let f = vhost_service(&v)?;
    let mut http = serde_json::json!({ "url": f.url });
    if f.insecure_skip_verify {
        http["insecure_skip_verify"] = Value::Bool(true);
    }
    let mut s = serde_json::json!({
        "name": f.name,
        "http": http,
        "labels": { "discovered_from": f.discovered_from },
    });
    if !f.red_ports.is_empty() {
        s["red"] = serde_json::json!({ "ports": f.red_ports });
    }
    Some(s)
}

#[test]
fn nixos_and_configgen_discover_the_same_services_from_the_same_vhosts() {
    let Some(lib) = std::env::var_os("NIXPKGS_LIB").filter(|v| !v.is_empty()) else {
        common::skipped(
            "NIXPKGS_LIB not set (discover_parity: point it at nixpkgs' lib directory)",
        );
        return;
    };
    if !common::tool("discover_parity", "nix-instantiate") {
        return;
    }
    let root = common::repo_root();
    let discovery = root.join("nixos-modules/homelab-observability/discovery.nix");
    let expr = format!(
        "let lib = import {lib}; in import {discovery} {{ inherit lib; }} {{
           config = {config};
           cfg.discovery = {{ nginx = true; caddy = true; ociContainers = false; }};
         }}",
        lib = lib.to_string_lossy(),
        discovery = discovery.display(),
        config = nixos_config()
    );
    // From the repository root, as evaluate_cases does: a Nix that runs in
    // a chroot (../shared/tools/nix-chroot) sees only its working directory.
    let out = Command::new("nix-instantiate")
        .current_dir(&root)
        .args(["--eval", "--strict", "--json", "-E", &expr])
        .output()
        .expect("nix-instantiate runs");
    assert!(
        out.status.success(),
        "{}\n{expr}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nix: Value = serde_json::from_slice(&out.stdout).unwrap();
    let nix = nix.as_object().unwrap();
    let wanted: Vec<(&Case, Value)> = CASES
        .iter()
        .filter_map(|c| ours(c).map(|w| (c, w)))
        .collect();
    assert!(
        wanted.len() < CASES.len(),
        "a case configgen skips (a wildcard site)"
    );
    assert_eq!(nix.len(), wanted.len(), "{nix:#?}");
    for (c, want) in &wanted {
        let name = want["name"].as_str().unwrap();
        assert_eq!(
            nix.get(name),
            Some(want),
            "{}: discovery.nix gave {nix:#?}",
            c.address
        );
    }
}
