//! Live tests: thousands of short connections to multi-threaded servers, where one thread
//! closes a descriptor while another accepts a connection that reuses its number. Every
//! request must be counted once.

mod common;

use common::*;

fn exact_under_churn(server: Server, service: &str) {
    const REQUESTS: u32 = 3000;
    let probe = Probe::start(&[
        "--no-tls".to_string(),
        "--watch-port".to_string(),
        server.port.to_string(),
    ]);
    let answered = ab(server.port, REQUESTS, 20, false);
    assert_eq!(answered, u64::from(REQUESTS), "{service} failed requests");
    let svc = ("service_name", service);
    let m = probe.settle(|m| m.count(SERVER, &[svc]) >= answered);
    let dump = m.dump("h");
    let ok = [svc, ("http_response_status_code", "200")];
    assert_eq!(m.count(SERVER, &ok), answered, "{dump}");
    assert_eq!(m.count(SERVER, &[]), answered, "{dump}");
    m.assert_zero(
        &[
            "homelab_probe_parse_errors_total",
            "homelab_probe_ringbuf_drops_total",
            "homelab_probe_tracked_connections",
        ],
        &dump,
    );

    // With keep-alive too: twenty connections carrying every request, each one parsed.
    let answered = answered + ab(server.port, REQUESTS, 20, true);
    assert_eq!(
        answered,
        2 * u64::from(REQUESTS),
        "{service} failed requests"
    );
    let m = probe.settle(|m| m.count(SERVER, &[svc]) >= answered);
    let dump = m.dump("h");
    assert_eq!(m.count(SERVER, &ok), answered, "{dump}");
    assert_eq!(m.count(SERVER, &[]), answered, "{dump}");
    let unanswered = m.sum("http_server_unanswered_requests_total", &[]);
    assert_eq!(unanswered, 0.0, "{dump}");
    let parse_errors = m.sum("homelab_probe_parse_errors_total", &[]);
    assert_eq!(parse_errors, 0.0, "{dump}");
}

#[test]
fn caddy_under_connection_churn_is_counted_exactly() {
    if !live_or_skip("caddy churn test", &["caddy", "ab"]) {
        return;
    }
    exact_under_churn(Server::caddy(), "caddy");
}

#[test]
fn haproxy_under_connection_churn_is_counted_exactly() {
    if !live_or_skip("haproxy churn test", &["haproxy", "ab"]) {
        return;
    }
    exact_under_churn(Server::haproxy(), "haproxy");
}
