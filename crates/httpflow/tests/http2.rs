//! HTTP/2 reconstruction on real frames: hyperium's `h2` client and server talk over an
//! in-memory pipe; every read and write of the server end is recorded and replayed into a
//! `Connection`, whole or cut the way the probe's capture cuts it.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use httpflow::{Connection, Direction, Exchange, Mode, Segment, Side};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// What the probe captures of each read or write.
const HEAD: usize = 2048;
const TAIL: usize = 64;

type Log = Arc<Mutex<Vec<(Direction, Vec<u8>)>>>;

/// The server end of the pipe, recording each read and write as a segment.
struct Recorder {
    io: DuplexStream,
    log: Log,
}

impl AsyncRead for Recorder {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        if !new.is_empty() {
            self.log
                .lock()
                .unwrap()
                .push((Direction::Read, new.to_vec()));
        }
        poll
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = poll {
            self.log
                .lock()
                .unwrap()
                .push((Direction::Write, data[..n].to_vec()));
        }
        poll
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[derive(Clone)]
struct Req {
    method: &'static str,
    path: String,
    body: usize,
    headers: Vec<(&'static str, String)>,
}

fn get(path: &str) -> Req {
    Req {
        method: "GET",
        path: path.to_string(),
        body: 0,
        headers: vec![],
    }
}

/// How the test server answers a path: `/size/N` 200 with N body bytes, `/missing` 404
/// without body, `/reset` RST_STREAM, `/continue` 100 then 200, `/push` 200 after a
/// PUSH_PROMISE, `/trailers` 200 whose stream ends with trailers, anything else 201 after
/// reading the body.
async fn answer(
    mut req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) {
    let path = req.uri().path().to_string();
    let body = req.body_mut();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
    }
    let response = |status: u16| http::Response::builder().status(status).body(()).unwrap();
    if let Some(size) = path.strip_prefix("/size/") {
        let mut send = respond.send_response(response(200), false).unwrap();
        send.send_data(Bytes::from(vec![b'x'; size.parse().unwrap()]), true)
            .unwrap();
    } else if path == "/missing" {
        respond.send_response(response(404), true).unwrap();
    } else if path == "/reset" {
        respond.send_reset(h2::Reason::CANCEL);
    } else if path == "/continue" {
        respond.send_informational(response(100)).unwrap();
        let mut send = respond.send_response(response(200), false).unwrap();
        send.send_data(Bytes::from_static(b"done"), true).unwrap();
    } else if path == "/trailers" {
        let mut send = respond.send_response(response(200), false).unwrap();
        send.send_data(Bytes::from_static(b"body"), false).unwrap();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        send.send_trailers(trailers).unwrap();
    } else if path == "/push" {
        let promised = http::Request::get("http://example.test/pushed")
            .body(())
            .unwrap();
        if let Ok(mut pushed) = respond.push_request(promised) {
            let mut send = pushed.send_response(response(200), false).unwrap();
            send.send_data(Bytes::from_static(b"pushed"), true).unwrap();
        }
        let mut send = respond.send_response(response(200), false).unwrap();
        send.send_data(Bytes::from_static(b"main"), true).unwrap();
    } else {
        respond.send_response(response(201), true).unwrap();
    }
}

/// Runs the requests concurrently on one connection; returns the server end's segments.
fn record(reqs: &[Req], client_table_size: Option<u32>) -> Vec<(Direction, Vec<u8>)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = Log::default();
    let reqs = reqs.to_vec();
    let server_log = log.clone();
    rt.block_on(async move {
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let io = Recorder {
                io: server_io,
                log: server_log,
            };
            let mut conn = h2::server::handshake(io).await.unwrap();
            let mut handlers = vec![];
            while let Some(accepted) = conn.accept().await {
                let (req, respond) = accepted.unwrap();
                handlers.push(tokio::spawn(answer(req, respond)));
            }
            for h in handlers {
                h.await.unwrap();
            }
        });
        let mut builder = h2::client::Builder::new();
        if let Some(size) = client_table_size {
            builder.header_table_size(size);
        }
        let (client, conn) = builder.handshake(client_io).await.unwrap();
        let driver = tokio::spawn(conn);
        let mut calls = vec![];
        for r in reqs {
            let mut client = client.clone().ready().await.unwrap();
            let mut request = http::Request::builder()
                .method(r.method)
                .uri(format!("http://example.test{}", r.path));
            for (k, v) in &r.headers {
                request = request.header(*k, v);
            }
            let (response, mut send) = client
                .send_request(request.body(()).unwrap(), r.body == 0)
                .unwrap();
            if r.body > 0 {
                send.reserve_capacity(r.body);
                send.send_data(Bytes::from(vec![b'b'; r.body]), true)
                    .unwrap();
            }
            calls.push(tokio::spawn(async move {
                if let Ok(resp) = response.await {
                    let mut body = resp.into_body();
                    while let Some(Ok(chunk)) = body.data().await {
                        body.flow_control().release_capacity(chunk.len()).unwrap();
                    }
                }
            }));
        }
        for c in calls {
            c.await.unwrap();
        }
        drop(client);
        driver.await.unwrap().unwrap();
        server.await.unwrap();
    });
    Arc::try_unwrap(log).unwrap().into_inner().unwrap()
}

/// Replays segments (the i-th at time i+1) into a connection, each cut to `head` + `tail`
/// bytes; `side` Client swaps the directions (the same bytes seen from the other end).
fn replay(
    segs: &[(Direction, Vec<u8>)],
    side: Side,
    head: usize,
    tail: usize,
) -> (Connection, Vec<Exchange>) {
    let mut c = Connection::new(side);
    let mut out = vec![];
    for (i, (dir, data)) in segs.iter().enumerate() {
        let dir = match (side, dir) {
            (Side::Server, d) => *d,
            (Side::Client, Direction::Read) => Direction::Write,
            (Side::Client, Direction::Write) => Direction::Read,
        };
        let h = head.min(data.len());
        let t = if h == data.len() {
            0
        } else {
            tail.min(data.len())
        };
        let seg = Segment {
            len: data.len(),
            head: &data[..h],
            tail: &data[data.len() - t..],
            ts_ns: i as u64 + 1,
        };
        c.on_segment(dir, seg, &mut out);
    }
    (c, out)
}

/// (method, target, status) of each exchange, sorted.
fn summary(out: &[Exchange]) -> Vec<(String, String, Option<u16>)> {
    let mut v: Vec<_> = out
        .iter()
        .map(|e| (e.method.clone(), e.target.clone(), e.status))
        .collect();
    v.sort();
    v
}

fn row(method: &str, target: &str, status: Option<u16>) -> (String, String, Option<u16>) {
    (method.to_string(), target.to_string(), status)
}

/// The bytes of each direction re-cut into segments: one per frame (`None`), or of
/// `Some(n)` bytes each, the directions alternating.
fn regroup(segs: &[(Direction, Vec<u8>)], size: Option<usize>) -> Vec<(Direction, Vec<u8>)> {
    let mut out = vec![];
    for dir in [Direction::Read, Direction::Write] {
        let mut bytes: Vec<u8> = segs
            .iter()
            .filter(|(d, _)| *d == dir)
            .flat_map(|(_, b)| b.clone())
            .collect();
        let mut parts = vec![];
        if dir == Direction::Read {
            parts.push(bytes.drain(..24).collect::<Vec<u8>>()); // the preface
        }
        while !bytes.is_empty() {
            let n = match size {
                Some(n) => n.min(bytes.len()),
                None => {
                    9 + (usize::from(bytes[0]) << 16
                        | usize::from(bytes[1]) << 8
                        | usize::from(bytes[2]))
                }
            };
            parts.push(bytes.drain(..n).collect());
        }
        out.push(parts);
    }
    // Requests first, then responses: streams are paired by id, not by order.
    let writes = out.pop().unwrap();
    let reads = out.pop().unwrap();
    reads
        .into_iter()
        .map(|b| (Direction::Read, b))
        .chain(writes.into_iter().map(|b| (Direction::Write, b)))
        .collect()
}

fn mixed() -> Vec<Req> {
    let ua = ("user-agent", "h2-test/1.0".to_string());
    let mut reqs = vec![];
    for i in 0..3 {
        let mut r = get(&format!("/size/{}?page={i}", 10 + i));
        r.headers.push(ua.clone());
        reqs.push(r);
    }
    let mut upload = get("/upload");
    upload.method = "POST";
    upload.body = 5000;
    upload.headers = vec![
        ua.clone(),
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_string(),
        ),
    ];
    reqs.push(upload);
    reqs.push(get("/missing"));
    reqs.push(get("/size/100000"));
    reqs.push(get("/reset"));
    reqs.push(get("/continue"));
    reqs.push(get("/trailers"));
    reqs
}

fn mixed_expected() -> Vec<(String, String, Option<u16>)> {
    let mut v = vec![
        row("GET", "/size/10?page=0", Some(200)),
        row("GET", "/size/11?page=1", Some(200)),
        row("GET", "/size/12?page=2", Some(200)),
        row("POST", "/upload", Some(201)),
        row("GET", "/missing", Some(404)),
        row("GET", "/size/100000", Some(200)),
        row("GET", "/reset", None),
        row("GET", "/continue", Some(200)),
        row("GET", "/trailers", Some(200)),
    ];
    v.sort();
    v
}

#[test]
fn concurrent_streams_on_one_connection_are_exchanges() {
    let segs = record(&mixed(), None);
    let (c, out) = replay(&segs, Side::Server, usize::MAX, 0);
    assert_eq!(c.mode(), Mode::Http2);
    assert_eq!(c.stats(), Default::default());
    assert_eq!(summary(&out), mixed_expected());
    assert_eq!(c.active_requests(), 0);
    for e in &out {
        assert!(e.start_ns <= e.end_ns, "{e:?}");
        assert_eq!(e.meta.host.as_deref(), Some("example.test"), "{e:?}");
    }
    let upload = out.iter().find(|e| e.target == "/upload").unwrap();
    assert_eq!(upload.meta.user_agent.as_deref(), Some("h2-test/1.0"));
    assert_eq!(
        upload.meta.traceparent.as_deref(),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    // The user-agent repeated: later requests name it from the dynamic table.
    let agents = out.iter().filter(|e| e.meta.user_agent.is_some()).count();
    assert_eq!(agents, 4);
    // The 100 kB response ends with its last DATA frame, after its HEADERS.
    let big = out.iter().find(|e| e.target == "/size/100000").unwrap();
    assert!(big.end_ns > big.start_ns, "{big:?}");
}

#[test]
fn the_client_end_sees_the_same_exchanges() {
    let segs = record(&mixed(), None);
    let (c, out) = replay(&segs, Side::Client, usize::MAX, 0);
    assert_eq!((c.mode(), c.parse_errors()), (Mode::Http2, 0));
    assert_eq!(summary(&out), mixed_expected());
}

#[test]
fn streams_open_at_the_close_end_there_without_status() {
    let segs = record(&[get("/size/10"), get("/missing")], None);
    // Everything but the server's frames after its SETTINGS.
    let first_write = segs
        .iter()
        .position(|(d, _)| *d == Direction::Write)
        .unwrap();
    let cut: Vec<_> = segs
        .iter()
        .enumerate()
        .filter(|(i, (d, _))| *d == Direction::Read || *i == first_write)
        .map(|(_, s)| s.clone())
        .collect();
    let (mut c, mut out) = replay(&cut, Side::Server, usize::MAX, 0);
    assert!(out.is_empty());
    assert_eq!(c.active_requests(), 2);
    let mut live: Vec<_> = c.in_flight().map(|r| r.target.to_string()).collect();
    live.sort();
    assert_eq!(live, ["/missing", "/size/10"]);
    c.on_close(1000, &mut out);
    assert_eq!(
        summary(&out),
        [row("GET", "/missing", None), row("GET", "/size/10", None)]
    );
    assert!(out.iter().all(|e| e.end_ns == 1000));
    assert_eq!(c.parse_errors(), 0);
}

#[test]
fn streams_above_the_last_one_of_a_goaway_are_not_counted() {
    let segs = record(&[get("/size/10"), get("/missing")], None);
    // The client's frames and the server's SETTINGS, then a GOAWAY saying that only
    // stream 1 was processed, then the close.
    let first_write = segs
        .iter()
        .position(|(d, _)| *d == Direction::Write)
        .unwrap();
    let mut cut: Vec<_> = segs
        .iter()
        .enumerate()
        .filter(|(i, (d, _))| *d == Direction::Read || *i == first_write)
        .map(|(_, s)| s.clone())
        .collect();
    // Length 8, type GOAWAY, no flags, stream 0; last stream id 1, NO_ERROR.
    let goaway = [0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    cut.push((Direction::Write, goaway.to_vec()));
    let (mut c, mut out) = replay(&cut, Side::Server, usize::MAX, 0);
    assert_eq!(c.active_requests(), 1);
    c.on_close(1000, &mut out);
    assert_eq!(summary(&out), [row("GET", "/size/10", None)]);
    assert_eq!(c.parse_errors(), 0);
}

#[test]
fn http1_upgrade_to_h2c_answers_the_request_on_stream_1() {
    let frames = regroup(&record(&[get("/size/7")], None), None);
    let server: Vec<Vec<u8>> = frames
        .iter()
        .filter(|(d, _)| *d == Direction::Write)
        .map(|(_, b)| b.clone())
        .collect();
    // The client's frames but its HEADERS: the HTTP/1.1 request is stream 1.
    let client = frames
        .iter()
        .filter(|(d, b)| *d == Direction::Read && b[3] != 0x1)
        .cloned();
    let mut segs = vec![(
        Direction::Read,
        b"GET /size/7 HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade, HTTP2-Settings\r\n\
Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nUser-Agent: up/1\r\n\r\n"
            .to_vec(),
    )];
    // The 101 and the server's SETTINGS in one write.
    let mut switching =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    switching.extend(&server[0]);
    segs.push((Direction::Write, switching));
    segs.extend(client);
    segs.extend(server[1..].iter().map(|b| (Direction::Write, b.clone())));
    let (c, out) = replay(&segs, Side::Server, usize::MAX, 0);
    assert_eq!(c.stats(), Default::default());
    assert_eq!(c.mode(), Mode::Http2);
    assert_eq!(summary(&out), [row("GET", "/size/7", Some(200))]);
    assert_eq!(out[0].start_ns, 1);
    assert_eq!(out[0].meta.user_agent.as_deref(), Some("up/1"));
}

#[test]
fn continuation_frames_and_a_small_header_table() {
    let mut big = get("/size/1");
    big.headers.push(("x-large", "v".repeat(40_000)));
    big.headers.push(("user-agent", "big/1".to_string()));
    let reqs = [big, get("/push"), get("/size/2")];
    // The client allows the server's encoder a 256-byte table.
    let segs = record(&reqs, Some(256));
    let frames = regroup(&segs, None);
    let has = |dir: Direction, kind: u8| frames.iter().any(|(d, b)| *d == dir && b[3] == kind);
    assert!(has(Direction::Read, 0x9), "no CONTINUATION");
    assert!(has(Direction::Write, 0x5), "no PUSH_PROMISE");
    let (c, out) = replay(&segs, Side::Server, usize::MAX, 0);
    assert_eq!(c.stats(), Default::default());
    assert_eq!(
        summary(&out),
        [
            row("GET", "/push", Some(200)),
            row("GET", "/size/1", Some(200)),
            row("GET", "/size/2", Some(200)),
        ]
    );
    let ua = out.iter().find(|e| e.target == "/size/1").unwrap();
    assert_eq!(ua.meta.user_agent.as_deref(), Some("big/1"));
}

#[test]
fn big_frames_cut_by_the_capture_are_skipped_by_length() {
    let mut upload = get("/upload");
    upload.method = "PUT";
    upload.body = 200_000;
    let reqs = [upload, get("/size/300000"), get("/size/5")];
    let segs = regroup(&record(&reqs, None), None);
    // Frames of up to 16 kB, each in its own segment cut to 2 kB + 64 bytes.
    assert!(segs.iter().filter(|(_, b)| b.len() > HEAD + TAIL).count() > 20);
    let (c, out) = replay(&segs, Side::Server, HEAD, TAIL);
    assert_eq!(c.stats(), Default::default());
    assert_eq!(
        summary(&out),
        [
            row("GET", "/size/300000", Some(200)),
            row("GET", "/size/5", Some(200)),
            row("PUT", "/upload", Some(201)),
        ]
    );
}

#[test]
fn frames_lost_in_the_capture_give_the_connection_up_without_inventing_requests() {
    let segs = record(&mixed(), None);
    let expected = mixed_expected();
    // Segments of a few kB cut to 2 kB + 64 bytes: each either keeps every frame header
    // and header block byte (all exchanges exact), or loses one and the connection is
    // given up once, what was reported before being true.
    let mut given_up = 0;
    for size in [3000, 4096, 5000, 20_000] {
        let (c, out) = replay(&regroup(&segs, Some(size)), Side::Server, HEAD, TAIL);
        if c.parse_errors() == 0 {
            assert_eq!((c.mode(), summary(&out)), (Mode::Http2, expected.clone()));
            continue;
        }
        given_up += 1;
        assert_eq!((c.mode(), c.parse_errors()), (Mode::NotHttp, 1), "{size}");
        for e in summary(&out) {
            assert!(expected.contains(&e), "{size}: {e:?}");
        }
    }
    assert!(given_up > 0);
    // All the client's frames in one read of which only the preface was captured.
    let reads: Vec<u8> = segs
        .iter()
        .filter(|(d, _)| *d == Direction::Read)
        .flat_map(|(_, b)| b.clone())
        .collect();
    let (c, out) = replay(&[(Direction::Read, reads)], Side::Server, 30, 0);
    assert_eq!(
        (c.mode(), c.parse_errors(), out.len()),
        (Mode::NotHttp, 1, 0)
    );
}

#[test]
fn server_settings_before_the_preface_and_a_wrong_preface() {
    let segs = record(&[get("/size/3")], None);
    let first_write = segs
        .iter()
        .position(|(d, _)| *d == Direction::Write)
        .unwrap();
    let mut reordered = vec![segs[first_write].clone()];
    reordered.extend(
        segs.iter()
            .enumerate()
            .filter(|(i, _)| *i != first_write)
            .map(|(_, s)| s.clone()),
    );
    let (c, out) = replay(&reordered, Side::Server, usize::MAX, 0);
    assert_eq!((c.mode(), c.parse_errors()), (Mode::Http2, 0));
    assert_eq!(summary(&out), [row("GET", "/size/3", Some(200))]);

    // The server's SETTINGS, then a client that does not send the preface.
    let mut bad = vec![segs[first_write].clone()];
    bad.push((
        Direction::Read,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    ));
    let (c, out) = replay(&bad, Side::Server, usize::MAX, 0);
    assert_eq!(
        (c.mode(), c.parse_errors(), out.len()),
        (Mode::NotHttp, 1, 0)
    );
    // The preface read in pieces.
    let mut pieces: Vec<(Direction, Vec<u8>)> = vec![
        (Direction::Read, b"PRI * HTTP/2.0\r\n".to_vec()),
        (Direction::Read, b"\r\nSM\r\n\r\n".to_vec()),
    ];
    let mut rest = segs.clone();
    let first_read = rest
        .iter()
        .position(|(d, _)| *d == Direction::Read)
        .unwrap();
    rest[first_read].1.drain(..24);
    pieces.extend(rest);
    let (c, out) = replay(&pieces, Side::Server, usize::MAX, 0);
    assert_eq!((c.mode(), c.parse_errors()), (Mode::Http2, 0));
    assert_eq!(summary(&out), [row("GET", "/size/3", Some(200))]);
}

/// The server end's bytes of `mixed()`, one vector per direction (reads, writes).
fn mixed_bytes() -> &'static (Vec<u8>, Vec<u8>) {
    static BYTES: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let segs = record(&mixed(), None);
        let of = |dir: Direction| -> Vec<u8> {
            segs.iter()
                .filter(|(d, _)| *d == dir)
                .flat_map(|(_, b)| b.clone())
                .collect()
        };
        (of(Direction::Read), of(Direction::Write))
    })
}

/// `bytes` cut into segments of the given sizes, in turn (the last one takes the rest).
fn split(dir: Direction, bytes: &[u8], sizes: &[usize]) -> Vec<(Direction, Vec<u8>)> {
    let mut out = vec![];
    let mut rest = bytes;
    for &n in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push((dir, a.to_vec()));
        rest = b;
    }
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Real frames, read and written in segments of any size and captured as any head and
    /// tail: what is reported is true, and either everything is reported or the connection
    /// was given up once.
    #[test]
    fn any_segmentation_and_capture_reports_only_true_exchanges(
        reads in proptest::collection::vec(1usize..6000, 1..8),
        writes in proptest::collection::vec(1usize..20_000, 1..8),
        head in 9usize..4096,
        tail in 0usize..128,
    ) {
        let (r, w) = mixed_bytes();
        let mut segs = split(Direction::Read, r, &reads);
        segs.extend(split(Direction::Write, w, &writes));
        let (c, out) = replay(&segs, Side::Server, head, tail);
        let expected = mixed_expected();
        if c.parse_errors() == 0 {
            proptest::prop_assert_eq!(summary(&out), expected);
        } else {
            proptest::prop_assert_eq!((c.mode(), c.parse_errors()), (Mode::NotHttp, 1));
            for e in summary(&out) {
                proptest::prop_assert!(expected.contains(&e), "{:?}", e);
            }
        }
    }

    /// Anything after the preface, in both directions: no panic, bounded memory.
    #[test]
    fn arbitrary_frames_after_the_preface(
        segs in proptest::collection::vec(
            (proptest::bool::ANY, proptest::collection::vec(proptest::num::u8::ANY, 0..300)),
            0..40,
        ),
    ) {
        let mut all = vec![(Direction::Read, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec())];
        all.extend(segs.into_iter().map(|(read, b)| {
            (if read { Direction::Read } else { Direction::Write }, b)
        }));
        let (mut c, mut out) = replay(&all, Side::Server, usize::MAX, 0);
        proptest::prop_assert!(c.heap_bytes() < 1 << 20);
        c.on_close(u64::MAX, &mut out);
    }

    /// Real frames with a few bytes changed: no panic, bounded memory.
    #[test]
    fn real_frames_with_corrupted_bytes(
        flips in proptest::collection::vec((proptest::bool::ANY, 0.0f64..1.0, 0u8..=255), 1..4),
    ) {
        let (mut r, mut w) = mixed_bytes().clone();
        for (read, at, byte) in flips {
            let bytes = if read { &mut r } else { &mut w };
            let i = ((bytes.len() - 1) as f64 * at) as usize;
            bytes[i] = byte;
        }
        let mut segs = vec![(Direction::Read, r)];
        segs.push((Direction::Write, w));
        let (mut c, mut out) = replay(&segs, Side::Server, usize::MAX, 0);
        proptest::prop_assert!(c.heap_bytes() < 1 << 20);
        c.on_close(u64::MAX, &mut out);
    }
}
