//! Live tests of kernel framing: two probes watch the same workload at once, one framing
//! HTTP/1.x exchanges in the kernel (the default), one sending every read and write as
//! bytes (`--no-kernel-framing`). Both must report the same requests; the first must have
//! framed the exchanges the kernel can frame, and handed the others over to userspace at a
//! message boundary.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

const FRAMED: &str = "homelab_probe_kernel_framed_requests_total";

/// The request series of the server histogram: (labels, count), sorted.
fn series(m: &Samples) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> =
        m.0.iter()
            .filter(|(n, _, _)| n == &format!("{SERVER}_count"))
            .map(|(_, l, v)| (format!("{l:?}"), *v as u64))
            .collect();
    out.sort();
    out
}

/// Reads a response head and `Content-Length` bytes of body (or until the close).
fn read_response(s: &mut TcpStream) -> String {
    let mut buf = vec![];
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap() == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).unwrap();
    head
}

#[test]
fn framed_and_byte_probes_count_the_same_requests() {
    if !live_or_skip("kernel framing test", &["curl", "nginx", "python3", "node"]) {
        return;
    }
    let backend = Backend::start();
    let nginx = Nginx::start(backend.port, false);
    let node = Server::node_http(&fixture("pipelining_server.js"));
    let (n, p) = (nginx.port, backend.port);
    let watch = [
        s("--no-tls"),
        s("--watch-port"),
        n.to_string(),
        s("--watch-port"),
        p.to_string(),
        s("--watch-port"),
        node.port.to_string(),
    ];
    let framing = Probe::start(&watch);
    let mut bytes_args = watch.to_vec();
    bytes_args.push(s("--no-kernel-framing"));
    let bytes = Probe::start(&bytes_args);

    // nginx over one keep-alive connection: bodies in one writev, without a body (204,
    // HEAD), a 100 kB file by sendfile (the head written, then the body counted by length).
    let paths = [
        "/ok", "/ok", "/ok", "/empty", "/moved", "/boom", "/missing", "/file", "/ok",
    ];
    assert_eq!(
        curl(&[], &urls(n, &paths)),
        [200, 200, 200, 204, 301, 500, 404, 200, 200]
    );
    assert_eq!(curl(&["-I"], &urls(n, &["/ok", "/file"])), [200, 200]);
    let etag = std::process::Command::new("curl")
        .args(["-sI", &format!("http://127.0.0.1:{n}/file")])
        .output()
        .unwrap();
    let etag = String::from_utf8_lossy(&etag.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("ETag: ").map(str::to_string))
        .expect("nginx sends an ETag");
    let if_none_match = format!("If-None-Match: {etag}");
    assert_eq!(curl(&["-H", &if_none_match], &urls(n, &["/file"])), [304]);
    assert_eq!(curl(&["-d", "a=1"], &urls(n, &["/ok"])), [200]);

    // The Python backend writes its head and then its body: the kernel counts the body by
    // Content-Length. Then a chunked response: handed over to userspace, which parses it
    // and the rest of that connection (a 503 and a HEAD).
    assert_eq!(
        curl(
            &[],
            &urls(
                p,
                &["/slow?ms=5", "/slow?ms=5", "/chunked?n=3", "/status/503"]
            )
        ),
        [200, 200, 200, 503]
    );
    // Requests the kernel does not frame: two pipelined in one read, a body announced
    // with Expect: 100-continue.
    let pipelined = b"GET /pipelined HTTP/1.1\r\nHost: x\r\n\r\n\
GET /pipelined HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let answer = String::from_utf8_lossy(&raw_exchange(p, pipelined)).to_string();
    assert_eq!(answer.matches("HTTP/1.1 200").count(), 2, "{answer}");
    let expect = ["-H", "Expect: 100-continue", "-d", "x=1"];
    assert_eq!(curl(&expect, &urls(p, &["/echo"])), [201]);

    // Node reads a request sent while the previous one is being answered: userspace takes
    // over there (the response to the framed request still ends it). Before the response
    // started, and while a 5 MB body is being written.
    let mut c = TcpStream::connect(("127.0.0.1", node.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(b"GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    c.write_all(b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut c).starts_with("HTTP/1.1 200"));
    assert!(read_response(&mut c).starts_with("HTTP/1.1 404"));
    let mut c = TcpStream::connect(("127.0.0.1", node.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 4096];
    let got = c.read(&mut first).unwrap();
    assert!(first[..got].starts_with(b"HTTP/1.1 200"));
    c.write_all(b"GET /slow?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let head_end = first[..got]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap()
        + 4;
    let mut rest = vec![0u8; 5 * 1024 * 1024 - (got - head_end)];
    c.read_exact(&mut rest).unwrap();
    assert!(read_response(&mut c).starts_with("HTTP/1.1 200"));
    drop(c);

    // A framed request in flight shows in http_server_active_requests.
    let slow = std::thread::spawn(move || curl(&[], &urls(p, &["/slow?ms=2500"])));
    let m = framing.settle(|m| m.sum("http_server_active_requests", &[]) >= 1.0);
    assert_eq!(
        m.sum("http_server_active_requests", &[]),
        1.0,
        "{}",
        m.dump("")
    );
    assert_eq!(slow.join().unwrap(), [200]);

    // nginx 9 + 2 HEAD + the ETag's HEAD + 304 + POST; the backend's 4 + 2 pipelined +
    // 100-continue + the one in flight; Node's 4.
    const TOTAL: u64 = 14 + 8 + 4;
    let a = framing.settle(|m| m.count(SERVER, &[]) >= TOTAL);
    let b = bytes.settle(|m| m.count(SERVER, &[]) >= TOTAL);
    let dump = format!("framing:\n{}\nbytes:\n{}", a.dump("h"), b.dump("h"));
    assert_eq!(a.count(SERVER, &[]), TOTAL, "{dump}");
    assert_eq!(series(&a), series(&b), "{dump}");
    for m in [&a, &b] {
        m.assert_zero(
            &[
                "homelab_probe_parse_errors_total",
                "homelab_probe_ringbuf_drops_total",
                "http_server_unanswered_requests_total",
            ],
            &dump,
        );
    }
    let nginx_svc = ("service_name", "nginx");
    let of = |m: &Samples, method: &str, status: &str| {
        m.count(
            SERVER,
            &[
                nginx_svc,
                ("http_request_method", method),
                ("http_response_status_code", status),
            ],
        )
    };
    assert_eq!(of(&a, "GET", "200"), 5, "{dump}");
    assert_eq!(of(&a, "HEAD", "200"), 3, "{dump}");
    assert_eq!(of(&a, "GET", "304"), 1, "{dump}");
    assert_eq!(of(&a, "GET", "204"), 1, "{dump}");

    // Framed at least: nginx's requests less the POST (whose body may come in a read of its
    // own), the backend's two /slow?ms=5 and its /slow?ms=2500, Node's /slow?ms=300 and /big.
    let framed = a.sum(FRAMED, &[]);
    assert!((17.0..=TOTAL as f64).contains(&framed), "{framed}\n{dump}");
    assert_eq!(b.sum(FRAMED, &[]), 0.0, "{dump}");
    assert!(
        b.sum("homelab_probe_events_total", &[]) > a.sum("homelab_probe_events_total", &[]),
        "{dump}"
    );
}
