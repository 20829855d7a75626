//! Live HTTP/2 tests: the probe attached for real (root, eBPF) to nginx (h2c with prior
//! knowledge, and h2 over TLS through the libssl uprobes) and to caddy (h2c), with several
//! streams at once on one connection (nghttp for h2c, since curl 7.88's `--parallel` fails
//! on h2c with prior knowledge; curl `--parallel` over TLS) and h2load (several connections,
//! ten streams at once on each), and exact counts on what /metrics exports.

mod common;

use std::process::{Command, Stdio};

use common::*;

const ERRORS: &str = "homelab_probe_parse_errors_total";

fn urls(base: &str, paths: &[&str]) -> Vec<String> {
    paths.iter().map(|p| format!("{base}{p}")).collect()
}

/// nghttp: all the URLs at once on one connection (h2c with prior knowledge for http),
/// with the `extra` options; returns the status codes, sorted.
fn nghttp(extra: &[&str], urls: &[String]) -> Vec<u16> {
    let out = Command::new("nghttp")
        .args(["-n", "-s"])
        .args(extra)
        .args(urls)
        .output()
        .expect("run nghttp");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "nghttp failed: {text}");
    // The statistics table: "id  responseEnd requestStart  process code size request path".
    let mut codes: Vec<u16> = text
        .lines()
        .skip_while(|l| !l.starts_with("id  responseEnd"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(4)?.parse().ok())
        .collect();
    codes.sort();
    codes
}

/// h2load: `n` requests over `c` connections, `m` streams at once on each; returns the
/// number of requests that succeeded.
fn h2load(url: &str, n: u32, c: u32, m: u32) -> u64 {
    let out = Command::new("h2load")
        .args(["-n", &n.to_string(), "-c", &c.to_string()])
        .args(["-m", &m.to_string(), url])
        .output()
        .expect("run h2load");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "h2load failed: {text}");
    // "requests: 60 total, 60 started, 60 done, 60 succeeded, 0 failed, ..."
    text.lines()
        .find_map(|l| l.strip_prefix("requests: "))
        .and_then(|l| l.split(", ").find_map(|f| f.strip_suffix(" succeeded")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no succeeded requests in h2load's output: {text}"))
}

/// nginx from the distribution serving HTTP/2 only: h2c (prior knowledge) on `port`,
/// h2 over TLS on `tls_port`.
struct H2Nginx {
    port: u16,
    tls_port: u16,
    _dir: tempfile::TempDir,
    _proc: Proc,
}

impl H2Nginx {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let (port, tls_port) = (free_port(), free_port());
        std::fs::write(dir.path().join("small.bin"), vec![b'x'; 1000]).unwrap();
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "openssl req failed");
        let conf = format!(
            r#"daemon off; user root; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off; sendfile on;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port} http2;
    listen 127.0.0.1:{tls_port} ssl http2;
    ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem;
    location = /ok {{ return 200 "ok\n"; }}
    location = /empty {{ return 204; }}
    location = /boom {{ return 500; }}
    location = /small {{ alias {d}/small.bin; default_type application/octet-stream; }}
    location / {{ return 404; }}
  }}
}}
"#
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let proc = spawn_nginx(dir.path());
        wait_port(port, "nginx h2c");
        wait_port(tls_port, "nginx h2");
        H2Nginx {
            port,
            tls_port,
            _dir: dir,
            _proc: proc,
        }
    }
}

/// Requests sent at once on one connection, plus one POST to /ok on its own connection.
const PATHS: [&str; 7] = [
    "/ok?page=1",
    "/ok?page=2",
    "/empty",
    "/missing/17",
    "/boom",
    "/small?v=1",
    "/small?v=2",
];

/// Runs `PATHS` at once against `base` (with nghttp for h2c, with curl `--http2 -k
/// --parallel` over TLS), a POST with nghttp (curl 7.88 fails now and then on a response
/// that ends before the request body was read), then h2load with `n` requests to /ok.
fn drive(base: &str, n: u32) {
    let mut codes = if base.starts_with("http:") {
        nghttp(&[], &urls(base, &PATHS))
    } else {
        curl(&["--http2", "-k", "--parallel"], &urls(base, &PATHS))
    };
    codes.sort();
    assert_eq!(codes, [200, 200, 200, 200, 204, 404, 500]);
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), "x=1").unwrap();
    let data = body.path().to_str().unwrap();
    assert_eq!(nghttp(&["-d", data], &urls(base, &["/ok"])), [200]);
    assert_eq!(h2load(&format!("{base}/ok"), n, 2, 10), u64::from(n));
}

/// Requests sent after `drive`'s: GET /ok and GET /missing/N.
#[derive(Default)]
struct Upgraded {
    ok: u64,
    missing: u64,
}

/// The server-side counts of `service` by (method, status, route), and the client-side
/// counts of each client, exactly; no parse errors.
fn check(m: &Samples, service: &str, port: u16, clients: &[(&str, u64)], more: Upgraded) {
    let n = clients.iter().find(|c| c.0 == "h2load").map_or(0, |c| c.1);
    let dump = m.dump("h");
    let server = |method: &str, status: &str, route: &str| {
        m.count(
            SERVER,
            &[
                ("service_name", service),
                ("http_request_method", method),
                ("http_response_status_code", status),
                ("http_route", route),
            ],
        )
    };
    assert_eq!(server("GET", "200", "/ok"), 2 + n + more.ok, "{dump}");
    assert_eq!(server("POST", "200", "/ok"), 1, "{dump}");
    assert_eq!(server("GET", "204", "/empty"), 1, "{dump}");
    assert_eq!(
        server("GET", "404", "/missing/{id}"),
        1 + more.missing,
        "{dump}"
    );
    assert_eq!(server("GET", "500", "/boom"), 1, "{dump}");
    assert_eq!(server("GET", "200", "/small"), 2, "{dump}");
    let total = 8 + n + more.ok + more.missing;
    assert_eq!(
        m.count(SERVER, &[("service_name", service)]),
        total,
        "{dump}"
    );
    let port = port.to_string();
    let client = |name: &str| {
        m.count(
            CLIENT,
            &[("service_name", name), ("server_port", port.as_str())],
        )
    };
    for (name, count) in clients {
        assert_eq!(client(name), *count, "{name}: {dump}");
    }
    assert_eq!(m.sum(ERRORS, &[]), 0.0, "{dump}");
    assert_eq!(m.sum("homelab_probe_ringbuf_drops_total", &[]), 0.0);
    assert_eq!(
        m.sum("http_server_active_requests", &[("service_name", service)]),
        0.0
    );
}

fn watch(port: u16) -> Vec<String> {
    vec![
        s("--watch-port"),
        port.to_string(),
        s("--watch-client-port"),
        port.to_string(),
    ]
}

#[test]
fn nginx_h2c_with_prior_knowledge_concurrent_streams() {
    if !live_or_skip(
        "nginx h2c live test",
        &["nginx", "curl", "nghttp", "h2load", "openssl"],
    ) {
        return;
    }
    let nginx = H2Nginx::start();
    let probe = Probe::start(&watch(nginx.port));
    let n = 60;
    drive(&format!("http://127.0.0.1:{}", nginx.port), n);
    let total = 8 + u64::from(n);
    let m = probe.settle(|m| m.count(SERVER, &[("service_name", "nginx")]) >= total);
    let clients = [("nghttp", 8), ("h2load", u64::from(n))];
    check(&m, "nginx", nginx.port, &clients, Upgraded::default());
}

#[test]
fn nginx_h2_over_tls_concurrent_streams() {
    if !live_or_skip(
        "nginx h2 TLS live test",
        &["nginx", "curl", "nghttp", "h2load", "openssl"],
    ) {
        return;
    }
    let nginx = H2Nginx::start();
    let probe = Probe::start(&watch(nginx.tls_port));
    assert!(!probe.log().contains("TLS via nothing"), "{}", probe.log());
    let n = 40;
    drive(&format!("https://127.0.0.1:{}", nginx.tls_port), n);
    let total = 8 + u64::from(n);
    let m = probe.settle(|m| m.count(SERVER, &[("service_name", "nginx")]) >= total);
    let clients = [("curl", 7), ("nghttp", 1), ("h2load", u64::from(n))];
    check(&m, "nginx", nginx.tls_port, &clients, Upgraded::default());
}

#[test]
fn caddy_h2c_concurrent_streams() {
    if !live_or_skip(
        "caddy h2c live test",
        &["caddy", "curl", "nghttp", "h2load"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("Caddyfile");
    std::fs::write(
        &conf,
        format!(
            "{{\n\tadmin off\n\tauto_https off\n\tservers {{\n\t\tprotocols h1 h2c\n\t}}\n}}\n\
             http://127.0.0.1:{port} {{\n\trespond /empty 204\n\trespond /boom 500\n\
             \trespond /missing/* 404\n\trespond /small \"{small}\" 200\n\trespond \"ok\" 200\n}}\n",
            small = "x".repeat(1000)
        ),
    )
    .unwrap();
    let child = Command::new(which("caddy").expect("caddy"))
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&conf)
        .env("XDG_CONFIG_HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start caddy");
    let _caddy = Proc(child);
    wait_port(port, "caddy");
    let probe = Probe::start(&watch(port));
    let n = 60;
    let base = format!("http://127.0.0.1:{port}");
    drive(&base, n);
    // HTTP/1.1 `Upgrade: h2c`: the first request is answered as stream 1, the second is
    // stream 3.
    assert_eq!(
        curl(&["--http2"], &urls(&base, &["/ok", "/missing/4"])),
        [200, 404]
    );
    let total = 10 + u64::from(n);
    let m = probe.settle(|m| m.count(SERVER, &[("service_name", "caddy")]) >= total);
    let upgraded = Upgraded { ok: 1, missing: 1 };
    let clients = [("nghttp", 8), ("curl", 2), ("h2load", u64::from(n))];
    check(&m, "caddy", port, &clients, upgraded);
}
