//! Live tests of the spans and the live-requests view: the probe attached for real (root,
//! eBPF) to a Python server and curl on loopback, its OTLP/HTTP exports received here and
//! decoded with the official protobuf definitions (opentelemetry-proto).

mod common;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::*;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::any_value,
    trace::v1::{span::SpanKind, status::StatusCode, Span},
};
use prost::Message as _;

/// A span as received: its resource's service.name, the span, its attributes as text.
#[derive(Debug, Clone)]
struct Got {
    service: String,
    span: Span,
    attrs: BTreeMap<String, String>,
}

impl Got {
    fn attr(&self, key: &str) -> &str {
        self.attrs.get(key).map_or("", String::as_str)
    }
    fn status(&self) -> i32 {
        self.span.status.as_ref().map_or(0, |s| s.code)
    }
    fn duration_ms(&self) -> f64 {
        (self.span.end_time_unix_nano - self.span.start_time_unix_nano) as f64 / 1e6
    }
}

/// An OTLP/HTTP receiver on loopback: every POST body is decoded as an
/// ExportTraceServiceRequest; anything else fails the test.
struct Receiver {
    port: u16,
    spans: Arc<Mutex<Vec<Got>>>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let spans = Arc::new(Mutex::new(vec![]));
        let errors = Arc::new(Mutex::new(vec![]));
        let (s, e) = (spans.clone(), errors.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (s, e) = (s.clone(), e.clone());
                std::thread::spawn(move || serve(conn, &s, &e));
            }
        });
        Receiver {
            port,
            spans,
            errors,
        }
    }

    fn spans(&self) -> Vec<Got> {
        let errors = self.errors.lock().unwrap();
        assert!(errors.is_empty(), "receiver: {errors:?}");
        self.spans.lock().unwrap().clone()
    }
}

fn serve(conn: TcpStream, spans: &Mutex<Vec<Got>>, errors: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.insert(k.to_ascii_lowercase(), v.trim().to_string());
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        if line.trim_end() != "POST /v1/traces HTTP/1.1"
            || headers.get("content-type").map(String::as_str) != Some("application/x-protobuf")
        {
            errors
                .lock()
                .unwrap()
                .push(format!("unexpected request {line:?} {headers:?}"));
        }
        match ExportTraceServiceRequest::decode(&body[..]) {
            Ok(req) => {
                let mut got = spans.lock().unwrap();
                for rs in req.resource_spans {
                    let service = rs
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|kv| kv.key == "service.name")
                        .map(|kv| text(kv.value.as_ref().and_then(|v| v.value.as_ref())))
                        .unwrap_or_default();
                    for ss in rs.scope_spans {
                        for span in ss.spans {
                            let attrs = span
                                .attributes
                                .iter()
                                .map(|kv| {
                                    (
                                        kv.key.clone(),
                                        text(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                                    )
                                })
                                .collect();
                            got.push(Got {
                                service: service.clone(),
                                span,
                                attrs,
                            });
                        }
                    }
                }
            }
            Err(e) => errors.lock().unwrap().push(format!("decode: {e}")),
        }
        let _ = conn.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n",
        );
    }
}

fn text(v: Option<&any_value::Value>) -> String {
    match v {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The probe's /requests, parsed.
fn live_requests(probe: &Probe) -> Vec<serde_json::Value> {
    serde_json::from_str(&http_get(probe.metrics_port, "/requests")).unwrap()
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[test]
fn spans_over_otlp_and_the_live_requests_view() {
    if !live_or_skip("traces live test", &["curl", "python3"]) {
        return;
    }
    let receiver = Receiver::start();
    let backend = Backend::start();
    let p = backend.port;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("probe.toml");
    std::fs::write(
        &config,
        format!(
            "[[watch]]\nservice = \"pyapp\"\nports = [{p}]\nroutes = [\"/status/{{code}}\"]\n\
             [[watch]]\nservice = \"caller\"\nclient_ports = [{p}]\n\
             [traces]\nendpoint = \"http://127.0.0.1:{}\"\nbatch_timeout_ms = 200\n",
            receiver.port
        ),
    )
    .unwrap();
    let probe = Probe::start(&[
        "--no-tls".to_string(),
        "--config".to_string(),
        config.display().to_string(),
    ]);
    let url = move |path: &str| vec![format!("http://127.0.0.1:{p}{path}")];
    let before = unix_now_ns();

    assert_eq!(curl(&[], &url("/slow?ms=200&token=secret")), [200]);
    assert_eq!(curl(&[], &url("/status/503")), [503]);
    assert_eq!(curl(&[], &url("/status/404")), [404]);
    let traceparent = format!("traceparent: 00-{TRACE}-{PARENT}-01");
    assert_eq!(curl(&["-H", &traceparent], &url("/status/200")), [200]);

    // A slow request shows in /requests while in flight, on both ends, and not after.
    let slow = std::thread::spawn(move || curl(&[], &url("/slow?ms=2500&secret=1")));
    let deadline = Instant::now() + Duration::from_secs(10);
    let live = loop {
        let live = live_requests(&probe);
        if live.len() >= 2 || Instant::now() > deadline {
            break live;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(live.len(), 2, "{live:?}");
    let by_side = |side: &str| live.iter().find(|r| r["side"] == side).unwrap().clone();
    let (server, client) = (by_side("server"), by_side("client"));
    assert_eq!(server["service"], "pyapp");
    assert_eq!(server["method"], "GET");
    assert_eq!(server["path"], "/slow", "no query string");
    assert!(server["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(server["age_seconds"].as_f64().unwrap() < 2.5);
    assert_eq!(client["service"], "caller");
    assert_eq!(client["server"], format!("127.0.0.1:{p}"));
    let out = Command::new(PROBE)
        .args(["requests", "--url"])
        .arg(format!("http://127.0.0.1:{}", probe.metrics_port))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("SERVICE  SIDE"), "{table}");
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains(" GET ") && l.contains(" /slow ")),
        "{table}"
    );
    assert_eq!(slow.join().unwrap(), [200]);
    let live = live_requests(&probe);
    assert!(live.is_empty(), "{live:?}");

    // Every answered request, once on each end: 5 SERVER spans and 5 CLIENT spans.
    let deadline = Instant::now() + Duration::from_secs(15);
    while receiver.spans.lock().unwrap().len() < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let spans = receiver.spans();
    let after = unix_now_ns();
    let dump = format!("{spans:#?}");
    assert_eq!(spans.len(), 10, "{dump}");
    let m = probe.scrape();
    assert_eq!(m.sum("homelab_probe_spans_exported_total", &[]), 10.0);
    assert_eq!(m.sum("homelab_probe_spans_dropped_total", &[]), 0.0);
    let kind =
        |k: SpanKind| -> Vec<&Got> { spans.iter().filter(|g| g.span.kind == k as i32).collect() };
    let (servers, clients) = (kind(SpanKind::Server), kind(SpanKind::Client));
    assert_eq!((servers.len(), clients.len()), (5, 5), "{dump}");
    assert!(servers.iter().all(|g| g.service == "pyapp"));
    assert!(clients.iter().all(|g| g.service == "caller"));
    for g in &spans {
        assert!(
            g.span.start_time_unix_nano >= before && g.span.end_time_unix_nano <= after,
            "{g:?} outside [{before}, {after}]"
        );
        assert!(!format!("{:?}", g.attrs).contains("secret"), "{g:?}");
        assert_eq!(g.attr("http.request.method"), "GET");
        assert!(g.attr("user_agent.original").starts_with("curl/"), "{g:?}");
        assert_eq!(g.attr("server.address"), "127.0.0.1");
        assert_eq!(g.attr("server.port"), p.to_string());
        assert_eq!(g.attr("network.peer.address"), "127.0.0.1");
    }
    let server = |path: &str| -> Vec<&Got> {
        servers
            .iter()
            .copied()
            .filter(|g| g.attr("url.path") == path)
            .collect()
    };
    let client = |path: &str| -> Vec<&Got> {
        let full = format!("http://127.0.0.1:{p}{path}");
        clients
            .iter()
            .copied()
            .filter(|g| g.attr("url.full") == full)
            .collect()
    };
    let slow: Vec<f64> = server("/slow").iter().map(|g| g.duration_ms()).collect();
    assert_eq!(slow.len(), 2, "{dump}");
    assert!(
        slow.iter().any(|&d| (200.0..2500.0).contains(&d)),
        "{slow:?}"
    );
    assert!(slow.iter().any(|&d| d >= 2500.0), "{slow:?}");
    for g in server("/slow") {
        assert_eq!(g.span.name, "GET /slow");
        assert_eq!(g.attr("http.route"), "/slow");
        assert_eq!(g.status(), StatusCode::Unset as i32);
        assert_eq!(g.attr("client.address"), "127.0.0.1");
        assert_ne!(g.attr("network.peer.port"), p.to_string());
    }
    for g in client("/slow") {
        assert!(g.duration_ms() >= 200.0, "{g:?}");
        assert_eq!(g.span.name, "GET");
        assert_eq!(g.attr("network.peer.port"), p.to_string());
    }
    let one = |v: Vec<&Got>| -> Got {
        assert_eq!(v.len(), 1, "{v:#?}");
        v[0].clone()
    };
    let s503 = one(server("/status/503"));
    assert_eq!(s503.span.name, "GET /status/{code}");
    assert_eq!(s503.attr("http.response.status_code"), "503");
    assert_eq!(s503.status(), StatusCode::Error as i32);
    assert_eq!(s503.attr("error.type"), "503");
    assert_eq!(
        one(client("/status/503")).status(),
        StatusCode::Error as i32
    );
    let s404 = one(server("/status/404"));
    assert_eq!(
        s404.status(),
        StatusCode::Unset as i32,
        "4xx: the client's error"
    );
    assert_eq!(
        one(client("/status/404")).status(),
        StatusCode::Error as i32
    );

    // curl -> pyapp is a local hop: each server span is a child of the client span of the
    // same request, in its trace.
    for path in ["/slow", "/status/503", "/status/404", "/status/200"] {
        let (mut sv, mut cl) = (server(path), client(path));
        sv.sort_by_key(|g| g.span.start_time_unix_nano);
        cl.sort_by_key(|g| g.span.start_time_unix_nano);
        assert_eq!(sv.len(), cl.len());
        for (s, c) in sv.iter().zip(&cl) {
            assert_eq!(
                hex(&s.span.parent_span_id),
                hex(&c.span.span_id),
                "{s:?}\n{c:?}"
            );
            assert_eq!(s.span.trace_id, c.span.trace_id);
            // No nesting asserted: times are taken at syscall exit, so the server's read
            // can return before the client's write does (docs/probe.md).
        }
    }
    // traceparent (sent by curl) continues the trace: the client span's parent is the
    // header's, the server span is the client span's child.
    let c200 = one(client("/status/200"));
    assert_eq!(hex(&c200.span.trace_id), TRACE, "{c200:?}");
    assert_eq!(hex(&c200.span.parent_span_id), PARENT, "{c200:?}");
    assert_eq!(hex(&one(server("/status/200")).span.trace_id), TRACE);
    let other_clients: Vec<&Got> = clients
        .iter()
        .copied()
        .filter(|g| !g.attr("url.full").ends_with("/200"))
        .collect();
    assert_eq!(other_clients.len(), 4);
    for g in &other_clients {
        assert!(g.span.parent_span_id.is_empty(), "{g:?}");
        assert_ne!(hex(&g.span.trace_id), TRACE);
    }
    let mut ids: Vec<Vec<u8>> = spans.iter().map(|g| g.span.span_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "span ids are unique");
}

#[test]
fn an_unreachable_endpoint_counts_dropped_spans() {
    if !live_or_skip("traces live test", &["curl", "python3"]) {
        return;
    }
    let backend = Backend::start();
    let p = backend.port;
    let closed = free_port();
    let probe = Probe::start(&[
        "--no-tls".to_string(),
        "--watch-port".to_string(),
        p.to_string(),
        "--otlp-endpoint".to_string(),
        format!("http://127.0.0.1:{closed}"),
    ]);
    let urls = vec![format!("http://127.0.0.1:{p}/a"); 3];
    assert_eq!(curl(&[], &urls), [200; 3]);
    let m = probe.settle(|m| {
        m.sum(
            "homelab_probe_spans_dropped_total",
            &[("reason", "export_failed")],
        ) >= 3.0
    });
    let failed = [("reason", "export_failed")];
    assert_eq!(m.sum("homelab_probe_spans_dropped_total", &failed), 3.0);
    assert_eq!(m.sum("homelab_probe_spans_exported_total", &[]), 0.0);
    assert!(
        probe.log().contains("cannot export spans to"),
        "{}",
        probe.log()
    );
}
