//! One direction of a connection: a sequence of messages of one kind
//! (requests or responses), each a head and a body.

use crate::body::{looks_like_chunked_end, Body, Fed};
use crate::head::{self, EndScanner, HeadInfo, Kind, Verdict};
use crate::{Limits, Stats};

/// Buffers larger than this are freed once their head is parsed.
const KEEP_BUFFER: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// Between messages.
    Idle,
    /// Reading a head; the bytes seen so far are in `Stream::buf` (a head
    /// that arrives whole in one segment is parsed in place instead).
    Head,
    /// The head was cut (by the capture or the cap): what could be read of
    /// it, while waiting for the empty line that ends it.
    HeadLost(HeadInfo),
    Body(Body),
}

/// Where in a segment the data given to [`Stream::step`] begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum At {
    /// The segment's first byte.
    SegmentStart,
    /// The first captured byte after uncaptured ones (start of the tail).
    AfterGap,
    /// Right after bytes already given.
    Inside,
}

/// What happened in the stream, for the connection to act on.
#[derive(Debug)]
pub(crate) enum Event {
    /// A message began in the current segment (one that began out of sync:
    /// its first line was just confirmed).
    Start,
    /// The head ended; the connection must call [`Stream::start_body`].
    Head(HeadInfo),
    /// The body ended.
    Done,
    /// The body was not observed (sendfile, splice): it ended before this
    /// segment, which begins the next message.
    Unseen,
    /// The data is not HTTP.
    Invalid,
}

#[derive(Debug)]
pub(crate) struct Stream {
    kind: Kind,
    pub state: State,
    buf: Vec<u8>,
    scanner: EndScanner,
    /// The buffered start of the head passed [`head::check_start`] (for a
    /// tentative message: its whole first line).
    start_ok: bool,
    /// The current message began while out of sync: if it turns out not to
    /// be HTTP, skip it instead of giving up on the connection.
    tentative: bool,
    /// Out of sync (bytes were lost between messages, or the last head was
    /// not seen whole): a message may only begin at the first byte of a
    /// segment, or where its whole first line is in view; data that does not
    /// look like one is skipped.
    pub resync: bool,
    /// Some byte of the current body was read or written (else it may have
    /// been sent by sendfile or splice, which are not observed).
    body_seen: bool,
    /// The other direction moved on while no byte of the body was seen.
    unseen_suspected: bool,
    /// Time of the current message's first byte.
    pub start_ns: u64,
    /// Time of the last segment in this direction.
    pub last_ns: u64,
}

impl Stream {
    pub fn new(kind: Kind, resync: bool) -> Self {
        Stream {
            kind,
            state: State::Idle,
            buf: Vec::new(),
            scanner: EndScanner::default(),
            start_ok: false,
            tentative: false,
            resync,
            body_seen: false,
            unseen_suspected: false,
            start_ns: 0,
            last_ns: 0,
        }
    }

    /// Heap memory held: the head buffer and what was read of a cut head.
    pub fn heap_bytes(&self) -> usize {
        let lost = match &self.state {
            State::HeadLost(info) => info.method.capacity() + info.target.capacity(),
            _ => 0,
        };
        self.buf.capacity() + lost
    }

    /// Consumes a prefix of `data` (captured bytes of a segment received at
    /// `ts`), which begin at `at`.
    /// Returns how many bytes were used and what happened.
    pub fn step(
        &mut self,
        data: &[u8],
        ts: u64,
        at: At,
        limits: &Limits,
        stats: &mut Stats,
    ) -> (usize, Option<Event>) {
        if self.body_unseen_at(data, at) {
            self.state = State::Idle;
            return (0, Some(Event::Unseen));
        }
        match &mut self.state {
            State::Idle => self.start(data, ts, at, stats),
            State::Head => self.feed_head(data, at == At::SegmentStart, limits, stats),
            State::HeadLost(_) => match self.scanner.scan(data) {
                Some(end) => {
                    let info = self.take_lost();
                    (end, Some(self.head_done(info)))
                }
                None => (data.len(), None),
            },
            State::Body(body) => match body.feed(data) {
                Fed::More => {
                    self.body_seen = true;
                    (data.len(), None)
                }
                Fed::Done(n) => {
                    self.state = State::Idle;
                    (n, Some(Event::Done))
                }
                Fed::Malformed => {
                    stats.parse_errors += 1;
                    stats.resyncs += 1;
                    (data.len(), None)
                }
            },
        }
    }

    /// Accounts for `n` bytes that were not captured. Returns how many were
    /// used (fewer only when a body ended inside them) and what happened.
    pub fn skip(&mut self, n: u64, limits: &Limits, stats: &mut Stats) -> (u64, Option<Event>) {
        match &mut self.state {
            State::Idle => {
                // A message may begin in the uncaptured bytes.
                if !self.resync {
                    stats.resyncs += 1;
                }
                self.resync = true;
                (n, None)
            }
            State::Head if self.tentative && !self.start_ok => {
                stats.skipped_segments += 1;
                self.abandon();
                (n, None)
            }
            State::Head => {
                stats.partial_heads += 1;
                self.scanner.gap();
                match self.lenient_head(limits) {
                    Some(info) => self.state = State::HeadLost(info),
                    None => {
                        // Too little seen to tell what the message is.
                        stats.resyncs += 1;
                        self.abandon();
                    }
                }
                self.release_buffer();
                (n, None)
            }
            State::HeadLost(_) => {
                self.scanner.gap();
                (n, None)
            }
            State::Body(body) => {
                self.body_seen = true;
                let (used, lost) = body.skip(n);
                if lost {
                    stats.resyncs += 1;
                }
                if body.is_done() {
                    self.state = State::Idle;
                    return (used, Some(Event::Done));
                }
                (used, None)
            }
        }
    }

    /// Sets the body that follows the head just reported (None: no body).
    pub fn start_body(&mut self, body: Option<Body>) {
        self.body_seen = false;
        self.unseen_suspected = false;
        self.state = match body {
            Some(Body::Length(0)) | None => State::Idle,
            Some(b) => State::Body(b),
        };
    }

    /// Whether a head is being read (whole or cut).
    pub fn in_head(&self) -> bool {
        matches!(self.state, State::Head | State::HeadLost(_))
    }

    pub fn in_lost_body(&self) -> bool {
        self.state == State::Body(Body::Lost)
    }

    /// Whether the current body's end is in doubt: its framing was lost, or
    /// its head was not seen whole (the framing fields or the head's end
    /// may have been misread).
    pub fn in_doubtful_body(&self) -> bool {
        match self.state {
            State::Body(Body::Lost) => true,
            State::Body(_) => self.resync,
            _ => false,
        }
    }

    /// Whether a Content-Length or chunked body is expected of which no
    /// byte was seen at all.
    pub fn in_unseen_body(&self) -> bool {
        matches!(self.state, State::Body(Body::Length(_) | Body::Chunked(_))) && !self.body_seen
    }

    /// The other direction began a message while no byte of this body was
    /// seen: sendfile or splice may have sent it. If the next segment then
    /// begins with a whole first line rather than body bytes, the body is
    /// taken as sent unseen ([`Event::Unseen`]).
    pub fn suspect_unseen_body(&mut self) {
        if self.in_unseen_body() {
            self.unseen_suspected = true;
        }
    }

    fn body_unseen_at(&self, data: &[u8], at: At) -> bool {
        matches!(self.state, State::Body(_))
            && self.unseen_suspected
            && !self.body_seen
            && at == At::SegmentStart
            && self.check_start(data, true) == Verdict::Plausible
    }

    /// Stops reading the current message; the next one will be looked for
    /// at the start of a segment.
    pub fn abandon(&mut self) {
        self.state = State::Idle;
        self.resync = true;
        self.release_buffer();
    }

    /// Ends the head being read, returning what could be read of it, and
    /// abandons the message.
    pub fn take_partial_head(&mut self, limits: &Limits) -> Option<HeadInfo> {
        let info = match &self.state {
            State::Head => self.lenient_head(limits),
            State::HeadLost(_) => Some(self.take_lost()),
            _ => return None,
        };
        self.abandon();
        info
    }

    /// Heuristic end of a body whose framing was lost: the last captured
    /// bytes of a segment (`whole`: all of it) look like the last chunk.
    pub fn check_lost_end(&mut self, end: &[u8], whole: bool) -> Option<Event> {
        if self.in_lost_body() && looks_like_chunked_end(end, whole) {
            self.abandon();
            return Some(Event::Done);
        }
        None
    }

    fn start(&mut self, data: &[u8], ts: u64, at: At, stats: &mut Stats) -> (usize, Option<Event>) {
        // RFC 9112 section 2.2: empty lines before a request line are ignored
        // (and some clients send CRLF after a body).
        let n = data
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if n == data.len() {
            return (n, None);
        }
        // Out of sync, a message may begin at a segment start where the data
        // does not contradict it (tentatively, until its whole first line is
        // seen); elsewhere only a whole, valid first line with a registered
        // method (for requests) is taken for a message start, the first one
        // found in the captured data, what precedes it being skipped.
        if self.resync {
            let rest = &data[n..];
            let here = at == At::SegmentStart && self.check_start(rest, false) != Verdict::Invalid;
            if !here {
                let found = (0..rest.len()).find(|&p| self.strong_start(&rest[p..]));
                if at == At::SegmentStart && found != Some(0) {
                    stats.skipped_segments += 1;
                }
                match found {
                    Some(0) => {}
                    Some(p) => return (n + p, None),
                    None => return (data.len(), None),
                }
            }
        }
        self.tentative = self.resync;
        self.state = State::Head;
        self.buf.clear();
        self.scanner = EndScanner::default();
        self.start_ok = false;
        self.start_ns = ts;
        // A tentative message is announced once its first line is confirmed.
        (n, (!self.tentative).then_some(Event::Start))
    }

    fn feed_head(
        &mut self,
        data: &[u8],
        at_seg_start: bool,
        limits: &Limits,
        stats: &mut Stats,
    ) -> (usize, Option<Event>) {
        // A tentative start not confirmed yet gives way to a segment that
        // begins a message on its own, or that does not continue it.
        let may_restart = self.tentative && !self.start_ok && at_seg_start && !self.buf.is_empty();
        if may_restart && self.better_start(data) {
            return self.restart(stats);
        }
        if self.tentative && !self.start_ok && self.confirmed_by(data, limits) {
            self.start_ok = true;
            return (0, Some(Event::Start));
        }
        let end = self.scanner.scan(data);
        let take = end.unwrap_or(data.len());
        if let (true, Some(end)) = (self.buf.is_empty(), end) {
            if end <= limits.max_head_bytes {
                // The whole head is in this segment: parse it in place.
                return self.complete_head(&data[..end], end, data.len(), limits, stats);
            }
        }
        let room = limits.max_head_bytes.saturating_sub(self.buf.len());
        let overflow = take > room;
        self.buf.extend_from_slice(&data[..take.min(room)]);
        if !self.start_ok {
            match self.check_start(&self.buf, self.tentative) {
                Verdict::Invalid if may_restart => return self.restart(stats),
                Verdict::Invalid => return self.invalid(data.len(), stats),
                Verdict::Plausible => self.start_ok = true,
                Verdict::NeedMore => {}
            }
        }
        if !overflow {
            if end.is_none() {
                return (data.len(), None);
            }
            let buf = std::mem::take(&mut self.buf);
            let result = self.complete_head(&buf, take, data.len(), limits, stats);
            self.buf = buf;
            self.release_buffer();
            return result;
        }
        // Longer than the cap: read what fits, then wait for the end.
        stats.partial_heads += 1;
        let Some(info) = self.lenient_head(limits) else {
            return self.invalid(data.len(), stats);
        };
        self.release_buffer();
        if end.is_some() {
            (take, Some(self.head_done(info)))
        } else {
            self.state = State::HeadLost(info);
            (data.len(), None)
        }
    }

    /// Parses a complete head; `used` bytes of the `avail` given are its.
    fn complete_head(
        &mut self,
        head: &[u8],
        used: usize,
        avail: usize,
        limits: &Limits,
        stats: &mut Stats,
    ) -> (usize, Option<Event>) {
        if self.check_start(head, false) == Verdict::Invalid {
            return self.invalid(avail, stats);
        }
        match head::parse_complete(
            self.kind,
            head,
            limits.max_target_bytes,
            &mut stats.parse_errors,
        ) {
            Some(info) => (used, Some(self.head_done(info))),
            None => self.invalid(avail, stats),
        }
    }

    fn head_done(&mut self, info: HeadInfo) -> Event {
        self.state = State::Idle;
        // After a head not seen whole, the body may be misjudged: data that
        // does not begin a message is then skipped instead of fatal.
        self.resync = !info.complete;
        self.tentative = false;
        Event::Head(info)
    }

    fn invalid(&mut self, avail: usize, stats: &mut Stats) -> (usize, Option<Event>) {
        if self.tentative {
            stats.skipped_segments += 1;
            self.abandon();
            return (avail, None);
        }
        (avail, Some(Event::Invalid))
    }

    /// Whether `data` begins with a whole, valid first line (with a
    /// registered method, for a request).
    fn strong_start(&self, data: &[u8]) -> bool {
        let quick = match self.kind {
            Kind::Response => data.starts_with(b"HTTP/1."),
            Kind::Request => {
                let sp = data
                    .iter()
                    .position(|&b| !b.is_ascii_uppercase() && b != b'-');
                sp.is_some_and(|sp| data[sp] == b' ' && head::is_known_method(&data[..sp], b""))
            }
        };
        quick && self.check_start(data, true) == Verdict::Plausible
    }

    /// Whether the buffered start of a tentative message followed by `data`
    /// holds its whole, valid first line.
    fn confirmed_by(&mut self, data: &[u8], limits: &Limits) -> bool {
        if self.buf.is_empty() {
            return self.check_start(data, true) == Verdict::Plausible;
        }
        let before = self.buf.len();
        let room = limits.max_head_bytes.saturating_sub(before);
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
        let ok = self.check_start(&self.buf, true) == Verdict::Plausible;
        self.buf.truncate(before);
        ok
    }

    /// Whether `data`, at a segment start, begins a message more plausibly
    /// than it continues the unconfirmed tentative one: for requests, it
    /// begins with a known method and the concatenation would not.
    fn better_start(&self, data: &[u8]) -> bool {
        if self.kind != Kind::Request || self.check_start(data, true) != Verdict::Plausible {
            return false;
        }
        let own = data.split(|&b| b == b' ').next().unwrap_or_default();
        let joined_known = match self.buf.iter().position(|&b| b == b' ') {
            Some(sp) => head::is_known_method(&self.buf[..sp], b""),
            None => head::is_known_method(&self.buf, own),
        };
        head::is_known_method(own, b"") && !joined_known
    }

    /// [`head::check_start`]; out of sync, also rejects a request whose
    /// method is the end of a known one (its start was probably not seen).
    fn check_start(&self, data: &[u8], whole_line: bool) -> Verdict {
        match head::check_start(self.kind, data, whole_line) {
            Verdict::Invalid => Verdict::Invalid,
            _ if self.resync && self.kind == Kind::Request && head::is_cut_method(data) => {
                Verdict::Invalid
            }
            v => v,
        }
    }

    /// Drops a tentative message whose first line was not confirmed (the
    /// other direction moved on, or the connection closed).
    pub fn drop_unconfirmed(&mut self, stats: &mut Stats) {
        if self.state == State::Head && self.tentative && !self.start_ok {
            stats.skipped_segments += 1;
            self.abandon();
        }
    }

    /// Drops the unconfirmed tentative message; the current data (at a
    /// segment start, not consumed) is examined afresh.
    fn restart(&mut self, stats: &mut Stats) -> (usize, Option<Event>) {
        stats.skipped_segments += 1;
        self.abandon();
        (0, None)
    }

    /// What can be read of the buffered, incomplete head; nothing when the
    /// message began out of sync and its first line was not confirmed.
    fn lenient_head(&self, limits: &Limits) -> Option<HeadInfo> {
        if self.tentative && !self.start_ok {
            return None;
        }
        head::parse_lenient(self.kind, &self.buf, limits.max_target_bytes)
    }

    fn take_lost(&mut self) -> HeadInfo {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::HeadLost(info) => info,
            _ => HeadInfo::default(),
        }
    }

    fn release_buffer(&mut self) {
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
    }
}
