//! Property tests: arbitrary input never panics and stays bounded; valid
//! traffic, cut into arbitrary segments, gives back exactly the exchanges
//! it was generated from.

use httpflow::{Connection, Direction, Exchange, Limits, Mode, Segment, Side};
use proptest::prelude::*;

/// Small deterministic generator for split points and chunk sizes.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

fn feed(
    c: &mut Connection,
    dir: Direction,
    data: &[u8],
    ts: u64,
    cap: Option<(usize, usize)>,
    out: &mut Vec<Exchange>,
) {
    let (h, t) = match cap {
        None => (data.len(), 0),
        Some((h, t)) => {
            let h = h.min(data.len());
            (
                h,
                if h == data.len() {
                    0
                } else {
                    t.min(data.len())
                },
            )
        }
    };
    let seg = Segment {
        len: data.len(),
        head: &data[..h],
        tail: &data[data.len() - t..],
        ts_ns: ts,
    };
    c.on_segment(dir, seg, out);
}

/// Upper bound of `heap_bytes` implied by the default limits.
fn heap_bound() -> usize {
    let l = Limits::default();
    2 * l.max_head_bytes + (l.max_pending + 1) * (64 + 32 + l.max_target_bytes) * 2
}

const FRAGMENTS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"/x?y=1",
    b" HTTP/1.1\r\n",
    b" HTTP/1.0\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\n",
    b"HTTP/1.1 204 No Content\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 99999999999999999999\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"\r\n",
    b"\n",
    b"5;e=1\r\nhello\r\n",
    b"0\r\n\r\n",
    b"0\r\nT: 1\r\n\r\n",
    b"ffffffffffffffff\r\n",
    b"\x00\xff\x16\x03",
];

fn http_soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(FRAGMENTS).prop_map(|f| f.to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..40),
        ],
        0..30,
    )
    .prop_map(|parts| parts.concat())
}

#[derive(Debug, Clone)]
struct Op {
    write: bool,
    data: Vec<u8>,
    /// Extra uncaptured bytes between head and tail.
    gap: usize,
    head_cap: usize,
    tail_cap: usize,
}

fn op(data: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Op> {
    (
        any::<bool>(),
        data,
        prop_oneof![3 => Just(0usize), 1 => 0usize..100_000],
        0usize..600,
        0usize..64,
    )
        .prop_map(|(write, data, gap, head_cap, tail_cap)| Op {
            write,
            data,
            gap,
            head_cap,
            tail_cap,
        })
}

fn run_ops(side: Side, mid: bool, ops: &[Op], close: bool) {
    let mut c = if mid {
        Connection::mid_stream(side, Limits::default())
    } else {
        Connection::new(side)
    };
    let mut out = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let h = op.head_cap.min(op.data.len());
        let t = op.tail_cap.min(op.data.len() - h);
        let dir = if op.write {
            Direction::Write
        } else {
            Direction::Read
        };
        // The segment's data: the first h bytes, `gap` unseen bytes, the rest as tail.
        let (head, tail) = if op.gap == 0 {
            (&op.data[..h], &op.data[op.data.len() - t..])
        } else {
            (&op.data[..h], &op.data[h..h + t])
        };
        let len = if op.gap == 0 {
            op.data.len()
        } else {
            h + op.gap + t
        };
        let seg = Segment {
            len,
            head,
            tail: if h == len { &[] } else { tail },
            ts_ns: i as u64,
        };
        c.on_segment(dir, seg, &mut out);
        assert!(c.heap_bytes() <= heap_bound(), "heap {}", c.heap_bytes());
        assert!(c.active_requests() <= Limits::default().max_pending + 1);
    }
    if close {
        c.on_close(ops.len() as u64, &mut out);
        assert_eq!(c.active_requests(), 0);
        assert_eq!(c.mode(), Mode::Http);
    }
    for e in &out {
        assert!(e.start_ns <= e.end_ns);
        assert!(e.target.len() <= Limits::default().max_target_bytes);
    }
}

proptest! {

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        server in any::<bool>(),
        mid in any::<bool>(),
        ops in prop::collection::vec(op(prop::collection::vec(any::<u8>(), 0..700)), 0..30),
        close in any::<bool>(),
    ) {
        run_ops(if server { Side::Server } else { Side::Client }, mid, &ops, close);
    }

    #[test]
    fn http_like_soup_never_panics_and_stays_bounded(
        server in any::<bool>(),
        mid in any::<bool>(),
        ops in prop::collection::vec(op(http_soup()), 0..30),
        close in any::<bool>(),
    ) {
        run_ops(if server { Side::Server } else { Side::Client }, mid, &ops, close);
    }
}

// ---- valid traffic ----

#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    Length,
    Chunked { ext: bool, trailers: bool },
}

#[derive(Debug, Clone)]
struct Msg {
    method: &'static str,
    target: String,
    /// Bytes of an extra header, to make heads longer than the capture.
    pad: usize,
    req: Option<(Framing, Vec<u8>)>,
    interim: bool,
    status: u16,
    resp: Framing,
    resp_body: Vec<u8>,
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => "[a-z]{0,40}".prop_map(String::into_bytes),
        1 => Just(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()),
        1 => "[ -~]{0,3000}".prop_map(String::into_bytes),
    ]
}

fn framing(chunked: bool) -> impl Strategy<Value = Framing> {
    if chunked {
        prop_oneof![
            1 => Just(Framing::Length),
            1 => (any::<bool>(), any::<bool>()).prop_map(|(ext, trailers)| Framing::Chunked { ext, trailers }),
        ]
        .boxed()
    } else {
        Just(Framing::Length).boxed()
    }
}

fn msg(chunked: bool) -> impl Strategy<Value = Msg> {
    (
        prop::sample::select(
            &[
                "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND",
            ][..],
        ),
        "/[a-z0-9/]{0,20}(\\?[a-z]=[0-9]{1,3})?",
        prop_oneof![3 => Just(0usize), 1 => 0usize..3000],
        prop::option::of((framing(chunked), body())),
        any::<bool>(),
        prop::sample::select(&[200u16, 201, 204, 301, 304, 404, 500, 503][..]),
        framing(chunked),
        body(),
    )
        .prop_map(
            |(method, target, pad, req, interim, status, resp, resp_body)| Msg {
                method,
                target,
                pad,
                req,
                interim,
                status,
                resp,
                resp_body,
            },
        )
}

fn encode_body(out: &mut Vec<u8>, framing: Framing, body: &[u8], rng: &mut Rng) {
    match framing {
        Framing::Length => out.extend_from_slice(body),
        Framing::Chunked { ext, trailers } => {
            let mut rest = body;
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(700));
                out.extend_from_slice(format!("{n:x}").as_bytes());
                if ext {
                    out.extend_from_slice(b";name=\"v\"");
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&rest[..n]);
                out.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            out.extend_from_slice(if ext { b"0;end\r\n" } else { b"0\r\n" });
            if trailers {
                out.extend_from_slice(b"X-Checksum: 1\r\nX-Other: 2\r\n");
            }
            out.extend_from_slice(b"\r\n");
        }
    }
}

fn framing_header(framing: Framing, len: usize) -> String {
    match framing {
        Framing::Length => format!("Content-Length: {len}\r\n"),
        Framing::Chunked { .. } => "Transfer-Encoding: chunked\r\n".to_string(),
    }
}

fn request_bytes(m: &Msg, rng: &mut Rng) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\nHost: example\r\n", m.method, m.target).into_bytes();
    out.extend_from_slice(format!("X-Pad: {}\r\n", "p".repeat(m.pad)).as_bytes());
    if let Some((f, body)) = &m.req {
        out.extend_from_slice(framing_header(*f, body.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        encode_body(&mut out, *f, body, rng);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn has_body(m: &Msg) -> bool {
    m.method != "HEAD" && m.status != 204 && m.status != 304
}

fn response_bytes(m: &Msg, close_delimited: bool, rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    if m.interim {
        out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} Reason\r\nX-Pad: {}\r\n",
            m.status,
            "q".repeat(m.pad)
        )
        .as_bytes(),
    );
    if close_delimited {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&m.resp_body);
        return out;
    }
    if m.status != 204 {
        out.extend_from_slice(framing_header(m.resp, m.resp_body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if has_body(m) {
        encode_body(&mut out, m.resp, &m.resp_body, rng);
    }
    out
}

/// Cuts `all` into pieces of random sizes (small, medium or any).
fn cut(all: &[u8], rng: &mut Rng) -> Vec<Vec<u8>> {
    let max = match rng.below(3) {
        0 => 8,
        1 => 300,
        _ => all.len(),
    };
    let mut pieces = Vec::new();
    let mut pos = 0;
    while pos < all.len() {
        let n = (1 + rng.below(max)).min(all.len() - pos);
        pieces.push(all[pos..pos + n].to_vec());
        pos += n;
    }
    pieces
}

/// Splits the concatenation of `parts` into segments sent in `dir`;
/// returns for each part the times of the segments holding its first and
/// last byte.
fn split(
    parts: &[Vec<u8>],
    dir: Direction,
    rng: &mut Rng,
    ts: &mut u64,
    ops: &mut Vec<(Direction, Vec<u8>, u64)>,
) -> Vec<(u64, u64)> {
    let mut segs = Vec::new(); // (end offset, ts)
    let mut pos = 0;
    for piece in cut(&parts.concat(), rng) {
        *ts += 1;
        pos += piece.len();
        segs.push((pos, *ts));
        ops.push((dir, piece, *ts));
    }
    let ts_at = |off: usize| segs.iter().find(|(end, _)| off < *end).map_or(0, |s| s.1);
    let mut off = 0;
    parts
        .iter()
        .map(|p| {
            let r = (ts_at(off), ts_at(off + p.len() - 1));
            off += p.len();
            r
        })
        .collect()
}

/// How requests and responses follow each other.
#[derive(Debug, Clone, Copy)]
enum Order {
    /// Each response before the next request.
    Sequential,
    /// All requests, then all responses, segments spanning messages.
    Pipelined,
    /// Requests and responses interleaved at random, each response after
    /// its request.
    Interleaved,
}

struct Traffic {
    ops: Vec<(Direction, Vec<u8>, u64)>,
    expected: Vec<Exchange>,
    close_ts: u64,
}

fn traffic(msgs: &[Msg], side: Side, order: Order, close_delimited: bool, seed: u64) -> Traffic {
    let mut rng = Rng(seed | 1);
    let (req_dir, resp_dir) = match side {
        Side::Server => (Direction::Read, Direction::Write),
        Side::Client => (Direction::Write, Direction::Read),
    };
    let close_delimited = close_delimited && msgs.last().is_some_and(has_body);
    let reqs: Vec<Vec<u8>> = msgs.iter().map(|m| request_bytes(m, &mut rng)).collect();
    let resps: Vec<Vec<u8>> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| response_bytes(m, close_delimited && i + 1 == msgs.len(), &mut rng))
        .collect();
    let mut ts = 0;
    let mut ops = Vec::new();
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    match order {
        Order::Pipelined => {
            let s = split(&reqs, req_dir, &mut rng, &mut ts, &mut ops);
            let e = split(&resps, resp_dir, &mut rng, &mut ts, &mut ops);
            starts = s.iter().map(|x| x.0).collect();
            ends = e.iter().map(|x| x.1).collect();
        }
        Order::Sequential => {
            for (rq, rs) in reqs.iter().zip(&resps) {
                let one = |m: &Vec<u8>, dir, rng: &mut Rng, ts: &mut u64, ops: &mut Vec<_>| {
                    split(std::slice::from_ref(m), dir, rng, ts, ops)[0]
                };
                starts.push(one(rq, req_dir, &mut rng, &mut ts, &mut ops).0);
                ends.push(one(rs, resp_dir, &mut rng, &mut ts, &mut ops).1);
            }
        }
        Order::Interleaved => {
            let req_pieces: Vec<_> = reqs.iter().map(|r| cut(r, &mut rng)).collect();
            let resp_pieces: Vec<_> = resps.iter().map(|r| cut(r, &mut rng)).collect();
            // Bytes of each response up to the end of its final head.
            let head_lens: Vec<usize> = msgs
                .iter()
                .zip(&resps)
                .map(|(m, r)| {
                    let heads = 1 + usize::from(m.interim);
                    let mut at = 0;
                    for _ in 0..heads {
                        at += r[at..]
                            .windows(4)
                            .position(|w| w == b"\r\n\r\n")
                            .unwrap_or(0)
                            + 4;
                    }
                    at
                })
                .collect();
            let (mut rq, mut rs) = ((0, 0), (0, 0)); // (message, piece) next to send
            let mut resp_sent = 0; // bytes of response rs.0 sent
            loop {
                let req_ready = rq.0 < msgs.len();
                let resp_ready = rs.0 < rq.0;
                if !req_ready && !resp_ready {
                    break;
                }
                // A request read between a response head and the first byte of
                // its body is taken as the sign of a body sent by sendfile
                // (`Stats::unseen_bodies`): such pipelining is not generated.
                let between_head_and_body =
                    resp_ready && resp_sent == head_lens[rs.0] && resp_sent < resps[rs.0].len();
                ts += 1;
                if req_ready && !between_head_and_body && (!resp_ready || rng.below(2) == 0) {
                    if rq.1 == 0 {
                        starts.push(ts);
                    }
                    ops.push((req_dir, req_pieces[rq.0][rq.1].clone(), ts));
                    rq.1 += 1;
                    if rq.1 == req_pieces[rq.0].len() {
                        rq = (rq.0 + 1, 0);
                    }
                } else {
                    ops.push((resp_dir, resp_pieces[rs.0][rs.1].clone(), ts));
                    resp_sent += resp_pieces[rs.0][rs.1].len();
                    rs.1 += 1;
                    if rs.1 == resp_pieces[rs.0].len() {
                        ends.push(ts);
                        rs = (rs.0 + 1, 0);
                        resp_sent = 0;
                    }
                }
            }
        }
    }
    let expected = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| Exchange {
            method: m.method.to_string(),
            target: m.target.clone(),
            status: Some(m.status),
            start_ns: starts[i],
            end_ns: ends[i],
            meta: Default::default(),
        })
        .collect();
    Traffic {
        ops,
        expected,
        close_ts: ts + 1,
    }
}

fn replay(t: &Traffic, side: Side, cap: Option<(usize, usize)>) -> (Vec<Exchange>, Connection) {
    let (out, c) = replay_traced(t, side, cap, false);
    if out != t.expected && std::env::var_os("TRACE").is_some() {
        replay_traced(t, side, cap, true);
    }
    (out, c)
}

fn replay_traced(
    t: &Traffic,
    side: Side,
    cap: Option<(usize, usize)>,
    trace: bool,
) -> (Vec<Exchange>, Connection) {
    let mut c = Connection::new(side);
    let mut out = Vec::new();
    for (dir, data, ts) in &t.ops {
        feed(&mut c, *dir, data, *ts, cap, &mut out);
        if trace {
            eprintln!(
                "{dir:?} {ts} {} {:?}\n  => {c:?}\n  out {}",
                data.len(),
                String::from_utf8_lossy(&data[..data.len().min(cap.map_or(99999, |c| c.0))]),
                out.len()
            );
        }
    }
    c.on_close(t.close_ts, &mut out);
    // The kept header fields depend on what the capture cut; exchanges.rs tests them.
    for e in &mut out {
        e.meta = Default::default();
    }
    (out, c)
}

proptest! {

    #[test]
    fn valid_traffic_fully_captured_is_reconstructed_exactly(
        msgs in prop::collection::vec(msg(true), 1..8),
        server in any::<bool>(),
        order in prop::sample::select(&[Order::Sequential, Order::Pipelined, Order::Interleaved][..]),
        close_delimited in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let side = if server { Side::Server } else { Side::Client };
        let t = traffic(&msgs, side, order, close_delimited, seed);
        let (out, c) = replay(&t, side, None);
        prop_assert_eq!(&out, &t.expected);
        let st = c.stats();
        prop_assert_eq!((st.parse_errors, st.resyncs, st.partial_heads, st.skipped_segments), (0, 0, 0, 0));
    }

    #[test]
    fn valid_traffic_with_truncated_capture_content_length(
        msgs in prop::collection::vec(msg(false), 1..8),
        server in any::<bool>(),
        close_delimited in any::<bool>(),
        seed in any::<u64>(),
        head_cap in 64usize..1500,
        tail_cap in 0usize..64,
    ) {
        let side = if server { Side::Server } else { Side::Client };
        let t = traffic(&msgs, side, Order::Sequential, close_delimited, seed);
        let (out, c) = replay(&t, side, Some((head_cap, tail_cap)));
        prop_assert_eq!(&out, &t.expected);
        prop_assert_eq!(c.stats().parse_errors, 0, "{:?}\n{:?}", c, t.ops);
    }

    #[test]
    fn valid_traffic_with_truncated_capture_any_framing(
        msgs in prop::collection::vec(msg(true), 1..8),
        server in any::<bool>(),
        close_delimited in any::<bool>(),
        seed in any::<u64>(),
        head_cap in 64usize..1500,
        tail_cap in 0usize..64,
    ) {
        let side = if server { Side::Server } else { Side::Client };
        let t = traffic(&msgs, side, Order::Sequential, close_delimited, seed);
        let (out, _) = replay(&t, side, Some((head_cap, tail_cap)));
        let got: Vec<_> = out.iter().map(|e| (&e.method, &e.target, e.status)).collect();
        let want: Vec<_> = t.expected.iter().map(|e| (&e.method, &e.target, e.status)).collect();
        prop_assert_eq!(got, want);
    }
}

proptest! {

    /// Pipelined traffic with a truncated capture can lose messages in the
    /// uncaptured bytes, but never invents a request: every exchange comes
    /// from a generated request (its target possibly cut), in order.
    #[test]
    fn pipelined_traffic_with_truncated_capture_never_invents_requests(
        msgs in prop::collection::vec(msg(true), 1..8),
        server in any::<bool>(),
        seed in any::<u64>(),
        head_cap in 64usize..1500,
        tail_cap in 0usize..64,
    ) {
        let side = if server { Side::Server } else { Side::Client };
        let t = traffic(&msgs, side, Order::Pipelined, false, seed);
        let (out, c) = replay(&t, side, Some((head_cap, tail_cap)));
        prop_assert!(out.len() <= msgs.len());
        let mut next = 0;
        for e in &out {
            let found = msgs[next..]
                .iter()
                .position(|m| m.method == e.method && m.target.starts_with(&e.target));
            prop_assert!(found.is_some(), "{:?} not in {:?}", e, msgs);
            next += found.unwrap_or(0) + 1;
        }
        prop_assert_eq!(c.mode(), Mode::Http);
    }
}
