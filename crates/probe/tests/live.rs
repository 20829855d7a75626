//! Live tests: the probe attached for real (root, eBPF) to nginx, a Python server and curl
//! on loopback, with exact assertions on what /metrics exports.

mod common;

use common::*;

#[test]
fn nginx_statuses_methods_keepalive_pipelining_sendfile_slow_and_curl_client_side() {
    if !live_or_skip("nginx live test", &["nginx", "curl", "python3"]) {
        return;
    }
    let backend = Backend::start();
    let nginx = Nginx::start(backend.port, false);
    let p = nginx.port;
    let probe = Probe::start(&[
        s("--watch-port"),
        p.to_string(),
        s("--watch-client-port"),
        p.to_string(),
        s("--watch-client-port"),
        backend.port.to_string(),
    ]);

    // Keep-alive: one curl process, three requests on one connection.
    assert_eq!(curl(&[], &urls(p, &["/ok", "/ok", "/ok"])), [200, 200, 200]);
    assert_eq!(curl(&["-I"], &urls(p, &["/ok"])), [200]);
    assert_eq!(curl(&[], &urls(p, &["/empty"])), [204]);
    assert_eq!(curl(&[], &urls(p, &["/moved", "/moved"])), [301, 301]);
    assert_eq!(curl(&[], &urls(p, &["/missing/123", "/nope"])), [404, 404]);
    assert_eq!(
        curl(&["-X", "POST", "-d", "x=1"], &urls(p, &["/boom"])),
        [500]
    );
    assert_eq!(curl(&["-X", "DELETE"], &urls(p, &["/boom"])), [500]);
    assert_eq!(curl(&["-X", "PURGE"], &urls(p, &["/ok"])).len(), 1);
    // 100 kB body sent with sendfile: only its length is seen.
    assert_eq!(curl(&[], &urls(p, &["/file", "/file"])), [200, 200]);
    // Chunked request body.
    let chunked = [
        "-X",
        "POST",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "hello",
    ];
    assert_eq!(curl(&chunked, &urls(p, &["/ok"])), [200]);
    // Slow: proxied to the backend, which sleeps 300 ms.
    assert_eq!(
        curl(&[], &urls(p, &["/slow?ms=300", "/slow?ms=300"])),
        [200, 200]
    );
    // Pipelined: three requests in one write.
    let pipelined = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /empty HTTP/1.1\r\nHost: x\r\n\r\n\
GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let answer = String::from_utf8_lossy(&raw_exchange(p, pipelined)).to_string();
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 3, "{answer}");
    // IPv6: one request to [::1].
    let v6 = u64::from(nginx.ipv6);
    if nginx.ipv6 {
        assert_eq!(curl(&["-g"], &[format!("http://[::1]:{p}/ok")]), [200]);
    } else {
        skipped("the IPv6 part: no IPv6 loopback");
    }

    let nginx_svc = ("service_name", "nginx");
    let m = probe.settle(|m| m.count(SERVER, &[nginx_svc]) >= 20 + v6);
    let server = |method: &str, status: &str, route: &str| {
        m.count(
            SERVER,
            &[
                nginx_svc,
                ("http_request_method", method),
                ("http_response_status_code", status),
                ("http_route", route),
            ],
        )
    };
    let dump = m.dump("http_");
    assert_eq!(server("GET", "200", "/ok"), 4 + v6, "{dump}");
    assert_eq!(server("HEAD", "200", "/ok"), 1, "{dump}");
    assert_eq!(server("POST", "200", "/ok"), 1, "{dump}");
    assert_eq!(
        m.count(SERVER, &[("http_request_method", "_OTHER")]),
        1,
        "{dump}"
    );
    assert_eq!(server("GET", "204", "/empty"), 2, "{dump}");
    assert_eq!(server("GET", "301", "/moved"), 2, "{dump}");
    assert_eq!(server("GET", "404", "/missing/{id}"), 1, "{dump}");
    assert_eq!(server("GET", "404", "/nope"), 1, "{dump}");
    assert_eq!(server("POST", "500", "/boom"), 1, "{dump}");
    assert_eq!(server("DELETE", "500", "/boom"), 1, "{dump}");
    assert_eq!(server("GET", "500", "/boom"), 1, "{dump}");
    assert_eq!(server("GET", "200", "/file"), 2, "{dump}");
    assert_eq!(server("GET", "200", "/slow"), 2, "{dump}");
    assert_eq!(m.count(SERVER, &[nginx_svc]), 20 + v6, "{dump}");
    // The slow requests land in the (0.25, 0.5] bucket.
    let slow = [nginx_svc, ("http_route", "/slow")];
    let bucket = |le: &str| {
        let mut l = slow.to_vec();
        l.push(("le", le));
        m.sum(&format!("{SERVER}_bucket"), &l)
    };
    assert_eq!(bucket("0.25"), 0.0, "{dump}");
    assert_eq!(bucket("0.5"), 2.0, "{dump}");
    // Fast ones do not.
    let ok_fast = [nginx_svc, ("http_route", "/ok"), ("le", "0.25")];
    assert_eq!(
        m.sum(&format!("{SERVER}_bucket"), &ok_fast),
        7.0 + v6 as f64,
        "{dump}"
    );

    // Client side: curl's 17 (+1) requests to nginx, nginx's 2 calls to the backend.
    let port = p.to_string();
    let curl_calls = [("service_name", "curl"), ("server_port", port.as_str())];
    assert_eq!(m.count(CLIENT, &curl_calls), 17 + v6, "{dump}");
    let mut curl_v6 = curl_calls.to_vec();
    curl_v6.push(("server_address", "::1"));
    assert_eq!(m.count(CLIENT, &curl_v6), v6, "{dump}");
    let mut curl_500 = curl_calls.to_vec();
    curl_500.push(("http_response_status_code", "500"));
    assert_eq!(m.count(CLIENT, &curl_500), 2, "{dump}");
    let bport = backend.port.to_string();
    let upstream = [
        nginx_svc,
        ("server_port", bport.as_str()),
        ("server_address", "127.0.0.1"),
        ("http_request_method", "GET"),
        ("http_response_status_code", "200"),
    ];
    assert_eq!(m.count(CLIENT, &upstream), 2, "{dump}");
    assert_eq!(m.sum("homelab_probe_ringbuf_drops_total", &[]), 0.0);
    assert_eq!(m.sum("http_server_active_requests", &[nginx_svc]), 0.0);
}

#[test]
fn python_server_config_file_routes_chunked_slow_and_active_requests() {
    if !live_or_skip("python live test", &["curl", "python3"]) {
        return;
    }
    let backend = Backend::start();
    let p = backend.port;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("probe.toml");
    std::fs::write(
        &config,
        format!("[[watch]]\nservice = \"pyapp\"\nports = [{p}]\nroutes = [\"/status/{{code}}\"]\n"),
    )
    .unwrap();
    let probe = Probe::start(&[s("--config"), config.display().to_string()]);

    assert_eq!(
        curl(
            &[],
            &urls(p, &["/slow?ms=120", "/slow?ms=120", "/slow?ms=120"])
        ),
        [200; 3]
    );
    assert_eq!(
        curl(&[], &urls(p, &["/chunked?n=5", "/chunked?n=40"])),
        [200, 200]
    );
    let chunked = [
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "some body",
    ];
    assert_eq!(curl(&chunked, &urls(p, &["/echo"])), [201]);
    assert_eq!(curl(&["-d", "a=1"], &urls(p, &["/echo"])), [201]);
    assert_eq!(
        curl(&[], &urls(p, &["/status/503", "/status/404"])),
        [503, 404]
    );
    assert_eq!(curl(&["-I"], &urls(p, &["/status/200"])), [200]);
    let pipelined = b"GET /pipelined HTTP/1.1\r\nHost: x\r\n\r\n\
GET /pipelined HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let answer = String::from_utf8_lossy(&raw_exchange(p, pipelined)).to_string();
    assert_eq!(answer.matches("HTTP/1.1 200").count(), 2, "{answer}");

    let svc = ("service_name", "pyapp");
    let m = probe.settle(|m| m.count(SERVER, &[svc]) >= 12);
    let dump = m.dump("http_");
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
    assert_eq!(server("GET", "200", "/slow"), 3, "{dump}");
    assert_eq!(server("GET", "200", "/chunked"), 2, "{dump}");
    assert_eq!(server("POST", "201", "/echo"), 2, "{dump}");
    assert_eq!(server("GET", "503", "/status/{code}"), 1, "{dump}");
    assert_eq!(server("GET", "404", "/status/{code}"), 1, "{dump}");
    assert_eq!(server("HEAD", "200", "/status/{code}"), 1, "{dump}");
    assert_eq!(server("GET", "200", "/pipelined"), 2, "{dump}");
    assert_eq!(m.count(SERVER, &[svc]), 12, "{dump}");
    let bucket = |le: &str| {
        m.sum(
            &format!("{SERVER}_bucket"),
            &[svc, ("http_route", "/slow"), ("le", le)],
        )
    };
    assert_eq!(bucket("0.1"), 0.0, "{dump}");
    assert_eq!(bucket("0.25"), 3.0, "{dump}");

    // A request in flight shows in http_server_active_requests.
    let slow = std::thread::spawn(move || curl(&[], &urls(p, &["/slow?ms=2500"])));
    let m = probe.settle(|m| m.sum("http_server_active_requests", &[svc]) >= 1.0);
    assert_eq!(m.sum("http_server_active_requests", &[svc]), 1.0);
    assert_eq!(slow.join().unwrap(), [200]);
    let m = probe.settle(|m| m.count(SERVER, &[svc]) >= 13);
    assert_eq!(m.sum("http_server_active_requests", &[svc]), 0.0);
    assert_eq!(m.count(SERVER, &[svc]), 13);
}

#[test]
fn connections_open_before_start_are_seeded() {
    use std::io::{Read, Write};
    if !live_or_skip("seeding live test", &["python3"]) {
        return;
    }
    let backend = Backend::start();
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", backend.port)).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut exchange = |path: &str| {
        write!(conn, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut got = vec![];
        let mut buf = [0u8; 4096];
        // backend answers "ok\n" with Content-Length: 3
        while !(got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"ok\n")) {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "closed");
            got.extend_from_slice(&buf[..n]);
        }
    };
    exchange("/before");
    let probe = Probe::start(&[s("--watch-port"), backend.port.to_string()]);
    assert!(
        probe.log().contains("1 connection(s) already open"),
        "{}",
        probe.log()
    );
    exchange("/after");
    exchange("/after");
    let m = probe.settle(|m| m.count(SERVER, &[("http_route", "/after")]) >= 2);
    assert_eq!(
        m.count(SERVER, &[("http_route", "/after")]),
        2,
        "{}",
        m.dump("http_")
    );
    assert_eq!(m.count(SERVER, &[("http_route", "/before")]), 0);
}

#[test]
fn garbage_and_connection_floods_do_not_break_counting() {
    use std::io::Write;
    if !live_or_skip("garbage live test", &["nginx", "curl", "python3"]) {
        return;
    }
    let backend = Backend::start();
    let nginx = Nginx::start(backend.port, false);
    let p = nginx.port;
    let probe = Probe::start(&[
        s("--watch-port"),
        p.to_string(),
        s("--max-connections"),
        s("256"),
    ]);
    // Random bytes (a binary protocol on the watched port).
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut random = |n: usize| {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect::<Vec<u8>>()
    };
    for i in 0..20 {
        raw_exchange(p, &random(64 + i * 300));
    }
    // A TLS ClientHello on the plaintext port.
    let hello = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x00\x01\x02\x03\x04\x05\x06\x07\
\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f";
    raw_exchange(p, hello);
    // Half requests, then close.
    for _ in 0..10 {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", p)).unwrap();
        c.write_all(b"GET /half HTTP/1.1\r\nHost: x\r\nContent-Le")
            .unwrap();
    }
    // A request line longer than the capture, then a truncated body.
    let long = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(5000)
    );
    raw_exchange(p, long.as_bytes());
    raw_exchange(
        p,
        b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",
    );
    // A flood of 2,000 connections, 500 open at a time (the table holds 256).
    for _ in 0..4 {
        let conns: Vec<_> = (0..500)
            .filter_map(|i| {
                let mut c = std::net::TcpStream::connect(("127.0.0.1", p)).ok()?;
                if i % 2 == 0 {
                    let _ = c.write_all(b"GET /flood HTTP/1.1\r\nHost: x\r\n");
                }
                Some(c)
            })
            .collect();
        assert!(
            conns.len() >= 490,
            "flood connections refused: {}",
            conns.len()
        );
        drop(conns);
    }
    // Still alive, and still exact.
    let before = probe.scrape();
    let ok_before = before.count(
        SERVER,
        &[("http_route", "/ok"), ("http_response_status_code", "200")],
    );
    assert_eq!(curl(&[], &urls(p, &["/ok"; 10])), [200; 10]);
    let m = probe.settle(|m| {
        m.count(
            SERVER,
            &[("http_route", "/ok"), ("http_response_status_code", "200")],
        ) >= ok_before + 10
    });
    let dump = m.dump("h");
    assert_eq!(
        m.count(
            SERVER,
            &[("http_route", "/ok"), ("http_response_status_code", "200")]
        ),
        ok_before + 10,
        "{dump}"
    );
    assert!(
        m.sum("homelab_probe_parse_errors_total", &[]) >= 20.0,
        "{dump}"
    );
    assert!(
        m.sum("homelab_probe_evicted_connections_total", &[]) > 0.0,
        "{dump}"
    );
    assert!(
        m.sum("homelab_probe_tracked_connections", &[]) <= 256.0,
        "{dump}"
    );
    m.assert_zero(&["homelab_probe_ringbuf_drops_total"], &dump);
    let mut probe = probe;
    let status = probe.proc.terminate().expect("probe stops on SIGTERM");
    assert!(
        status.success(),
        "probe exit status {status}: {}",
        probe.log()
    );
    assert!(probe.log().contains("detached"), "{}", probe.log());
}

#[test]
fn tls_plaintext_through_libssl_uprobes() {
    if !live_or_skip("TLS live test", &["nginx", "curl", "openssl", "python3"]) {
        return;
    }
    let backend = Backend::start();
    let nginx = Nginx::start(backend.port, true);
    let tp = nginx.tls_port.unwrap();
    let probe = Probe::start(&[
        s("--watch-port"),
        tp.to_string(),
        s("--watch-client-port"),
        tp.to_string(),
    ]);
    assert!(!probe.log().contains("TLS via nothing"), "{}", probe.log());
    let https: Vec<String> = ["/ok", "/ok", "/ok", "/nope"]
        .iter()
        .map(|p| format!("https://127.0.0.1:{tp}{p}"))
        .collect();
    assert_eq!(curl(&["-k"], &https), [200, 200, 200, 404]);
    let m = probe.settle(|m| m.count(SERVER, &[("service_name", "nginx")]) >= 4);
    let dump = m.dump("h");
    let ok = [
        ("service_name", "nginx"),
        ("http_route", "/ok"),
        ("http_response_status_code", "200"),
    ];
    assert_eq!(m.count(SERVER, &ok), 3, "{dump}");
    assert_eq!(m.count(SERVER, &[("service_name", "nginx")]), 4, "{dump}");
    let port = tp.to_string();
    let client = [("service_name", "curl"), ("server_port", port.as_str())];
    assert_eq!(m.count(CLIENT, &client), 4, "{dump}");
}

#[test]
fn systemd_unit_watch_follows_the_cgroup_and_names_the_service() {
    if !live_or_skip("unit (cgroup) live test", &["curl", "python3"]) {
        return;
    }
    let backend = Backend::start();
    let unit = format!("hlprobe-{}.service", backend.port);
    let relative = format!("hlprobe-test.slice/{unit}");
    let Some(_cgroup) = InCgroup::enter(&relative, backend.proc.0.id()) else {
        return;
    };
    // Without ".service", as systemctl accepts it.
    let stem = unit.trim_end_matches(".service").to_string();
    let probe = Probe::start(&[s("--watch-unit"), stem.clone()]);
    let matched = probe.scrape().sum(
        "homelab_probe_watch_matched_cgroups",
        &[("kind", "unit"), ("name", unit.as_str())],
    );
    assert_eq!(matched, 1.0, "{}", probe.log());
    assert!(
        !probe.log().contains("matches no cgroup"),
        "{}",
        probe.log()
    );
    let p = backend.port;
    assert_eq!(
        curl(&[], &urls(p, &["/ok", "/ok", "/status/500"])),
        [200, 200, 500]
    );
    let name = unit.trim_end_matches(".service").to_string();
    let svc = ("service_name", name.as_str());
    let m = probe.settle(|m| m.count(SERVER, &[svc]) >= 3);
    let dump = m.dump("http_");
    let ok = [
        svc,
        ("http_route", "/ok"),
        ("http_response_status_code", "200"),
    ];
    assert_eq!(m.count(SERVER, &ok), 2, "{dump}");
    let err = [
        svc,
        ("http_route", "/status/{id}"),
        ("http_response_status_code", "500"),
    ];
    assert_eq!(m.count(SERVER, &err), 1, "{dump}");
    assert_eq!(m.count(SERVER, &[svc]), 3, "{dump}");
}

#[test]
fn container_watch_finds_the_cgroup_by_name() {
    if !live_or_skip("container (cgroup) live test", &["curl", "python3"]) {
        return;
    }
    let backend = Backend::start();
    let name = format!("hlprobe-web-{}", backend.port);
    let id = format!("{:064x}", u64::from(backend.port) * 0x9E37_79B9);
    // A Docker data-root as the daemon leaves it: containers/<id>/config.v2.json.
    let docker = tempfile::tempdir().unwrap();
    let cdir = docker.path().join("containers").join(&id);
    std::fs::create_dir_all(&cdir).unwrap();
    std::fs::write(
        cdir.join("config.v2.json"),
        format!(r#"{{"ID":"{id}","Name":"/{name}"}}"#),
    )
    .unwrap();
    let relative = format!("hlprobe-test.slice/docker-{id}.scope");
    let Some(_cgroup) = InCgroup::enter(&relative, backend.proc.0.id()) else {
        return;
    };
    let probe = Probe::start(&[
        s("--watch-container"),
        name.clone(),
        s("--docker-root"),
        docker.path().display().to_string(),
    ]);
    let p = backend.port;
    assert_eq!(curl(&[], &urls(p, &["/ok", "/chunked"])), [200, 200]);
    let svc = ("service_name", name.as_str());
    let m = probe.settle(|m| m.count(SERVER, &[svc]) >= 2);
    let dump = m.dump("http_");
    assert_eq!(m.count(SERVER, &[svc, ("http_route", "/ok")]), 1, "{dump}");
    assert_eq!(
        m.count(SERVER, &[svc, ("http_route", "/chunked")]),
        1,
        "{dump}"
    );
    assert_eq!(m.count(SERVER, &[]), 2, "{dump}");
}

#[test]
fn peeked_bytes_are_not_counted_as_requests() {
    if !live_or_skip("MSG_PEEK live test", &["curl", "python3"]) {
        return;
    }
    let port = free_port();
    let server = Proc(
        std::process::Command::new("python3")
            .arg(fixture("peek_server.py"))
            .arg(port.to_string())
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("start peek_server.py"),
    );
    wait_port(port, "peek_server.py");
    let probe = Probe::start(&[s("--no-tls"), s("--watch-port"), port.to_string()]);
    assert_eq!(curl(&[], &urls(port, &["/peek"; 5])), [200; 5]);
    let m = probe.settle(|m| m.count(SERVER, &[]) >= 5);
    let dump = m.dump("h");
    let ok = [
        ("http_request_method", "GET"),
        ("http_response_status_code", "200"),
        ("http_route", "/peek"),
    ];
    assert_eq!(m.count(SERVER, &ok), 5, "{dump}");
    assert_eq!(m.count(SERVER, &[]), 5, "{dump}");
    m.assert_zero(&["homelab_probe_parse_errors_total"], &dump);
    drop(server);
}

#[test]
fn requests_left_unanswered_at_the_keepalive_limit_are_not_errors() {
    if !live_or_skip("keep-alive limit live test", &["nginx", "python3"]) {
        return;
    }
    let backend = Backend::start();
    let nginx = Nginx::start(backend.port, false);
    let p = nginx.three_requests_port;
    let probe = Probe::start(&[s("--no-tls"), s("--watch-port"), p.to_string()]);
    // Five pipelined requests in one write: nginx reads them all, answers three (its
    // keepalive_requests) and closes.
    let five = "GET /pipelined HTTP/1.1\r\nHost: x\r\n\r\n".repeat(5);
    let answer = String::from_utf8_lossy(&raw_exchange(p, five.as_bytes())).to_string();
    assert_eq!(answer.matches("HTTP/1.1 200").count(), 3, "{answer}");
    let unanswered = "http_server_unanswered_requests_total";
    let m = probe.settle(|m| m.sum(unanswered, &[]) >= 2.0);
    let dump = m.dump("h");
    let route = [
        ("service_name", "nginx"),
        ("http_request_method", "GET"),
        ("http_route", "/pipelined"),
    ];
    assert_eq!(m.sum(unanswered, &route), 2.0, "{dump}");
    let mut ok = route.to_vec();
    ok.push(("http_response_status_code", "200"));
    assert_eq!(m.count(SERVER, &ok), 3, "{dump}");
    assert_eq!(m.count(SERVER, &[]), 3, "{dump}");
}

#[test]
fn no_tls_leaves_tls_ports_silent() {
    if !live_or_skip(
        "--no-tls live test",
        &["nginx", "curl", "openssl", "python3"],
    ) {
        return;
    }
    let backend = Backend::start();
    let nginx = Nginx::start(backend.port, true);
    let tp = nginx.tls_port.unwrap();
    let probe = Probe::start(&[
        s("--no-tls"),
        s("--watch-port"),
        tp.to_string(),
        s("--watch-client-port"),
        tp.to_string(),
        s("--watch-port"),
        nginx.port.to_string(),
    ]);
    let https: Vec<String> = ["/ok", "/ok", "/nope"]
        .iter()
        .map(|p| format!("https://127.0.0.1:{tp}{p}"))
        .collect();
    assert_eq!(curl(&["-k"], &https), [200, 200, 404]);
    // One plaintext request afterwards: when it is counted, the TLS events were handled.
    assert_eq!(curl(&[], &urls(nginx.port, &["/ok"])), [200]);
    let m = probe.settle(|m| m.count(SERVER, &[]) >= 1);
    let dump = m.dump("h");
    assert_eq!(m.count(SERVER, &[]), 1, "{dump}");
    assert_eq!(m.count(CLIENT, &[]), 0, "{dump}");
    m.assert_zero(
        &[
            "http_server_unanswered_requests_total",
            "homelab_probe_parse_errors_total",
        ],
        &dump,
    );
}

#[test]
fn watches_that_match_nothing_say_so() {
    if !live_or_skip("unmatched watches live test", &[]) {
        return;
    }
    let port = free_port();
    let unit = format!("hlprobe-absent-{port}");
    let container = format!("hlprobe-absent-{port}");
    let docker = tempfile::tempdir().unwrap();
    let probe = Probe::start(&[
        s("--no-tls"),
        s("--watch-unit"),
        unit.clone(),
        s("--watch-container"),
        container.clone(),
        s("--docker-root"),
        docker.path().display().to_string(),
    ]);
    let log = probe.log();
    assert!(
        log.contains(&format!(
            "warning: unit {unit}.service matches no cgroup, so this watch sees nothing"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("warning: container {container} matches no cgroup")),
        "{log}"
    );
    let m = probe.scrape();
    let gauge = "homelab_probe_watch_matched_cgroups";
    let unit_service = format!("{unit}.service");
    assert_eq!(
        m.sum(gauge, &[("kind", "unit"), ("name", &unit_service)]),
        0.0
    );
    assert_eq!(
        m.sum(gauge, &[("kind", "container"), ("name", &container)]),
        0.0
    );
    assert_eq!(m.0.iter().filter(|(n, _, _)| n == gauge).count(), 2);
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The access log lines printed so far, parsed, once `n` are there (10 s at most).
fn access_lines(probe: &Probe, n: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = probe.stdout();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        if lines.len() >= n || std::time::Instant::now() > deadline {
            // Once more after a pause: lines beyond `n` would be too many.
            std::thread::sleep(std::time::Duration::from_millis(300));
            return probe
                .stdout()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn access_log_prints_one_exact_line_per_answered_request() {
    if !live_or_skip("access log live test", &["curl", "python3"]) {
        return;
    }
    let backend = Backend::start();
    let p = backend.port;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("probe.toml");
    std::fs::write(
        &config,
        format!(
            "access_log = true\n[[watch]]\nservice = \"pyapp\"\nports = [{p}]\n\
             routes = [\"/status/{{code}}\"]\n[[watch]]\nclient_ports = [{p}]\n"
        ),
    )
    .unwrap();
    // Spans go nowhere (a closed port): the trace ids are still assigned and logged.
    let otlp = format!("http://127.0.0.1:{}", free_port());
    let probe = Probe::start(&[
        s("--config"),
        config.display().to_string(),
        s("--otlp-endpoint"),
        otlp,
    ]);

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("traceparent: 00-{trace_id}-00f067aa0ba902b7-01");
    assert_eq!(
        curl(
            &["-H", &traceparent],
            &urls(p, &["/status/404?token=secret", "/slow?ms=150"])
        ),
        [404, 200]
    );
    assert_eq!(curl(&["-d", "a=1"], &urls(p, &["/echo"])), [201]);

    let lines = access_lines(&probe, 6);
    let side = |name: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["side"] == name).collect()
    };
    let (server, client) = (side("server"), side("client"));
    assert_eq!((server.len(), client.len()), (3, 3), "{lines:#?}");

    // Fields that vary from run to run, checked apart, then the rest exactly.
    let fixed = |l: &serde_json::Value| {
        let mut l = l.clone();
        let o = l.as_object_mut().unwrap();
        let peer = o.remove("peer").unwrap();
        let ms = o.remove("duration_ms").unwrap().as_f64().unwrap();
        o.remove("trace_id");
        (l, peer.as_str().unwrap().to_string(), ms)
    };
    let expected_server = [
        serde_json::json!({"service": "pyapp", "side": "server", "method": "GET", "route": "/status/{code}", "path": "/status/404", "status": 404}),
        serde_json::json!({"service": "pyapp", "side": "server", "method": "GET", "route": "/slow", "path": "/slow", "status": 200}),
        serde_json::json!({"service": "pyapp", "side": "server", "method": "POST", "route": "/echo", "path": "/echo", "status": 201}),
    ];
    for (line, expected) in server.iter().zip(&expected_server) {
        let (rest, peer, ms) = fixed(line);
        assert_eq!(&rest, expected, "{line}");
        let (addr, port) = peer.rsplit_once(':').unwrap();
        assert_eq!(addr, "127.0.0.1", "{line}");
        assert_ne!(port.parse::<u16>().unwrap(), p, "the client's port: {line}");
        assert!(ms > 0.0, "{line}");
    }
    // The server slept 150 ms; the curl client saw at least as long.
    assert!(fixed(server[1]).2 >= 150.0, "{}", server[1]);
    for (line, expected) in client.iter().zip(&expected_server) {
        let (rest, peer, ms) = fixed(line);
        let mut expected = expected.clone();
        let o = expected.as_object_mut().unwrap();
        o.insert("service".into(), "curl".into());
        o.insert("side".into(), "client".into());
        o.remove("route");
        assert_eq!(rest, expected, "{line}");
        assert_eq!(peer, format!("127.0.0.1:{p}"), "{line}");
        assert!(ms > 0.0, "{line}");
    }
    assert!(fixed(client[1]).2 >= 150.0, "{}", client[1]);
    // The traceparent continues its trace on both ends; without one a new trace starts.
    for l in [server[0], server[1], client[0], client[1]] {
        assert_eq!(l["trace_id"], trace_id, "{l}");
    }
    for l in [server[2], client[2]] {
        let id = l["trace_id"].as_str().unwrap();
        assert!(id.len() == 32 && id != trace_id, "{l}");
    }
    print!("{}", probe.stdout());
    let m = probe.scrape();
    assert_eq!(m.sum("homelab_probe_access_log_lines_total", &[]), 6.0);
    assert_eq!(m.sum("homelab_probe_access_log_suppressed_total", &[]), 0.0);
}

#[test]
fn access_log_writes_at_most_its_lines_per_second() {
    if !live_or_skip("access log limit live test", &["curl", "python3"]) {
        return;
    }
    let backend = Backend::start();
    let p = backend.port;
    let probe = Probe::start(&[
        s("--watch-port"),
        p.to_string(),
        s("--access-log"),
        s("--access-log-max-per-second"),
        s("3"),
    ]);
    let paths = vec!["/x"; 10];
    let before = monotonic_ns();
    assert_eq!(curl(&[], &urls(p, &paths)), [200; 10]);
    let after = monotonic_ns();
    // Each second of request end times (the probe's monotonic clock) gets 3 lines at most.
    let seconds = after / 1_000_000_000 - before / 1_000_000_000 + 1;
    let m = probe.settle(|m| {
        m.sum("homelab_probe_access_log_lines_total", &[])
            + m.sum("homelab_probe_access_log_suppressed_total", &[])
            >= 10.0
    });
    let written = m.sum("homelab_probe_access_log_lines_total", &[]);
    let suppressed = m.sum("homelab_probe_access_log_suppressed_total", &[]);
    assert_eq!(written + suppressed, 10.0);
    assert!(
        written >= 3.0 && written <= 3.0 * seconds as f64,
        "{written} in {seconds} s"
    );
    let lines = access_lines(&probe, written as usize);
    assert_eq!(lines.len() as f64, written);
    println!("10 requests in {seconds} s of end times: {written} lines, {suppressed} suppressed");
}
