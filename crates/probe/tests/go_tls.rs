//! Live tests of the Go crypto/tls uprobes: Debian's caddy (Go 1.19, stripped: functions
//! found through .gopclntab only) serving HTTPS with its internal CA, counted exactly.

mod common;

use common::*;

/// Keep-alive and not, 200/201/404, a POST; returns the number of requests sent.
fn requests(port: u16) -> u64 {
    let url = |p: &str| format!("https://127.0.0.1:{port}{p}");
    let h1 = ["-k", "--http1.1"];
    // One connection, three requests.
    assert_eq!(
        curl(&h1, &[url("/ok"), url("/ok"), url("/nope")]),
        [200, 200, 404]
    );
    // Separate connections, the server closing one.
    assert_eq!(curl(&h1, &[url("/missing/123")]), [404]);
    let close = ["-k", "--http1.1", "-H", "Connection: close"];
    assert_eq!(curl(&close, &[url("/ok")]), [200]);
    let post = ["-k", "--http1.1", "-X", "POST", "-d", "name=x&n=1"];
    assert_eq!(curl(&post, &[url("/form")]), [201]);
    6
}

/// `ready`: the requests of Server::caddy_tls's readiness check (one GET /ok that got its
/// 200) that the probe saw.
fn assert_counted(probe: &Probe, sent: u64, ready: u64) {
    let sent = sent + ready;
    let svc = ("service_name", "caddy");
    let m = probe.settle(|m| m.count(SERVER, &[svc]) >= sent);
    let dump = m.dump("h");
    let server = |method: &str, status: &str, route: &str| {
        m.count(
            SERVER,
            &[
                svc,
                ("http_request_method", method),
                ("http_response_status_code", status),
                ("http_route", route),
            ],
        )
    };
    assert_eq!(server("GET", "200", "/ok"), 3 + ready, "{dump}");
    assert_eq!(server("GET", "404", "/nope"), 1, "{dump}");
    assert_eq!(server("GET", "404", "/missing/{id}"), 1, "{dump}");
    assert_eq!(server("POST", "201", "/form"), 1, "{dump}");
    assert_eq!(m.count(SERVER, &[]), sent, "{dump}");
    m.assert_zero(
        &[
            "homelab_probe_parse_errors_total",
            "homelab_probe_ringbuf_drops_total",
            "http_server_unanswered_requests_total",
        ],
        &dump,
    );
}

#[test]
fn caddy_https_through_go_tls_uprobes_found_running() {
    if !live_or_skip("Go TLS live test", &["caddy", "curl"]) {
        return;
    }
    let caddy = Server::caddy_tls(free_port());
    let probe = Probe::start(&[s("--watch-port"), caddy.port.to_string()]);
    let log = probe.log();
    assert!(log.contains("Go /usr/bin/caddy (go1."), "{log}");
    let sent = requests(caddy.port);
    assert_counted(&probe, sent, 0);
}

#[test]
fn go_binary_flag_attaches_before_the_server_starts_and_no_tls_detaches() {
    if !live_or_skip("Go TLS live test (--go-binary)", &["caddy", "curl"]) {
        return;
    }
    let caddy_bin = which("caddy").unwrap();
    let port = free_port();
    let probe = Probe::start(&[
        s("--watch-port"),
        port.to_string(),
        s("--go-binary"),
        caddy_bin.display().to_string(),
    ]);
    assert!(probe.log().contains("uprobes"), "{}", probe.log());
    let caddy = Server::caddy_tls(port);
    let sent = requests(caddy.port);
    assert_counted(&probe, sent, 1);
    drop(probe);

    // --no-tls: no Go uprobes; the TLS connections are ignored without parse errors.
    let probe = Probe::start(&[
        s("--no-tls"),
        s("--watch-port"),
        port.to_string(),
        s("--go-binary"),
        caddy_bin.display().to_string(),
    ]);
    assert!(probe.log().contains("TLS via nothing"), "{}", probe.log());
    requests(caddy.port);
    let m = probe.settle(|_| false);
    let dump = m.dump("h");
    assert_eq!(m.count(SERVER, &[]), 0, "{dump}");
    m.assert_zero(&["homelab_probe_parse_errors_total"], &dump);
}

/// h2 over Go's TLS (what browsers speak to Caddy): the HTTP/2 parser reads the plaintext
/// of the Go uprobes. Streams in sequence on one connection, then 40 streams from two
/// connections, five at a time.
#[test]
fn caddy_h2_over_go_tls_streams() {
    if !live_or_skip("Go TLS HTTP/2 live test", &["caddy", "curl", "h2load"]) {
        return;
    }
    let caddy = Server::caddy_tls(free_port());
    let probe = Probe::start(&[s("--watch-port"), caddy.port.to_string()]);
    let url = |p: &str| format!("https://127.0.0.1:{}{p}", caddy.port);
    let h2 = ["-k", "--http2"];
    assert_eq!(
        curl(&h2, &[url("/ok"), url("/ok"), url("/nope")]),
        [200, 200, 404]
    );
    let out = std::process::Command::new(which("h2load").unwrap())
        .args(["-n", "40", "-c", "2", "-m", "5", &url("/ok")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("40 succeeded"), "{text}");
    let svc = ("service_name", "caddy");
    let m = probe.settle(|m| m.count(SERVER, &[svc]) >= 43);
    let dump = m.dump("h");
    let server = |status: &str, route: &str| {
        m.count(
            SERVER,
            &[
                svc,
                ("http_request_method", "GET"),
                ("http_response_status_code", status),
                ("http_route", route),
            ],
        )
    };
    assert_eq!(server("200", "/ok"), 42, "{dump}");
    assert_eq!(server("404", "/nope"), 1, "{dump}");
    assert_eq!(m.count(SERVER, &[]), 43, "{dump}");
    m.assert_zero(
        &[
            "homelab_probe_parse_errors_total",
            "homelab_probe_ringbuf_drops_total",
            "http_server_unanswered_requests_total",
        ],
        &dump,
    );
}
