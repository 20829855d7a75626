//! Behaviour of `Connection` on hand-written traffic, exact expectations.

use httpflow::{
    Connection, Direction, Exchange, InFlight, Limits, Mode, RequestMeta, Segment, Side, Stats,
};

/// Drives one connection; `read`/`write` capture everything, `read_cut` /
/// `write_cut` keep only a head of `head` bytes and a tail of `tail` bytes.
struct Conn {
    c: Connection,
    out: Vec<Exchange>,
}

impl Conn {
    fn new(side: Side) -> Self {
        Conn {
            c: Connection::new(side),
            out: Vec::new(),
        }
    }
    fn seg(&mut self, dir: Direction, ts: u64, data: &[u8], head: usize, tail: usize) {
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
            ts_ns: ts,
        };
        self.c.on_segment(dir, seg, &mut self.out);
    }
    fn read(&mut self, ts: u64, data: &[u8]) {
        self.seg(Direction::Read, ts, data, usize::MAX, 0);
    }
    fn write(&mut self, ts: u64, data: &[u8]) {
        self.seg(Direction::Write, ts, data, usize::MAX, 0);
    }
    fn read_cut(&mut self, ts: u64, data: &[u8], head: usize, tail: usize) {
        self.seg(Direction::Read, ts, data, head, tail);
    }
    fn write_cut(&mut self, ts: u64, data: &[u8], head: usize, tail: usize) {
        self.seg(Direction::Write, ts, data, head, tail);
    }
    fn close(&mut self, ts: u64) {
        self.c.on_close(ts, &mut self.out);
    }
    /// The exchanges completed so far, without their header fields (tested apart).
    fn take(&mut self) -> Vec<Exchange> {
        let mut out = std::mem::take(&mut self.out);
        for e in &mut out {
            e.meta = RequestMeta::default();
        }
        out
    }
}

fn ex(method: &str, target: &str, status: Option<u16>, start_ns: u64, end_ns: u64) -> Exchange {
    Exchange {
        method: method.into(),
        target: target.into(),
        status,
        start_ns,
        end_ns,
        meta: RequestMeta::default(),
    }
}

fn stats(f: impl FnOnce(&mut Stats)) -> Stats {
    let mut s = Stats::default();
    f(&mut s);
    s
}

const OK_EMPTY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

#[test]
fn keep_alive_exchanges_in_sequence() {
    let mut s = Conn::new(Side::Server);
    s.read(10, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(s.c.active_requests(), 1);
    s.write(20, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    s.read(30, b"POST /b?x=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    s.write(40, b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n");
    assert!(s.out.len() == 1 && s.c.active_requests() == 1);
    s.write(45, b"ok");
    assert_eq!(
        s.take(),
        [
            ex("GET", "/a", Some(200), 10, 20),
            ex("POST", "/b?x=1", Some(201), 30, 45)
        ]
    );
    assert_eq!(s.c.active_requests(), 0);
    s.close(50);
    assert_eq!(s.take(), []);
    assert_eq!(s.c.stats(), Stats::default());
}

#[test]
fn pipelined_requests_in_one_read_are_paired_in_order() {
    let mut s = Conn::new(Side::Server);
    s.read(
        1,
        b"GET /1 HTTP/1.1\r\n\r\nPUT /2 HTTP/1.1\r\nContent-Length: 4\r\n\r\nbodyDELETE /3 HTTP/1.1\r\n\r\n",
    );
    assert_eq!(s.c.active_requests(), 3);
    s.write(2, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 404 Not");
    assert_eq!(s.c.active_requests(), 1);
    s.write(3, b" Found\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        s.take(),
        [
            ex("GET", "/1", Some(200), 1, 2),
            ex("PUT", "/2", Some(204), 1, 2),
            ex("DELETE", "/3", Some(404), 1, 3),
        ]
    );
}

#[test]
fn chunked_bodies_with_extensions_and_trailers() {
    let mut s = Conn::new(Side::Server);
    s.read(
        1,
        b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\n",
    );
    s.read(2, b"0\r\nX-Checksum: 9\r\n\r\n");
    s.write(
        3,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r",
    );
    s.write(4, b"\n1A;a=b;c=\"d e\"\r\n");
    s.write(5, &[b'x'; 0x1a]);
    s.write(6, b"\r\n0\r\nTrailer-A: 1\r\n");
    assert_eq!(s.take(), []);
    s.write(7, b"Trailer-B: 2\r\n\r\n");
    s.read(8, b"GET /next HTTP/1.1\r\n\r\n");
    s.write(9, OK_EMPTY);
    assert_eq!(
        s.take(),
        [
            ex("POST", "/up", Some(200), 1, 7),
            ex("GET", "/next", Some(200), 8, 9)
        ]
    );
    assert_eq!(s.c.stats(), Stats::default());
}

#[test]
fn head_204_and_304_responses_have_no_body() {
    let mut s = Conn::new(Side::Server);
    s.read(1, b"HEAD /f HTTP/1.1\r\n\r\nGET /g HTTP/1.1\r\n\r\nGET /h HTTP/1.1\r\n\r\nGET /i HTTP/1.1\r\n\r\n");
    s.write(2, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    s.write(
        3,
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n",
    );
    s.write(4, b"HTTP/1.1 204 No Content\r\n\r\n");
    s.write(5, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    assert_eq!(
        s.take(),
        [
            ex("HEAD", "/f", Some(200), 1, 2),
            ex("GET", "/g", Some(304), 1, 3),
            ex("GET", "/h", Some(204), 1, 4),
            ex("GET", "/i", Some(200), 1, 5),
        ]
    );
}

#[test]
fn interim_responses_do_not_complete_the_exchange() {
    let mut s = Conn::new(Side::Server);
    s.read(
        1,
        b"PUT /big HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 6\r\n\r\n",
    );
    s.write(2, b"HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!((s.take(), s.c.active_requests()), (vec![], 1));
    s.read(3, b"123456");
    s.write(4, b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(s.take(), [ex("PUT", "/big", Some(201), 1, 4)]);
}

#[test]
fn switching_protocols_ends_tracking() {
    let mut s = Conn::new(Side::Server);
    s.read(
        1,
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    );
    s.write(
        2,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
    );
    assert_eq!(s.take(), [ex("GET", "/ws", Some(101), 1, 2)]);
    assert_eq!(s.c.mode(), Mode::Upgraded);
    s.read(3, b"\x81\x85GET / HTTP/1.1\r\n\r\n");
    s.write(4, b"HTTP/1.1 200 OK\r\n\r\n");
    s.close(5);
    assert_eq!(s.take(), []);
    assert_eq!(s.c.stats(), Stats::default());
    // A closed connection starts afresh.
    assert_eq!(s.c.mode(), Mode::Http);
}

#[test]
fn connect_tunnel_ends_tracking() {
    let mut s = Conn::new(Side::Server);
    s.read(
        1,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    );
    s.write(2, b"HTTP/1.1 200 Connection Established\r\n\r\n");
    s.read(3, b"\x16\x03\x01\x00\xa5\x01\x00");
    assert_eq!(
        s.take(),
        [ex("CONNECT", "example.com:443", Some(200), 1, 2)]
    );
    assert_eq!((s.c.mode(), s.c.parse_errors()), (Mode::Upgraded, 0));
}

#[test]
fn head_split_across_reads() {
    let req = b"GET /split/path?q=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    let mut s = Conn::new(Side::Server);
    for (i, b) in req.chunks(1).enumerate() {
        s.read(100 + i as u64, b);
    }
    for (i, b) in resp.chunks(7).enumerate() {
        s.write(1000 + i as u64, b);
    }
    let last = 1000 + (resp.len() as u64).div_ceil(7) - 1;
    assert_eq!(
        s.take(),
        [ex("GET", "/split/path?q=1", Some(200), 100, last)]
    );
    assert!(s.c.heap_bytes() <= 1024, "{}", s.c.heap_bytes());
}

fn big_request(header_bytes: usize) -> Vec<u8> {
    let mut r = b"GET /big/headers HTTP/1.1\r\nHost: h\r\nCookie: ".to_vec();
    r.resize(header_bytes - 4, b'c');
    r.extend_from_slice(b"\r\n\r\n");
    r
}

#[test]
fn sixteen_kib_head_with_one_kib_capture() {
    let req = big_request(16 * 1024);
    let mut s = Conn::new(Side::Server);
    s.read_cut(1, &req, 1024, 64);
    // The tail showed the end of the head: the request is complete.
    assert_eq!(s.c.active_requests(), 1);
    s.write(2, OK_EMPTY);
    s.read_cut(3, &req, 1024, 64);
    s.write(
        4,
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(
        s.take(),
        [
            ex("GET", "/big/headers", Some(200), 1, 2),
            ex("GET", "/big/headers", Some(431), 3, 4)
        ]
    );
    assert_eq!(s.c.stats(), stats(|s| s.partial_heads = 2));
}

#[test]
fn big_head_read_in_pieces_ends_at_the_response() {
    // 4 KiB reads with a 1 KiB head capture and a 16-byte tail: the empty
    // line is in no captured part, the response start completes the request.
    let req = big_request(16 * 1024 + 100);
    let mut s = Conn::new(Side::Server);
    for (i, piece) in req.chunks(4096).enumerate() {
        s.read_cut(10 + i as u64, piece, 1024, 16);
    }
    // The last 100 bytes were one segment, captured whole: the end was seen.
    assert_eq!(s.c.active_requests(), 1);
    s.write(20, OK_EMPTY);

    let req = big_request(16 * 1024);
    for (i, piece) in req.chunks(4096).enumerate() {
        s.read_cut(30 + i as u64, &piece[..piece.len() - 2], 1024, 16);
    }
    assert_eq!(s.c.active_requests(), 0);
    s.write(40, OK_EMPTY);
    assert_eq!(
        s.take(),
        [
            ex("GET", "/big/headers", Some(200), 10, 20),
            ex("GET", "/big/headers", Some(200), 30, 40)
        ]
    );
}

#[test]
fn head_longer_than_the_cap_with_full_capture() {
    let mut req = big_request(20 * 1024);
    // Framing fields after the cap are not seen; before it they are.
    let line_end = req.iter().position(|&b| b == b'\n').unwrap() + 1;
    req.splice(line_end..line_end, b"Content-Length: 4\r\n".iter().copied());
    req.extend_from_slice(b"body");
    let mut s = Conn::new(Side::Server);
    for (i, piece) in req.chunks(1000).enumerate() {
        s.read(1 + i as u64, piece);
        assert!(s.c.heap_bytes() <= 9 * 1024, "{}", s.c.heap_bytes());
    }
    s.write(100, OK_EMPTY);
    s.read(101, b"GET /after HTTP/1.1\r\n\r\n");
    s.write(102, OK_EMPTY);
    assert_eq!(
        s.take(),
        [
            ex("GET", "/big/headers", Some(200), 1, 100),
            ex("GET", "/after", Some(200), 101, 102)
        ]
    );
    assert_eq!(s.c.stats(), stats(|s| s.partial_heads = 1));
}

#[test]
fn body_containing_a_status_line_is_not_a_response() {
    let mut s = Conn::new(Side::Server);
    s.read(1, b"GET /raw HTTP/1.1\r\n\r\nGET /two HTTP/1.1\r\n\r\n");
    let body = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
    s.write(2, head.as_bytes());
    s.write(3, body);
    assert_eq!(s.take(), [ex("GET", "/raw", Some(200), 1, 3)]);
    s.write(
        4,
        b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    s.write(5, b"13\r\nHTTP/1.1 200 OK\r\n\r\n\r\n");
    s.write(6, b"0\r\n\r\n");
    assert_eq!(s.take(), [ex("GET", "/two", Some(500), 1, 6)]);
}

#[test]
fn response_without_length_ends_at_close() {
    let mut s = Conn::new(Side::Server);
    s.read(1, b"GET /stream HTTP/1.1\r\n\r\n");
    s.write(
        2,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one ",
    );
    s.write(3, b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(s.take(), []);
    s.close(9);
    assert_eq!(s.take(), [ex("GET", "/stream", Some(200), 1, 3)]);
}

#[test]
fn http_1_0() {
    let mut s = Conn::new(Side::Server);
    s.read(1, b"GET /old HTTP/1.0\r\nUser-Agent: x\r\n\r\n");
    s.write(2, b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nold!");
    s.read(3, b"POST /form HTTP/1.0\r\nContent-Length: 3\r\n\r\na=b");
    s.write(4, b"HTTP/1.0 302 Found\r\nLocation: /\r\n\r\n");
    s.write(5, b"moved");
    s.close(6);
    assert_eq!(
        s.take(),
        [
            ex("GET", "/old", Some(200), 1, 2),
            ex("POST", "/form", Some(302), 3, 5)
        ]
    );
}

#[test]
fn client_side_writes_requests_and_reads_responses() {
    let mut c = Conn::new(Side::Client);
    c.write(1, b"GET /api/items/7 HTTP/1.1\r\nHost: backend\r\n\r\n");
    c.read(2, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    c.read(3, b"2\r\n{}\r\n0\r\n\r\n");
    c.write(
        4,
        b"PATCH /api/items/7 HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    );
    c.read(
        5,
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(
        c.take(),
        [
            ex("GET", "/api/items/7", Some(200), 1, 3),
            ex("PATCH", "/api/items/7", Some(503), 4, 5)
        ]
    );
}

#[test]
fn close_before_the_response_reports_no_status() {
    let mut s = Conn::new(Side::Server);
    s.read(1, b"GET /slow HTTP/1.1\r\n\r\nGET /slower HTTP/1.1\r\n\r\n");
    s.write(2, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    s.close(7);
    assert_eq!(
        s.take(),
        [
            ex("GET", "/slow", Some(200), 1, 2),
            ex("GET", "/slower", None, 1, 7)
        ]
    );
    // The body was cut short.
    assert_eq!(s.c.parse_errors(), 1);
}

#[test]
fn garbage_makes_the_connection_non_http() {
    let tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    let mut s = Conn::new(Side::Server);
    s.read(1, tls_hello);
    assert_eq!((s.c.mode(), s.c.parse_errors()), (Mode::NotHttp, 1));
    s.read(2, b"GET / HTTP/1.1\r\n\r\n");
    s.write(3, OK_EMPTY);
    s.close(4);
    assert_eq!((s.take(), s.c.parse_errors()), (vec![], 1));

    let mut total = s.c.take_stats();
    assert_eq!((total.parse_errors, s.c.stats()), (1, Stats::default()));
    total += stats(|s| s.parse_errors = 2);
    assert_eq!(total.parse_errors, 3);

    for junk in [
        &b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"[..],
        b"*1\r\n$4\r\nPING\r\n",
        b"GET /\r\n",
        &[0u8; 100],
    ] {
        let mut s = Conn::new(Side::Server);
        s.read(1, junk);
        assert_eq!(s.c.mode(), Mode::NotHttp, "{junk:?}");
    }
    // A response that is not HTTP/1.x.
    let mut c = Conn::new(Side::Client);
    c.write(1, b"GET / HTTP/1.1\r\n\r\n");
    c.read(2, b"\x00\x00\x12\x04\x00\x00\x00\x00\x00");
    c.close(3);
    assert_eq!((c.take(), c.c.parse_errors()), (vec![], 1));
}

#[test]
fn endless_head_without_newline_stays_bounded() {
    let mut s = Conn::new(Side::Server);
    s.read(1, b"GET /");
    for i in 0..1000 {
        s.read(2 + i, &[b'a'; 1000]);
    }
    assert!(s.c.heap_bytes() <= 9 * 1024, "{}", s.c.heap_bytes());
    assert_eq!(s.c.mode(), Mode::Http);
    s.write(
        5000,
        b"HTTP/1.1 414 URI Too Long\r\nContent-Length: 0\r\n\r\n",
    );
    let out = s.take();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].status, out[0].target.len()), (Some(414), 2048));
}

#[test]
fn pipelined_queue_is_capped() {
    let mut s = Conn {
        c: Connection::with_limits(
            Side::Server,
            Limits {
                max_pending: 4,
                ..Limits::default()
            },
        ),
        out: Vec::new(),
    };
    s.read(1, &b"GET / HTTP/1.1\r\n\r\n".repeat(6));
    assert_eq!(s.c.active_requests(), 4);
    assert_eq!(s.c.stats().dropped_requests, 2);
    s.write(2, &OK_EMPTY.repeat(6));
    assert_eq!(s.take().len(), 4);
    assert_eq!(s.c.stats().unmatched_responses, 2);
}

#[test]
fn truncated_content_length_body_is_counted_by_length() {
    let mut s = Conn::new(Side::Server);
    s.read(1, b"GET /video HTTP/1.1\r\n\r\n");
    let mut resp = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec();
    resp.resize(resp.len() + 60_000, b'v');
    s.write_cut(2, &resp, 1024, 32);
    s.write_cut(3, &[b'w'; 39_000], 1024, 32);
    assert_eq!(s.take(), []);
    // The last write holds the end of the body and the next request's bytes
    // are read afterwards.
    s.write_cut(4, &[b'x'; 1000], 1024, 32);
    s.read(5, b"GET /next HTTP/1.1\r\n\r\n");
    s.write_cut(6, OK_EMPTY, 1024, 32);
    assert_eq!(
        s.take(),
        [
            ex("GET", "/video", Some(200), 1, 4),
            ex("GET", "/next", Some(200), 5, 6)
        ]
    );
    assert_eq!(s.c.stats(), Stats::default());
}

#[test]
fn truncated_chunked_body_resynchronises_on_the_last_chunk() {
    let mut s = Conn::new(Side::Server);
    s.read(1, b"GET /feed HTTP/1.1\r\n\r\n");
    s.write(2, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    // Many small chunks per write: the framing is lost in the uncaptured part.
    let chunks = b"5\r\nhello\r\n".repeat(500);
    s.write_cut(3, &chunks, 1024, 32);
    s.write_cut(4, &[chunks.as_slice(), b"0\r\n\r\n"].concat(), 1024, 32);
    assert_eq!(s.take(), [ex("GET", "/feed", Some(200), 1, 4)]);
    assert_eq!(s.c.stats(), stats(|s| s.resyncs = 1));
    // Big chunks keep the framing: the uncaptured part is chunk data.
    s.read(5, b"GET /feed HTTP/1.1\r\n\r\n");
    s.write(6, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut chunk = b"4000\r\n".to_vec();
    chunk.resize(6 + 0x4000, b'd');
    chunk.extend_from_slice(b"\r\n");
    s.write_cut(7, &chunk, 1024, 32);
    s.write_cut(8, &chunk, 1024, 32);
    s.write(9, b"0\r\n\r\n");
    assert_eq!(s.take(), [ex("GET", "/feed", Some(200), 5, 9)]);
    assert_eq!(s.c.stats(), stats(|s| s.resyncs = 1));
}

#[test]
fn lost_chunked_body_ends_at_the_next_request_or_close() {
    let mut s = Conn::new(Side::Server);
    s.read(1, b"GET /a HTTP/1.1\r\n\r\n");
    let mut resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    resp.extend_from_slice(&b"3\r\nabc\r\n".repeat(400));
    s.write_cut(2, &resp, 1024, 16);
    s.write_cut(3, &b"3\r\nabc\r\n".repeat(400), 1024, 16);
    s.read(4, b"GET /b HTTP/1.1\r\n\r\n");
    assert_eq!(s.take(), [ex("GET", "/a", Some(200), 1, 3)]);
    s.write_cut(5, &resp, 1024, 16);
    s.close(6);
    assert_eq!(s.take(), [ex("GET", "/b", Some(200), 4, 5)]);
    assert_eq!(s.c.stats(), stats(|s| s.resyncs = 2));
}

#[test]
fn response_head_cut_without_framing_fields() {
    // The status line is captured, Content-Length is not.
    let mut head = b"HTTP/1.1 404 Not Found\r\nX-Pad: ".to_vec();
    head.resize(3000, b'p');
    head.extend_from_slice(b"\r\nContent-Length: 2\r\n\r\nno");
    let mut s = Conn::new(Side::Server);
    s.read(1, b"GET /missing HTTP/1.1\r\n\r\n");
    s.write_cut(2, &head, 1024, 16);
    s.read(3, b"GET /x HTTP/1.1\r\n\r\n");
    assert_eq!(s.take(), [ex("GET", "/missing", Some(404), 1, 2)]);
    assert_eq!(
        s.c.stats(),
        stats(|s| {
            s.partial_heads = 1;
            s.resyncs = 1;
        })
    );
}

#[test]
fn message_boundary_in_a_gap_resynchronises_at_segment_starts() {
    let mut s = Conn::new(Side::Server);
    // Two pipelined requests, the second one starting in uncaptured bytes.
    let mut first = b"POST /upload HTTP/1.1\r\nContent-Length: 3000\r\n\r\n".to_vec();
    first.resize(first.len() + 3000, b'u');
    let both = [
        first.as_slice(),
        b"GET /lost HTTP/1.1\r\nX: 1234567890\r\n\r\n",
    ]
    .concat();
    s.read_cut(1, &both, 1024, 8);
    // Next read begins with a body fragment (skipped), then a real request.
    s.read(2, b"trailing junk");
    s.read(3, b"GET /found HTTP/1.1\r\n\r\n");
    s.write(4, &OK_EMPTY.repeat(2));
    assert_eq!(
        s.take(),
        [
            ex("POST", "/upload", Some(200), 1, 4),
            ex("GET", "/found", Some(200), 3, 4)
        ]
    );
    assert_eq!(s.c.mode(), Mode::Http);
    assert_eq!(
        s.c.stats(),
        stats(|s| {
            s.resyncs = 1;
            s.skipped_segments = 1;
        })
    );
}

#[test]
fn out_of_sync_start_is_confirmed_before_it_is_trusted() {
    let mut s = Conn {
        c: Connection::mid_stream(Side::Server, Limits::default()),
        out: Vec::new(),
    };
    // Looks like the start of a request line, is not one.
    s.read_cut(
        1,
        &[b"tail of a body".as_slice(), &[b'z'; 5000]].concat(),
        7,
        4,
    );
    s.write(2, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    s.read(3, b"GET /real HTTP/1.1\r\n\r\n");
    s.write(4, OK_EMPTY);
    assert_eq!(s.take(), [ex("GET", "/real", Some(200), 3, 4)]);
    assert_eq!(
        s.c.stats(),
        stats(|s| {
            s.skipped_segments = 1;
            s.unmatched_responses = 1;
        })
    );
}

#[test]
fn body_after_a_cut_head_without_length_is_skipped() {
    // Content-Length is in the uncaptured part of the head: the body that
    // follows in later reads is skipped rather than taken for garbage.
    let mut head = b"POST /form HTTP/1.1\r\nCookie: ".to_vec();
    head.resize(2000, b'c');
    head.extend_from_slice(b"\r\nContent-Length: 10\r\n\r\n");
    let mut s = Conn::new(Side::Server);
    s.read_cut(1, &head, 512, 32);
    s.read(2, b"a=1&b=2&c=");
    s.write(3, OK_EMPTY);
    s.read(4, b"GET /next HTTP/1.1\r\n\r\n");
    s.write(5, OK_EMPTY);
    assert_eq!(
        s.take(),
        [
            ex("POST", "/form", Some(200), 1, 3),
            ex("GET", "/next", Some(200), 4, 5)
        ]
    );
    assert_eq!(
        s.c.stats(),
        stats(|s| {
            s.partial_heads = 1;
            s.skipped_segments = 1;
        })
    );
}

#[test]
fn mid_stream_connection_skips_until_a_message_starts() {
    let mut s = Conn {
        c: Connection::mid_stream(Side::Server, Limits::default()),
        out: Vec::new(),
    };
    s.read(1, b"ontinued body bytes \x00\x01");
    s.write(2, b"rest of an old response");
    s.read(3, b"GET /fresh HTTP/1.1\r\n\r\n");
    s.write(4, OK_EMPTY);
    assert_eq!(s.take(), [ex("GET", "/fresh", Some(200), 3, 4)]);
    assert_eq!((s.c.mode(), s.c.stats().skipped_segments), (Mode::Http, 2));
}

#[test]
fn early_response_to_an_incomplete_request_head() {
    let mut s = Conn::new(Side::Server);
    s.read(1, b"GET /half HTTP/1.1\r\nHost: a\r\n");
    s.write(
        2,
        b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
    s.close(3);
    assert_eq!(s.take(), [ex("GET", "/half", Some(408), 1, 2)]);
}

#[test]
fn malformed_but_readable_heads_count_parse_errors() {
    let mut s = Conn::new(Side::Server);
    s.read(1, b"GET /a HTTP/1.1\r\nBad Header: x\r\n\r\n");
    s.write(
        2,
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    );
    s.close(3);
    // Delimited by the close: its last byte is the last write.
    assert_eq!(s.take(), [ex("GET", "/a", Some(200), 1, 2)]);
    // httparse rejected the request head; the response length is invalid.
    assert_eq!(s.c.parse_errors(), 2);
}

#[test]
fn pipelined_response_after_a_cut_head_in_the_same_read() {
    let mut c = Conn::new(Side::Client);
    c.write(1, b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
    let mut resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: ".to_vec();
    resp.resize(2000, b's');
    resp.extend_from_slice(b"\r\n\r\nhelloHTTP/1.1 204 No Content\r\n\r\n");
    c.read_cut(2, &resp, 1024, 64);
    assert_eq!(
        c.take(),
        [
            ex("GET", "/a", Some(200), 1, 2),
            ex("GET", "/b", Some(204), 1, 2)
        ]
    );
    assert_eq!(c.c.stats(), stats(|s| s.partial_heads = 1));
}

#[test]
fn body_sent_by_sendfile_ends_when_the_next_request_begins() {
    // nginx with `sendfile on`: the head is written, the body is not seen.
    let mut s = Conn::new(Side::Server);
    s.read(1, b"GET /big.iso HTTP/1.1\r\n\r\n");
    s.write(2, b"HTTP/1.1 200 OK\r\nContent-Length: 700000000\r\n\r\n");
    s.read(3, b"GET /small.css HTTP/1.1\r\n\r\n");
    s.write(4, b"HTTP/1.1 304 Not Modified\r\n\r\n");
    assert_eq!(
        s.take(),
        [
            ex("GET", "/big.iso", Some(200), 1, 2),
            ex("GET", "/small.css", Some(304), 3, 4)
        ]
    );
    assert_eq!(s.c.stats(), stats(|s| s.unseen_bodies = 1));
    // Pipelined: the next request arrives before the body is written.
    s.read(10, b"GET /p1 HTTP/1.1\r\n\r\n");
    s.write(11, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n");
    s.read(12, b"GET /p2 HTTP/1.1\r\n\r\n");
    s.write(13, b"abc");
    s.write(14, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        s.take(),
        [
            ex("GET", "/p1", Some(200), 10, 13),
            ex("GET", "/p2", Some(200), 12, 14)
        ]
    );
    // Closed after a head whose body went by sendfile: no parse error.
    s.read(15, b"GET /last HTTP/1.1\r\n\r\n");
    s.write(16, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
    s.close(17);
    assert_eq!(s.take(), [ex("GET", "/last", Some(200), 15, 16)]);
    assert_eq!(s.c.stats(), stats(|s| s.unseen_bodies = 1));
    // A body partly seen is not taken for sendfile: pipelining stays exact.
    s.read(5, b"GET /a HTTP/1.1\r\n\r\n");
    s.write(6, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab");
    s.read(7, b"GET /b HTTP/1.1\r\n\r\n");
    s.write(8, b"cdHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        s.take(),
        [
            ex("GET", "/a", Some(200), 5, 8),
            ex("GET", "/b", Some(200), 7, 8)
        ]
    );
    assert_eq!(s.c.stats().unseen_bodies, 1);
}

#[test]
fn out_of_sync_a_request_line_is_found_inside_a_segment() {
    let mut s = Conn {
        c: Connection::mid_stream(Side::Server, Limits::default()),
        out: Vec::new(),
    };
    s.read(
        1,
        b"end of an old upload: a=1&b=2 HTTP/1.1\r\nGET /x HTTP/1.1\r\n\r\n",
    );
    s.write(2, b"lost response bytes HTTP/1.1 204 No Content\r\n\r\n");
    s.close(3);
    // The request line is found after the end of a body, the status line too.
    assert_eq!(s.take(), [ex("GET", "/x", Some(204), 1, 2)]);
    assert_eq!(s.c.stats(), stats(|s| s.skipped_segments = 2));
}

#[test]
fn sendfile_reported_as_uncaptured_write_keeps_exact_framing() {
    let mut s = Conn::new(Side::Server);
    s.read(1, b"GET /f HTTP/1.1\r\n\r\n");
    s.write(2, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
    let sendfile = Segment {
        len: 100_000,
        head: &[],
        tail: &[],
        ts_ns: 3,
    };
    s.c.on_segment(Direction::Write, sendfile, &mut s.out);
    assert_eq!(s.take(), [ex("GET", "/f", Some(200), 1, 3)]);
    assert_eq!(s.c.stats(), Stats::default());
}

#[test]
fn span_header_fields_are_kept_and_in_flight_requests_listed() {
    let mut s = Conn::new(Side::Server);
    let long_agent = "a".repeat(300);
    let req = format!(
        "GET /a?secret=1 HTTP/1.1\r\nHost: example.org:8080\r\nUser-Agent: {long_agent}\r\n\
         Cookie: c=1\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n\
         POST /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    );
    s.read(10, req.as_bytes());
    let in_flight: Vec<InFlight<'_>> = s.c.in_flight().collect();
    assert_eq!(
        in_flight,
        [
            InFlight {
                method: "GET",
                target: "/a?secret=1",
                start_ns: 10,
                traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            },
            InFlight {
                method: "POST",
                target: "/b",
                start_ns: 10,
                traceparent: None,
            }
        ]
    );
    s.write(20, OK_EMPTY);
    assert_eq!(s.c.in_flight().count(), 1);
    let meta = &s.out[0].meta;
    assert_eq!(meta.host.as_deref(), Some("example.org:8080"));
    assert_eq!(meta.user_agent.as_deref(), Some(&long_agent[..256]));
    assert_eq!(
        meta.traceparent.as_deref(),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
    s.write(30, OK_EMPTY);
    assert_eq!(s.out[1].meta, RequestMeta::default());
    assert_eq!(s.c.in_flight().count(), 0);
}

/// Exchanges framed elsewhere (the probe's kernel side) mixed with segments at message
/// boundaries: a framed request answered from the bytes, framed requests with bytes
/// pipelined behind them, a response with nothing waiting, and one cut by the close.
#[test]
fn framed_requests_and_responses_mix_with_segments() {
    let mut s = Conn::new(Side::Server);
    s.c.on_framed_request(b"GET /a?q=1 HTTP/1.1", 10);
    assert_eq!(s.c.active_requests(), 1);
    let inflight: Vec<InFlight<'_>> = s.c.in_flight().collect();
    assert_eq!((inflight[0].method, inflight[0].target), ("GET", "/a?q=1"));
    s.c.on_framed_response(200, 20, &mut s.out);
    assert_eq!(s.take(), [ex("GET", "/a?q=1", Some(200), 10, 20)]);

    // The response was not framed: it is parsed from the bytes, chunked.
    s.c.on_framed_request(b"HEAD /b HTTP/1.1", 30);
    s.write(40, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
    s.c.on_framed_request(b"GET /c HTTP/1.1", 50);
    s.write(60, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(s.take(), [ex("HEAD", "/b", Some(200), 30, 40)]);
    s.write(70, b"3\r\nabc\r\n0\r\n\r\n");
    assert_eq!(s.take(), [ex("GET", "/c", Some(200), 50, 70)]);

    // A request read as bytes while a framed one waits: answered in order.
    s.c.on_framed_request(b"GET /d HTTP/1.1", 80);
    s.read(85, b"DELETE /e HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(s.c.active_requests(), 2);
    s.c.on_framed_response(204, 90, &mut s.out);
    s.write(95, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        s.take(),
        [
            ex("GET", "/d", Some(204), 80, 90),
            ex("DELETE", "/e", Some(404), 85, 95)
        ]
    );

    // Nothing waiting: not reported.
    s.c.on_framed_response(200, 100, &mut s.out);
    assert_eq!(s.take(), []);
    // A framed response cut by the close ends there, as a parse error; a request left
    // without any response is unanswered.
    s.c.on_framed_request(b"GET /f HTTP/1.1", 110);
    s.c.on_framed_response_cut(200, 120, &mut s.out);
    s.c.on_framed_request(b"GET /g HTTP/1.1", 130);
    s.close(140);
    assert_eq!(
        s.take(),
        [
            ex("GET", "/f", Some(200), 110, 120),
            ex("GET", "/g", None, 130, 140)
        ]
    );
    let expected = stats(|s| {
        s.unmatched_responses = 1;
        s.parse_errors = 1;
    });
    assert_eq!(s.c.stats(), expected);
}

/// A framed request ends HTTP/2 detection, and an odd request line is split leniently.
#[test]
fn framed_request_lines_without_version_or_target() {
    let mut s = Conn::new(Side::Server);
    s.c.on_framed_request(b"GET /only-target", 1);
    s.c.on_framed_request(b"OPTIONS", 2);
    s.c.on_framed_response(200, 3, &mut s.out);
    s.c.on_framed_response(200, 4, &mut s.out);
    assert_eq!(
        s.take(),
        [
            ex("GET", "/only-target", Some(200), 1, 3),
            ex("OPTIONS", "", Some(200), 2, 4)
        ]
    );
    assert_eq!(s.c.mode(), Mode::Http);
}
