//! Live tests of TLS servers whose SSL_read/SSL_write make no socket syscall that binds the
//! SSL* to its connection: Python asyncio (uvicorn) and Node.js feed OpenSSL through memory
//! BIOs, Node.js carries its own OpenSSL, and Apache mod_ssl can read a connection's first
//! request during the handshake. Exact counts per method and status, keep-alive and new
//! connections.

mod common;

use common::*;

/// New connections (one request each) opened by `exercise`.
const NEW_CONNECTIONS: u32 = 200;

/// Sends, over HTTPS to `port`: 20 GET /ok and 5 GET /nope on one keep-alive connection,
/// 5 POST /items on another, then `new_connections` GET /ok each on its own connection (4 at
/// a time). `post_status` is what the server answers to the POSTs.
fn exercise(port: u16, post_status: u16, new_connections: u32) {
    let url = |path: &str| format!("https://127.0.0.1:{port}{path}");
    let mut gets = vec![url("/ok"); 20];
    gets.extend(vec![url("/nope"); 5]);
    let mut want = vec![200; 20];
    want.extend([404; 5]);
    assert_eq!(curl(&["-k"], &gets), want);
    let posts = vec![url("/items"); 5];
    assert_eq!(curl(&["-k", "-d", "x=1"], &posts), vec![post_status; 5]);
    if new_connections > 0 {
        assert_eq!(
            ab_url(&url("/ok"), new_connections, 4, false),
            u64::from(new_connections)
        );
    }
}

/// Waits for the requests of `exercise` and checks each series of `service` exactly.
fn assert_exercised(probe: &Probe, service: &str, post_status: u16, new_connections: u32) {
    let total = 30 + u64::from(new_connections);
    let svc = ("service_name", service);
    let m = probe.settle(|m| m.count(SERVER, &[svc]) >= total);
    let dump = m.dump("h");
    let series = |method: &'static str, status: &'static str, route: &'static str| {
        [
            svc,
            ("http_request_method", method),
            ("http_response_status_code", status),
            ("http_route", route),
        ]
    };
    let ok = 20 + u64::from(new_connections);
    assert_eq!(m.count(SERVER, &series("GET", "200", "/ok")), ok, "{dump}");
    assert_eq!(m.count(SERVER, &series("GET", "404", "/nope")), 5, "{dump}");
    let post = post_status.to_string();
    let mut posts = series("POST", "", "/items").to_vec();
    posts[2].1 = &post;
    assert_eq!(m.count(SERVER, &posts), 5, "{dump}");
    assert_eq!(m.count(SERVER, &[svc]), total, "{dump}");
    m.assert_zero(
        &[
            "http_server_unanswered_requests_total",
            "homelab_probe_parse_errors_total",
        ],
        &dump,
    );
}

#[test]
fn uvicorn_asyncio_tls_through_memory_bios() {
    if !live_or_skip(
        "uvicorn TLS live test",
        &["uvicorn", "curl", "openssl", "ab"],
    ) {
        return;
    }
    let server = Server::uvicorn_tls();
    let port = server.port.to_string();
    let probe = Probe::start(&[
        s("--watch-port"),
        port.clone(),
        s("--watch-client-port"),
        port.clone(),
    ]);
    exercise(server.port, 201, NEW_CONNECTIONS);
    assert_exercised(&probe, "uvicorn", 201, NEW_CONNECTIONS);
    // The client side of asyncio: python3's own memory BIOs.
    run_client("python3", "asyncio_client.py", server.port);
    assert_client_gets(&probe, "python3", &port, 10);
}

/// Runs a client fixture against `port` and checks that it succeeded.
fn run_client(interpreter: &str, fixture_name: &str, port: u16) {
    let out = std::process::Command::new(interpreter)
        .arg(fixture(fixture_name))
        .arg(port.to_string())
        .output()
        .unwrap_or_else(|e| panic!("run {fixture_name}: {e}"));
    assert!(
        out.status.success(),
        "{fixture_name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Checks the client-side count of GET /ok 200 of `service` to `port`, and nothing else.
fn assert_client_gets(probe: &Probe, service: &str, port: &str, n: u64) {
    let client = [("service_name", service), ("server_port", port)];
    let m = probe.settle(|m| m.count(CLIENT, &client) >= n);
    let dump = m.dump("http_client");
    let mut ok = client.to_vec();
    ok.extend([
        ("http_request_method", "GET"),
        ("http_response_status_code", "200"),
    ]);
    assert_eq!(m.count(CLIENT, &ok), n, "{dump}");
    assert_eq!(m.count(CLIENT, &client), n, "{dump}");
}

/// Whether a running process maps a libssl shared object (else its OpenSSL is its own).
fn maps_libssl(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .any(|l| l.contains("/libssl.so"))
}

#[test]
fn node_https_with_its_own_openssl() {
    if !live_or_skip("Node.js TLS live test", &["node", "curl", "openssl", "ab"]) {
        return;
    }
    let server = Server::node_https();
    let port = server.port.to_string();
    let probe = Probe::start(&[
        s("--watch-port"),
        port.clone(),
        s("--watch-client-port"),
        port.clone(),
    ]);
    if !maps_libssl(server.proc.0.id()) {
        let exe = std::fs::canonicalize(format!("/proc/{}/exe", server.proc.0.id())).unwrap();
        let attached = format!("{}", exe.display());
        assert!(probe.log().contains(&attached), "{}", probe.log());
    }
    exercise(server.port, 201, NEW_CONNECTIONS);
    assert_exercised(&probe, "node", 201, NEW_CONNECTIONS);
    // Node's https client, keep-alive and not; the server counts its requests too.
    run_client("node", "https_client.js", server.port);
    assert_client_gets(&probe, "node", &port, 20);
    let total = 30 + u64::from(NEW_CONNECTIONS) + 20;
    let svc = [("service_name", "node")];
    let m = probe.settle(|m| m.count(SERVER, &svc) >= total);
    assert_eq!(m.count(SERVER, &svc), total, "{}", m.dump("h"));
}

#[test]
fn memory_bio_connections_open_before_start() {
    if !live_or_skip(
        "TLS connections before start live test",
        &["uvicorn", "node", "openssl", "python3"],
    ) {
        return;
    }
    use std::io::{BufRead, BufReader, Write};
    let servers = [Server::uvicorn_tls(), Server::node_https()];
    let mut client = std::process::Command::new("python3")
        .arg(fixture("tls_keepalive_client.py"))
        .args(servers.iter().map(|s| s.port.to_string()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start tls_keepalive_client.py");
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let mut args = vec![];
    for server in &servers {
        args.extend([s("--watch-port"), server.port.to_string()]);
    }
    let probe = Probe::start(&args);
    assert!(
        probe.log().contains("2 connection(s) already open"),
        "{}",
        probe.log()
    );
    writeln!(client.stdin.take().unwrap()).unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "done");
    assert!(client.wait().unwrap().success());
    let m = probe.settle(|m| m.count(SERVER, &[]) >= 10);
    let dump = m.dump("h");
    for service in ["uvicorn", "node"] {
        let ok = [
            ("service_name", service),
            ("http_request_method", "GET"),
            ("http_response_status_code", "200"),
            ("http_route", "/ok"),
        ];
        assert_eq!(m.count(SERVER, &ok), 5, "{dump}");
    }
    assert_eq!(m.count(SERVER, &[]), 10, "{dump}");
    m.assert_zero(&["homelab_probe_parse_errors_total"], &dump);
}

#[test]
fn apache_mod_ssl_first_request_of_every_connection() {
    if !live_or_skip(
        "Apache mod_ssl live test",
        &["apache2", "curl", "openssl", "ab"],
    ) {
        return;
    }
    let server = Server::apache_ssl();
    let probe = Probe::start(&[s("--watch-port"), server.port.to_string()]);
    // Only /ok exists: the POSTs to /items are answered 404.
    exercise(server.port, 404, NEW_CONNECTIONS);
    assert_exercised(&probe, "apache2", 404, NEW_CONNECTIONS);
}

#[test]
fn no_tls_leaves_memory_bio_and_apache_tls_ports_silent() {
    if !live_or_skip(
        "--no-tls TLS servers live test",
        &[
            "uvicorn", "node", "apache2", "curl", "openssl", "ab", "python3",
        ],
    ) {
        return;
    }
    let servers = [
        (Server::uvicorn_tls(), 201),
        (Server::node_https(), 201),
        (Server::apache_ssl(), 404),
    ];
    let backend = Backend::start();
    let mut args = vec![s("--no-tls"), s("--watch-port"), backend.port.to_string()];
    for (server, _) in &servers {
        args.extend([s("--watch-port"), server.port.to_string()]);
    }
    let probe = Probe::start(&args);
    for (server, post_status) in &servers {
        exercise(server.port, *post_status, 20);
    }
    // One plaintext request afterwards: when it is counted, the TLS events were handled.
    let plain = format!("http://127.0.0.1:{}/ok", backend.port);
    assert_eq!(curl(&[], &[plain]).len(), 1);
    let m = probe.settle(|m| m.count(SERVER, &[]) >= 1);
    let dump = m.dump("h");
    assert_eq!(m.count(SERVER, &[]), 1, "{dump}");
    m.assert_zero(
        &[
            "http_server_unanswered_requests_total",
            "homelab_probe_parse_errors_total",
        ],
        &dump,
    );
}
