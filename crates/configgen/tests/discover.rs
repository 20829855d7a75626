//! `configgen discover` over the corpus of tests/discover/: Caddyfiles and
//! nginx sites written for these tests (snippets and imports, handle/route
//! blocks, several sites, nginx includes and upstream blocks, listen with
//! ssl, server_name lists), plus container sockets served by the Engine API
//! stand-in (support::engine_api). Each case's output must equal
//! tests/discover/<case>.expected.toml (UPDATE_GOLDEN=1 rewrites them) and
//! load as a valid config; the real caddy (`caddy adapt`) and nginx
//! (`nginx -t`) from Debian check that the corpus is what they accept, and
//! caddy that our upstreams are the ones it dials.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::cli::{configgen, stderr};
use support::engine_api::FakeEngine;

const TEST: &str = "discover";

fn corpus() -> PathBuf {
    support::crate_dir().join("tests/discover")
}

/// Runs discover with `args` (paths relative to the crate directory) and
/// compares its output with the expected file, then loads it as a config.
fn check_case(case: &str, args: &[&str]) {
    let out = configgen(&[&["discover"], args].concat(), None);
    assert!(out.status.success(), "{case}: {}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let expected_path = corpus().join(format!("{case}.expected.toml"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (UPDATE_GOLDEN=1 writes it)",
            expected_path.display()
        )
    });
    assert_eq!(
        text,
        expected,
        "{case}: output differs from {}",
        expected_path.display()
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("found.toml");
    std::fs::write(&file, &text).unwrap();
    let check = configgen(&["check", "--config", file.to_str().unwrap()], None);
    assert!(
        check.status.success(),
        "{case}: the output is not a valid config:\n{}",
        stderr(&check)
    );
}

#[test]
fn caddyfile_with_snippets_imports_and_several_sites() {
    check_case("caddy", &["--caddyfile", "tests/discover/caddy/Caddyfile"]);
}

#[test]
fn caddyfile_of_one_site_without_braces() {
    check_case(
        "caddy-single",
        &["--caddyfile", "tests/discover/caddy/single.Caddyfile"],
    );
}

#[test]
fn nginx_prefix_with_sites_conf_d_includes_and_upstreams() {
    check_case("nginx", &["--nginx", "tests/discover/nginx"]);
}

#[test]
fn nginx_conf_including_its_sites_with_a_server_in_http() {
    check_case("nginx-debian", &["--nginx", "tests/discover/nginx-debian"]);
}

#[test]
fn one_nginx_site_file_resolves_includes_from_the_prefix() {
    check_case(
        "nginx-site",
        &["--nginx", "tests/discover/nginx/sites-enabled/nextcloud"],
    );
}

#[test]
fn containers_of_docker_and_podman_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let docker = dir.path().join("docker.sock");
    let podman = dir.path().join("podman.sock");
    let _d = FakeEngine::start(&docker, "docker-24", "1.43");
    let _p = FakeEngine::start(&podman, "podman-4", "1.41");
    let out = configgen(
        &[
            "discover",
            "--socket",
            docker.to_str().unwrap(),
            "--socket",
            podman.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The socket paths are temporary: compare without the header lines naming them.
    let text = String::from_utf8(out.stdout)
        .unwrap()
        .replace(&dir.path().display().to_string(), "SOCKETS");
    let expected_path = corpus().join("containers.expected.toml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &text).unwrap();
    }
    assert_eq!(text, std::fs::read_to_string(&expected_path).unwrap());
}

#[test]
fn broken_files_are_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "Caddyfile",
            "a.lan {\n  reverse_proxy \"127.0.0.1:80\n}\n",
            "--caddyfile",
            "Caddyfile:2: unterminated quote",
        ),
        (
            "Caddyfile2",
            "a.lan {\n  reverse_proxy 127.0.0.1:80\n}\n}\n",
            "--caddyfile",
            "Caddyfile2:4: unexpected '}'",
        ),
        (
            "Caddyfile4",
            "a.lan {\n  handle {\n    reverse_proxy 127.0.0.1:80\n}\n",
            "--caddyfile",
            "Caddyfile4:1: this '{' is never closed",
        ),
        (
            "Caddyfile3",
            "a.lan {\n  import missing.caddy\n}\n",
            "--caddyfile",
            "missing.caddy",
        ),
        (
            "site",
            "server {\n  listen 80;\n  server_name a.lan\n",
            "--nginx",
            "site: ",
        ),
    ];
    for (name, text, flag, message) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = configgen(&["discover", flag, path.to_str().unwrap()], None);
        assert!(!out.status.success(), "{name}");
        assert!(out.stdout.is_empty(), "{name}: nothing printed on error");
        assert!(stderr(&out).contains(message), "{name}: {}", stderr(&out));
    }
}

/// The upstreams Caddy itself dials for a Caddyfile, from `caddy adapt`.
fn caddy_dials(caddy: &Path, file: &Path) -> BTreeSet<String> {
    let out = Command::new(caddy)
        .args(["adapt", "--adapter", "caddyfile", "--config"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "caddy adapt {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    fn walk(v: &serde_json::Value, out: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(d) = o.get("dial").and_then(|d| d.as_str()) {
                    out.insert(d.to_string());
                }
                o.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut dials = BTreeSet::new();
    walk(&json, &mut dials);
    dials
}

#[test]
fn the_real_caddy_dials_exactly_the_upstreams_discover_reads() {
    let Some(caddy) = support::require_tool("caddy", TEST) else {
        return;
    };
    for name in ["Caddyfile", "single.Caddyfile"] {
        let file = corpus().join("caddy").join(name);
        let ours: BTreeSet<String> = configgen::discover::caddyfile::read(&file)
            .unwrap()
            .into_iter()
            .flat_map(|v| v.upstreams)
            // Caddy writes dial addresses without the scheme.
            .map(|u| u.trim_start_matches("http://").to_string())
            .collect();
        assert_eq!(ours, caddy_dials(&caddy, &file), "{name}");
    }
}

#[test]
fn the_real_nginx_accepts_the_corpus() {
    let Some(nginx) = support::require_tool("nginx", TEST) else {
        return;
    };
    let Some(openssl) = support::require_tool("openssl", TEST) else {
        return;
    };
    // A copy whose certificate paths point at a fresh self-signed pair.
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path();
    let src = corpus().join("nginx");
    let cert = prefix.join("cert.pem");
    let key = prefix.join("key.pem");
    let status = Command::new(openssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(status.status.success());
    for sub in ["sites-enabled", "conf.d", "snippets"] {
        std::fs::create_dir_all(prefix.join(sub)).unwrap();
        for entry in std::fs::read_dir(src.join(sub)).unwrap() {
            let entry = entry.unwrap();
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let text = text
                .lines()
                .map(|l| {
                    if l.trim_start().starts_with("ssl_certificate_key") {
                        format!("    ssl_certificate_key {};", key.display())
                    } else if l.trim_start().starts_with("ssl_certificate") {
                        format!("    ssl_certificate {};", cert.display())
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            std::fs::write(prefix.join(sub).join(entry.file_name()), text).unwrap();
        }
    }
    let conf = prefix.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "pid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  include conf.d/*.conf;\n  include sites-enabled/*;\n}}\n",
            p = prefix.display()
        ),
    )
    .unwrap();
    let out = Command::new(nginx)
        .arg("-t")
        .arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
