//! Pairs the requests and responses of one TCP connection into exchanges.

use std::collections::VecDeque;

use crate::body::{Body, Chunk};
use crate::head::{HeadInfo, Kind};
use crate::http2::{self, Http2};
use crate::stream::{At, Event, State, Stream};
use crate::{Direction, Exchange, InFlight, RequestMeta, Segment, Side};

/// Per-connection bounds on memory and on what is kept of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of a head buffered while it arrives in several segments; a
    /// longer head is read as far as this and then followed only for its end.
    pub max_head_bytes: usize,
    /// Requests waiting for their response (pipelining); further ones are
    /// dropped and counted in [`Stats::dropped_requests`].
    pub max_pending: usize,
    /// Bytes of a request target kept in [`Exchange::target`].
    pub max_target_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 8 * 1024,
            max_pending: 32,
            max_target_bytes: 2048,
        }
    }
}

/// Diagnostic counters of a connection, cumulative since it was created or
/// since [`Connection::take_stats`] (they survive [`Connection::on_close`]);
/// `+=` adds them up across connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Malformed HTTP: heads `httparse` rejected (then read leniently),
    /// invalid Content-Length or Transfer-Encoding, malformed chunks,
    /// messages cut off by the close, and the data that made the connection
    /// [`Mode::NotHttp`].
    pub parse_errors: u64,
    /// Heads not seen whole (capture truncated, or longer than
    /// [`Limits::max_head_bytes`]): their framing fields are a best effort.
    pub partial_heads: u64,
    /// Times the framing was lost to the capture (chunk framing or a
    /// message boundary in uncaptured bytes, framing fields not captured, or
    /// malformed chunks) and a heuristic took over.
    pub resyncs: u64,
    /// Segments skipped while out of sync because their captured start did
    /// not begin a message (their captured tail is skipped too).
    pub skipped_segments: u64,
    /// Final responses without a request to pair with (not reported).
    pub unmatched_responses: u64,
    /// Requests dropped because [`Limits::max_pending`] were waiting.
    pub dropped_requests: u64,
    /// Bodies of which no byte was seen, followed by the next message:
    /// sent by sendfile or splice (not observed); they end at their head.
    pub unseen_bodies: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, other: Stats) {
        self.parse_errors += other.parse_errors;
        self.partial_heads += other.partial_heads;
        self.resyncs += other.resyncs;
        self.skipped_segments += other.skipped_segments;
        self.unmatched_responses += other.unmatched_responses;
        self.dropped_requests += other.dropped_requests;
        self.unseen_bodies += other.unseen_bodies;
    }
}

/// Whether a connection is still followed as HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reconstructing HTTP/1.x exchanges.
    Http,
    /// Data that is not HTTP/1.x was seen: everything else is ignored.
    NotHttp,
    /// `101 Switching Protocols` or a successful CONNECT: the bytes that
    /// follow are another protocol and are ignored.
    Upgraded,
    /// Reconstructing HTTP/2 streams: the connection began with the client
    /// preface, or a `101` switched it to h2c (see the `http2` module for
    /// what is followed).
    Http2,
}

#[derive(Debug)]
struct Pending {
    method: String,
    target: String,
    start_ns: u64,
    meta: RequestMeta,
}

/// HTTP/1.x exchange reconstruction for one TCP connection, fed with the
/// reads and writes of the watched process.
///
/// Requests are paired with responses in order (pipelining). The duration of
/// an exchange runs from the segment holding the first byte of the request
/// to the segment holding the last byte of the response.
#[derive(Debug)]
pub struct Connection {
    side: Side,
    limits: Limits,
    mode: Mode,
    requests: Stream,
    responses: Stream,
    queue: VecDeque<Pending>,
    /// The request whose response is being read, and that response's status.
    current: Option<Pending>,
    current_status: Option<u16>,
    /// Time of the segment that ended the current response's head.
    current_head_ns: u64,
    stats: Stats,
    /// No byte seen yet: HTTP/2 is recognized at the start of a connection only.
    fresh: bool,
    /// Set in [`Mode::Http2`].
    http2: Option<Box<Http2>>,
}

impl Connection {
    /// A connection followed from its first byte.
    pub fn new(side: Side) -> Self {
        Self::with_limits(side, Limits::default())
    }

    /// A connection followed from its first byte, with other bounds.
    pub fn with_limits(side: Side, limits: Limits) -> Self {
        Self::build(side, limits, false)
    }

    /// A connection already open when observation began (e.g. found in
    /// `/proc`): the first bytes seen may be in the middle of a message, so
    /// data that does not begin a message at the start of a segment is
    /// skipped ([`Stats::skipped_segments`]) rather than taken for non-HTTP.
    pub fn mid_stream(side: Side, limits: Limits) -> Self {
        Self::build(side, limits, true)
    }

    fn build(side: Side, limits: Limits, resync: bool) -> Self {
        let limits = Limits {
            max_head_bytes: limits.max_head_bytes.max(crate::head::START_CHECK),
            max_pending: limits.max_pending.max(1),
            max_target_bytes: limits.max_target_bytes,
        };
        Connection {
            side,
            limits,
            mode: Mode::Http,
            requests: Stream::new(Kind::Request, resync),
            responses: Stream::new(Kind::Response, resync),
            queue: VecDeque::new(),
            current: None,
            current_status: None,
            current_head_ns: 0,
            stats: Stats::default(),
            fresh: !resync,
            http2: None,
        }
    }

    /// Which end of the connection the watched process is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Whether the connection is still followed as HTTP.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The diagnostic counters (cumulative, see [`Stats`]).
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The counters since the last call (or creation), resetting them.
    pub fn take_stats(&mut self) -> Stats {
        std::mem::take(&mut self.stats)
    }

    /// Shorthand for `stats().parse_errors`.
    pub fn parse_errors(&self) -> u64 {
        self.stats.parse_errors
    }

    /// Requests seen whose response is not complete yet.
    pub fn active_requests(&self) -> usize {
        if let Some(h2) = &self.http2 {
            return h2.active_requests();
        }
        self.queue.len() + usize::from(self.current.is_some())
    }

    /// The requests seen whose response is not complete yet, oldest first.
    pub fn in_flight(&self) -> impl Iterator<Item = InFlight<'_>> {
        let http1 = self.current.iter().chain(&self.queue).map(|p| InFlight {
            method: &p.method,
            target: &p.target,
            start_ns: p.start_ns,
            traceparent: p.meta.traceparent.as_deref(),
        });
        let streams = self.http2.iter().flat_map(|h2| h2.in_flight());
        http1.chain(streams)
    }

    /// Approximate heap memory held by this connection (bounded by its
    /// [`Limits`]).
    pub fn heap_bytes(&self) -> usize {
        let pending = |p: &Pending| {
            let meta = &p.meta;
            p.method.capacity()
                + p.target.capacity()
                + [&meta.host, &meta.user_agent, &meta.traceparent]
                    .iter()
                    .map(|v| v.as_ref().map_or(0, String::capacity))
                    .sum::<usize>()
        };
        self.http2.as_ref().map_or(0, |h2| h2.heap_bytes())
            + self.requests.heap_bytes()
            + self.responses.heap_bytes()
            + self.queue.capacity() * std::mem::size_of::<Pending>()
            + self.queue.iter().map(pending).sum::<usize>()
            + self.current.as_ref().map_or(0, pending)
    }

    /// Feeds one read or write; completed exchanges are appended to `out`.
    /// Data moved without a copy to user space (sendfile, splice) can be fed
    /// as a write with an empty head and tail: it is accounted for by length,
    /// which keeps Content-Length and chunk-data framing exact.
    pub fn on_segment(&mut self, dir: Direction, seg: Segment<'_>, out: &mut Vec<Exchange>) {
        if seg.len == 0 {
            return;
        }
        let kind = match (self.side, dir) {
            (Side::Server, Direction::Read) | (Side::Client, Direction::Write) => Kind::Request,
            _ => Kind::Response,
        };
        if std::mem::take(&mut self.fresh)
            && http2::begins(kind == Kind::Request, seg.head, seg.len)
        {
            self.mode = Mode::Http2;
            self.http2 = Some(Box::new(Http2::new(&self.limits)));
        }
        if self.mode == Mode::Http2 {
            return self.on_http2_segment(kind == Kind::Request, seg, out);
        }
        if self.mode != Mode::Http {
            return;
        }
        self.on_http1_segment(kind, seg, out);
    }

    fn on_http1_segment(&mut self, kind: Kind, seg: Segment<'_>, out: &mut Vec<Exchange>) {
        let ts = seg.ts_ns;
        let head = &seg.head[..seg.head.len().min(seg.len)];
        let unseen = seg.len - head.len();
        let tail = if unseen == 0 {
            &[][..]
        } else {
            &seg.tail[seg.tail.len().saturating_sub(unseen)..]
        };
        let gap = (unseen - tail.len()) as u64;
        self.stream(kind).last_ns = ts;

        self.feed(kind, head, ts, At::SegmentStart, out);
        if self.mode == Mode::Http2 {
            // `101` with `Upgrade: h2c` in this segment: the rest is HTTP/2.
            let seg = Segment {
                len: seg.len - head.len(),
                head: &[],
                ..seg
            };
            return self.on_http2_segment(kind == Kind::Request, seg, out);
        }
        let mut left = gap;
        while left > 0 && self.mode == Mode::Http {
            let stream = match kind {
                Kind::Request => &mut self.requests,
                Kind::Response => &mut self.responses,
            };
            let (used, event) = stream.skip(left, &self.limits, &mut self.stats);
            left -= used.min(left);
            match event {
                Some(event) => self.handle(kind, event, ts, out),
                None if used == 0 => break,
                None => {}
            }
        }
        let at = if gap > 0 { At::AfterGap } else { At::Inside };
        self.feed(kind, tail, ts, at, out);

        // Known last bytes of the segment, for the lost-framing heuristic.
        let end = if unseen == 0 {
            head
        } else {
            &seg.tail[seg.tail.len().saturating_sub(seg.len)..]
        };
        if self.mode == Mode::Http {
            if let Some(event) = self.stream(kind).check_lost_end(end, end.len() == seg.len) {
                self.handle(kind, event, ts, out);
            }
        }
    }

    /// A whole request (head and body) that was framed elsewhere (the probe's kernel side)
    /// and read at `ts_ns`: only its request line, without CRLF, is given. Framed messages
    /// come at message boundaries only, so they and the segments fed before or after them
    /// form one stream.
    pub fn on_framed_request(&mut self, line: &[u8], ts_ns: u64) {
        self.fresh = false;
        if self.mode != Mode::Http {
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (method, rest) = line.split_once(' ').unwrap_or((&line, ""));
        let target = rest
            .rsplit_once(' ')
            .map_or(rest, |(target, _version)| target);
        let mut end = target.len().min(self.limits.max_target_bytes);
        while !target.is_char_boundary(end) {
            end -= 1;
        }
        self.push_parts(
            method.to_string(),
            target[..end].to_string(),
            ts_ns,
            RequestMeta::default(),
        );
    }

    /// The response to the oldest request waiting, framed elsewhere, whose last byte was
    /// written at `end_ns`.
    pub fn on_framed_response(&mut self, status: u16, end_ns: u64, out: &mut Vec<Exchange>) {
        self.fresh = false;
        if self.mode != Mode::Http {
            return;
        }
        match self.queue.pop_front() {
            Some(p) => out.push(exchange(p, Some(status), end_ns)),
            None => self.stats.unmatched_responses += 1,
        }
    }

    /// Same, for a framed response whose body was cut short by the close at `ts_ns`
    /// (counted as a parse error, as a response body cut off in the bytes is).
    pub fn on_framed_response_cut(&mut self, status: u16, ts_ns: u64, out: &mut Vec<Exchange>) {
        if self.mode == Mode::Http {
            self.stats.parse_errors += 1;
        }
        self.on_framed_response(status, ts_ns, out);
    }

    /// The connection was closed at `ts_ns`. A response delimited by the
    /// close (or whose framing was lost) ends at its last byte, i.e. at the
    /// last segment in its direction; one cut short is reported too (and
    /// counted in [`Stats::parse_errors`]); requests still waiting are
    /// reported without status, ending at `ts_ns`. The connection is then
    /// as new (its counters are kept).
    pub fn on_close(&mut self, ts_ns: u64, out: &mut Vec<Exchange>) {
        if let Some(h2) = &mut self.http2 {
            h2.on_close(ts_ns, out);
        }
        if self.mode == Mode::Http {
            self.requests.drop_unconfirmed(&mut self.stats);
            self.responses.drop_unconfirmed(&mut self.stats);
            let last = self.responses.last_ns;
            let was_body = matches!(self.responses.state, State::Body(_));
            if self.responses.state == State::Head {
                self.stats.parse_errors += 1; // response head cut off
            }
            if let Some(info) = self.responses.take_partial_head(&self.limits) {
                self.on_response_head(info, last, out);
            }
            if let State::Body(body) = self.responses.state {
                let unseen = self.responses.in_unseen_body();
                if was_body && !unseen && matches!(body, Body::Length(_) | Body::Chunked(_)) {
                    self.stats.parse_errors += 1; // response body cut off
                }
                self.finish_response(last, out);
            }
            match self.requests.state {
                State::Head | State::Body(Body::Length(_) | Body::Chunked(_)) => {
                    self.stats.parse_errors += 1; // request cut off
                }
                State::HeadLost(_) => {
                    if let Some(info) = self.requests.take_partial_head(&self.limits) {
                        let start = self.requests.start_ns;
                        self.push_request(info, start);
                    }
                }
                _ => {}
            }
            for p in self.queue.drain(..) {
                out.push(exchange(p, None, ts_ns));
            }
        }
        *self = Connection {
            stats: self.stats,
            ..Self::build(self.side, self.limits, false)
        };
    }

    /// HTTP/2: the captured head, the uncaptured middle (by length) and the
    /// captured tail of a segment; given up when the frames cannot be followed.
    fn on_http2_segment(&mut self, from_client: bool, seg: Segment<'_>, out: &mut Vec<Exchange>) {
        let Some(h2) = &mut self.http2 else {
            return;
        };
        let head = &seg.head[..seg.head.len().min(seg.len)];
        let unseen = seg.len - head.len();
        let tail = &seg.tail[seg.tail.len().saturating_sub(unseen)..];
        let gap = (unseen - tail.len()) as u64;
        let stats = &mut self.stats;
        let ts = seg.ts_ns;
        let followed = h2
            .feed(from_client, head, ts, out, stats)
            .and_then(|()| match gap {
                0 => Ok(()),
                n => h2.skip(from_client, n, ts, out, stats),
            })
            .and_then(|()| h2.feed(from_client, tail, ts, out, stats));
        if followed.is_err() {
            self.http2 = None;
            self.give_up();
        }
    }

    fn on_http2_data(&mut self, from_client: bool, data: &[u8], ts: u64, out: &mut Vec<Exchange>) {
        let seg = Segment {
            len: data.len(),
            head: data,
            tail: &[],
            ts_ns: ts,
        };
        self.on_http2_segment(from_client, seg, out);
    }

    fn stream(&mut self, kind: Kind) -> &mut Stream {
        match kind {
            Kind::Request => &mut self.requests,
            Kind::Response => &mut self.responses,
        }
    }

    fn feed(&mut self, kind: Kind, data: &[u8], ts: u64, at: At, out: &mut Vec<Exchange>) {
        let mut rest = data;
        let mut at = at;
        while !rest.is_empty() && self.mode == Mode::Http {
            let stream = match kind {
                Kind::Request => &mut self.requests,
                Kind::Response => &mut self.responses,
            };
            let (used, event) = stream.step(rest, ts, at, &self.limits, &mut self.stats);
            rest = &rest[used.min(rest.len())..];
            if used > 0 {
                at = At::Inside;
            }
            if let Some(event) = event {
                self.handle(kind, event, ts, out);
            }
        }
        if self.mode == Mode::Http2 && !rest.is_empty() {
            // The bytes after a `101` upgrading to h2c, in its segment.
            self.on_http2_data(kind == Kind::Request, rest, ts, out);
        }
    }

    fn handle(&mut self, kind: Kind, event: Event, ts: u64, out: &mut Vec<Exchange>) {
        match (kind, event) {
            (_, Event::Invalid) => self.give_up(),
            (Kind::Request, Event::Start) => self.on_request_start(out),
            (Kind::Request, Event::Head(info)) => self.on_request_head(info),
            (Kind::Request, Event::Done) => {}
            (Kind::Request, Event::Unseen) => self.stats.unseen_bodies += 1,
            (Kind::Response, Event::Unseen) => {
                self.stats.unseen_bodies += 1;
                self.finish_response(self.current_head_ns, out);
            }
            (Kind::Response, Event::Start) => self.on_response_start(),
            (Kind::Response, Event::Head(info)) => self.on_response_head(info, ts, out),
            (Kind::Response, Event::Done) => self.finish_response(ts, out),
        }
    }

    /// Heuristic: a new request means the previous response was complete,
    /// which ends a response whose head end or body framing was lost or
    /// whose head was not seen whole (wrong only if the client pipelines
    /// while the capture is truncated), and makes a body of which nothing
    /// was seen suspect of being sent by sendfile.
    fn on_request_start(&mut self, out: &mut Vec<Exchange>) {
        self.responses.drop_unconfirmed(&mut self.stats);
        let last = self.responses.last_ns;
        if let State::HeadLost(_) = self.responses.state {
            if let Some(info) = self.responses.take_partial_head(&self.limits) {
                self.on_response_head(info, last, out);
            }
            if self.mode == Mode::Http && matches!(self.responses.state, State::Body(_)) {
                self.finish_response(last, out);
                self.responses.abandon();
            }
        } else if self.responses.in_doubtful_body() {
            self.finish_response(last, out);
            self.responses.abandon();
        } else {
            self.responses.suspect_unseen_body();
        }
    }

    fn on_request_head(&mut self, info: HeadInfo) {
        let body = if info.chunked {
            Some(Body::Chunked(Chunk::START))
        } else if info.other_coding || info.bad_length {
            // RFC 9112 section 6.3: the length cannot be known (the server
            // answers 400 and closes); the response start ends it.
            self.stats.parse_errors += 1;
            Some(Body::Lost)
        } else {
            info.content_length.map(Body::Length)
        };
        let start = self.requests.start_ns;
        self.push_request(info, start);
        self.requests.start_body(body);
    }

    fn push_request(&mut self, info: HeadInfo, start_ns: u64) {
        self.push_parts(info.method, info.target, start_ns, info.meta);
    }

    fn push_parts(&mut self, method: String, target: String, start_ns: u64, meta: RequestMeta) {
        if self.queue.len() >= self.limits.max_pending {
            self.stats.dropped_requests += 1;
            return;
        }
        self.queue.push_back(Pending {
            method,
            target,
            start_ns,
            meta,
        });
    }

    /// Heuristic: a server answers only once it has the whole request head
    /// (or gives up on it), so a response ends a request head still being
    /// read, or a request body whose framing was lost or whose head was not
    /// seen whole.
    fn on_response_start(&mut self) {
        self.requests.drop_unconfirmed(&mut self.stats);
        if self.queue.is_empty() && self.requests.in_head() {
            let start = self.requests.start_ns;
            if let Some(info) = self.requests.take_partial_head(&self.limits) {
                self.push_request(info, start);
            }
        }
        if self.requests.in_doubtful_body() {
            self.requests.abandon();
        } else {
            self.requests.suspect_unseen_body();
        }
    }

    fn on_response_head(&mut self, info: HeadInfo, ts: u64, out: &mut Vec<Exchange>) {
        let status = info.status.unwrap_or(0);
        if (100..200).contains(&status) && status != 101 {
            return; // interim response: the final one follows
        }
        self.current = self.queue.pop_front();
        if self.current.is_none() {
            self.stats.unmatched_responses += 1;
        }
        self.current_status = info.status;
        self.current_head_ns = ts;
        let method = self.current.as_ref().map(|p| p.method.as_str());
        if status == 101 && info.upgrade_h2c {
            // RFC 7540 section 3.2: the request becomes stream 1, answered over HTTP/2.
            let request = self.current.take();
            self.drop_state();
            self.mode = Mode::Http2;
            let mut h2 = Http2::new(&self.limits);
            if let Some(p) = request {
                h2.open_upgraded(p.method, p.target, p.start_ns, p.meta);
            }
            self.http2 = Some(Box::new(h2));
            return;
        }
        if status == 101 || (method == Some("CONNECT") && (200..300).contains(&status)) {
            self.finish_response(ts, out);
            self.upgrade();
            return;
        }
        if info.bad_length {
            self.stats.parse_errors += 1;
        }
        // RFC 9112 section 6.3, in order.
        let body = if method == Some("HEAD") || status == 204 || status == 304 {
            None
        } else if info.chunked {
            Some(Body::Chunked(Chunk::START))
        } else if info.other_coding {
            Some(Body::UntilClose)
        } else if let (Some(n), false) = (info.content_length, info.bad_length) {
            Some(Body::Length(n))
        } else if info.complete {
            Some(Body::UntilClose)
        } else {
            // Framing fields may have been in the part not captured.
            self.stats.resyncs += 1;
            Some(Body::Lost)
        };
        self.responses.start_body(body);
        if self.responses.state == State::Idle {
            self.finish_response(ts, out);
        }
    }

    fn finish_response(&mut self, end_ns: u64, out: &mut Vec<Exchange>) {
        if let Some(p) = self.current.take() {
            out.push(exchange(p, self.current_status, end_ns));
        }
        self.current_status = None;
    }

    fn give_up(&mut self) {
        self.stats.parse_errors += 1;
        self.mode = Mode::NotHttp;
        self.drop_state();
    }

    fn upgrade(&mut self) {
        self.mode = Mode::Upgraded;
        self.drop_state();
    }

    fn drop_state(&mut self) {
        self.queue = VecDeque::new();
        self.current = None;
        self.requests = Stream::new(Kind::Request, false);
        self.responses = Stream::new(Kind::Response, false);
    }
}

fn exchange(p: Pending, status: Option<u16>, end_ns: u64) -> Exchange {
    Exchange {
        method: p.method,
        target: p.target,
        status,
        start_ns: p.start_ns,
        end_ns: end_ns.max(p.start_ns),
        meta: p.meta,
    }
}
