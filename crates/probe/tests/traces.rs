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

/// Waits until the receiver holds `n` spans (20 s at most), then a little longer, so that
/// extra spans would show.
fn wait_spans(receiver: &Receiver, n: usize) -> Vec<Got> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.spans.lock().unwrap().len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(700));
    receiver.spans()
}

fn probe_with_config(dir: &tempfile::TempDir, config: &str) -> Probe {
    let path = dir.path().join("probe.toml");
    std::fs::write(&path, config).unwrap();
    Probe::start(&[
        "--no-tls".to_string(),
        "--config".to_string(),
        path.display().to_string(),
    ])
}

fn caller(mode: &str, port: u16, backend: u16) -> Proc {
    let child = Command::new("python3")
        .arg(fixture("caller.py"))
        .args([mode, &port.to_string(), &backend.to_string()])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start python3 caller");
    let proc = Proc(child);
    wait_port(port, "python caller");
    proc
}

#[test]
fn in_process_calls_are_children_of_the_request_their_thread_serves() {
    if !live_or_skip("traces live test", &["curl", "python3"]) {
        return;
    }
    let receiver = Receiver::start();
    let backend = Backend::start();
    let b = backend.port;
    let (threads, event_loop) = (free_port(), free_port());
    let _threads = caller("threads", threads, b);
    let _loop = caller("loop", event_loop, b);
    let dir = tempfile::tempdir().unwrap();
    let probe = probe_with_config(
        &dir,
        &format!(
            "[[watch]]\nservice = \"threads\"\nports = [{threads}]\n\
             [[watch]]\nservice = \"loop\"\nports = [{event_loop}]\n\
             [[watch]]\nservice = \"backend\"\nports = [{b}]\n\
             [[watch]]\nservice = \"calls\"\nclient_ports = [{b}]\n\
             [traces]\nendpoint = \"http://127.0.0.1:{}\"\nbatch_timeout_ms = 200\n",
            receiver.port
        ),
    );

    // Thread per request: one request with a traceparent, then three at once.
    let traceparent = format!("traceparent: 00-{TRACE}-{PARENT}-01");
    let url = move |port: u16, path: &str| vec![format!("http://127.0.0.1:{port}{path}")];
    assert_eq!(curl(&["-H", &traceparent], &url(threads, "/one")), [200]);
    let at_once = |port: u16, n: usize| {
        let runs: Vec<_> = (0..n)
            .map(|i| std::thread::spawn(move || curl(&[], &url(port, &format!("/at-once/{i}")))))
            .collect();
        for run in runs {
            assert_eq!(run.join().unwrap(), [200]);
        }
    };
    at_once(threads, 3);
    // The event loop: two requests in flight on its one thread when it calls out twice.
    at_once(event_loop, 2);

    // threads: 4 SERVER + 4 CLIENT (/slow) + 4 backend SERVER; loop: 2 + 2 (/loop) + 2.
    let spans = wait_spans(&receiver, 18);
    let dump = format!("{spans:#?}");
    assert_eq!(spans.len(), 18, "{dump}");
    let of = |service: &str, kind: SpanKind| -> Vec<&Got> {
        spans
            .iter()
            .filter(|g| g.service == service && g.span.kind == kind as i32)
            .collect()
    };
    let children = |parent: &Got| -> Vec<&Got> {
        spans
            .iter()
            .filter(|g| g.span.parent_span_id == parent.span.span_id)
            .collect()
    };
    let calls = of("calls", SpanKind::Client);
    let backend_spans = of("backend", SpanKind::Server);
    let served = of("threads", SpanKind::Server);
    assert_eq!(served.len(), 4, "{dump}");
    for request in &served {
        // request (threads) -> call (calls, client) -> backend (server), one trace.
        let call = children(request);
        assert_eq!(call.len(), 1, "{request:#?}\n{dump}");
        let call = call[0];
        assert_eq!(call.service, "calls");
        assert_eq!(call.attr("url.full"), format!("http://127.0.0.1:{b}/slow"));
        assert_eq!(call.span.trace_id, request.span.trace_id);
        let answer = children(call);
        assert_eq!(answer.len(), 1, "{call:#?}\n{dump}");
        assert_eq!(answer[0].service, "backend");
        assert_eq!(answer[0].attr("url.path"), "/slow");
        assert_eq!(answer[0].span.trace_id, request.span.trace_id);
    }
    let one = served
        .iter()
        .find(|g| g.attr("url.path") == "/one")
        .unwrap();
    assert_eq!(hex(&one.span.trace_id), TRACE);
    assert_eq!(hex(&one.span.parent_span_id), PARENT);

    // The event loop: its calls have no parent, its requests no child; each call is still
    // the parent of the backend span it caused (a local hop).
    let loop_served = of("loop", SpanKind::Server);
    assert_eq!(loop_served.len(), 2, "{dump}");
    assert!(loop_served.iter().all(|g| children(g).is_empty()), "{dump}");
    let loop_calls: Vec<&&Got> = calls
        .iter()
        .filter(|g| g.attr("url.full").ends_with("/loop"))
        .collect();
    assert_eq!(loop_calls.len(), 2, "{dump}");
    for call in loop_calls {
        assert!(call.span.parent_span_id.is_empty(), "{call:#?}");
        assert!(loop_served
            .iter()
            .all(|g| g.span.trace_id != call.span.trace_id));
        let answer = children(call);
        assert_eq!(answer.len(), 1, "{dump}");
        assert_eq!(answer[0].attr("url.path"), "/loop");
    }
    assert_eq!(backend_spans.len(), 6, "{dump}");
    drop(probe);
}

/// Prometheus from the distribution, scraping `target` every second, with exemplar
/// storage.
struct Prometheus {
    port: u16,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: probe\n    \
                 static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--enable-feature=exemplar-storage")
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let proc = Proc(child);
        wait_port(port, "prometheus");
        Prometheus {
            port,
            _proc: proc,
            _dir: dir,
        }
    }

    /// (trace_id, span_id) of the exemplars of `metric` stored in the last 10 minutes.
    fn exemplars(&self, metric: &str) -> Vec<(String, String)> {
        let now = unix_now_ns() / 1_000_000_000;
        let body = http_get(
            self.port,
            &format!(
                "/api/v1/query_exemplars?query={metric}&start={}&end={}",
                now - 600,
                now + 60
            ),
        );
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(v["status"], "success", "{body}");
        let mut out = vec![];
        for series in v["data"].as_array().unwrap() {
            for e in series["exemplars"].as_array().unwrap() {
                let label = |k: &str| e["labels"][k].as_str().unwrap_or_default().to_string();
                out.push((label("trace_id"), label("span_id")));
            }
        }
        out
    }
}

#[test]
fn prometheus_stores_exemplars_of_the_exported_spans_only() {
    if !live_or_skip("traces live test", &["curl", "python3", "prometheus"]) {
        return;
    }
    let receiver = Receiver::start();
    let backend = Backend::start();
    let p = backend.port;
    let dir = tempfile::tempdir().unwrap();
    let probe = probe_with_config(
        &dir,
        &format!(
            "[[watch]]\nservice = \"pyapp\"\nports = [{p}]\n\
             [[watch]]\nservice = \"caller\"\nclient_ports = [{p}]\n\
             [traces]\nendpoint = \"http://127.0.0.1:{}\"\nbatch_timeout_ms = 200\n\
             sample_ratio = 0.5\n",
            receiver.port
        ),
    );
    let prometheus = Prometheus::start(probe.metrics_port);

    // Sampling keeps a trace when the low half of its id is below half its range: kept and
    // dropped requests alternate, a dropped one last, so a dropped request that set the
    // exemplar of its bucket would be the one Prometheus sees.
    let mut kept = vec![];
    for i in 0..10u32 {
        for (low, keep) in [("0000000000000001", true), ("ff00000000000000", false)] {
            let trace = format!("{i:016x}{low}");
            let header = format!("traceparent: 00-{trace}-{PARENT}-01");
            let url = format!("http://127.0.0.1:{p}/status/200");
            assert_eq!(curl(&["-H", &header], &[url]), [200]);
            if keep {
                kept.push(trace);
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let spans = wait_spans(&receiver, 20);
    let dump = format!("{spans:#?}");
    assert_eq!(
        spans.len(),
        20,
        "a SERVER and a CLIENT span per kept trace: {dump}"
    );
    let exported = |kind: SpanKind| -> Vec<(String, String)> {
        spans
            .iter()
            .filter(|g| g.span.kind == kind as i32)
            .map(|g| (hex(&g.span.trace_id), hex(&g.span.span_id)))
            .collect()
    };
    assert!(
        exported(SpanKind::Server)
            .iter()
            .all(|(t, _)| kept.contains(t)),
        "{dump}"
    );

    for (metric, kind) in [(SERVER, SpanKind::Server), (CLIENT, SpanKind::Client)] {
        let metric = format!("{metric}_bucket");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut stored = prometheus.exemplars(&metric);
        while stored.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            stored = prometheus.exemplars(&metric);
        }
        assert!(!stored.is_empty(), "no exemplar of {metric} in Prometheus");
        let spans = exported(kind);
        for exemplar in &stored {
            assert!(
                spans.contains(exemplar),
                "{metric}: exemplar {exemplar:?} names no exported {kind:?} span: {spans:?}"
            );
        }
    }
    // Plain scrapers still get the classic text format, without exemplars.
    let text = http_get(probe.metrics_port, "/metrics");
    assert!(
        !text.contains("# EOF") && !text.contains("trace_id"),
        "{text}"
    );
}
