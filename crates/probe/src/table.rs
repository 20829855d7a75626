//! Connection table: one HTTP parser per watched connection, fed by kernel events, turning
//! completed exchanges into metrics. Bounded: the least recently active connections are
//! evicted when it is full.

use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasherDefault, Hasher},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use homelab_ebpf::{self as abi, Event, EventHdr};

use httpflow::{
    normalize_method, Connection, Direction, Exchange, Limits, RouteMatcher, Segment, Side,
};

use crate::{
    access_log::{self, AccessLog},
    export::SpanSink,
    live::LiveRequest,
    metrics::{self, Histogram, IntGauge, Metrics},
    spans::{
        hex, hop_ids, new_span_id, new_trace_id, parse_traceparent, sampled, url_path, SpanData,
        SpanId, SpanIds, TraceId,
    },
};

pub struct WatchInfo {
    /// Configured service name; None = name each process after its unit/container/comm.
    pub service: Option<String>,
    /// Route templates (validated by the config loader).
    pub routes: Vec<String>,
    /// Spans of this watch's requests (when span export is on).
    pub traces: bool,
    /// For a cgroup watch: only the connections accepted on these local ports (empty: all).
    pub ports: Vec<u16>,
}

impl WatchInfo {
    fn accepts(&self, side: Side, local_port: u16) -> bool {
        self.ports.is_empty() || (side == Side::Server && self.ports.contains(&local_port))
    }
}

/// The other end of a connection: the server of a client connection (server_address,
/// server_port labels), the client of a server connection (spans, live requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub address: String,
    pub port: u16,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.address.contains(':') {
            write!(f, "[{}]:{}", self.address, self.port)
        } else {
            write!(f, "{}:{}", self.address, self.port)
        }
    }
}

/// Both ends of a connection, as far as known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ends {
    pub peer: Option<Peer>,
    /// 0: unknown (a connection followed from its data only).
    pub local_port: u16,
}

/// The series of a connection's last exchange: keep-alive connections mostly repeat it,
/// and reusing it skips route matching and the label lookup.
struct Series {
    method: &'static str,
    status: Option<u16>,
    target: String,
    route: String,
    histogram: Histogram,
}

struct ConnState {
    watch: u32,
    side: Side,
    service: Arc<str>,
    ends: Ends,
    parser: Connection,
    last_ns: u64,
    bytes: u64,
    active: i64,
    /// Plaintext comes from libssl uprobes; syscall bytes are ciphertext.
    tls: bool,
    /// TLS seen on the socket but no plaintext (yet): ignore the bytes.
    opaque: bool,
    /// Parse errors of this connection already exported.
    errors_seen: u64,
    last_series: Option<Series>,
    /// `http_server_active_requests` of the service, resolved at the first request: the
    /// label lookup costs more than the rest of the accounting.
    active_gauge: Option<IntGauge>,
    /// Followed from its first byte (not seeded, not found from its data): exchanges can
    /// be counted from the start, which local hops need.
    from_start: bool,
    /// Exchanges recorded so far.
    exchanges: u64,
    /// Random per connection; with `exchanges`, the span ids of a client connection.
    salt: u64,
    /// Server side: the thread that read the request in flight (0: none in flight).
    reader_tid: u32,
    /// Server side: ids of the exchange with this ordinal, fixed before it completed
    /// because an outgoing call of the process became its child.
    pinned: Option<(u64, SpanIds)>,
    /// Client side: the server request being served by the thread that wrote the request
    /// with this ordinal (trace id, span id): the parent of its span.
    caller: Option<(u64, TraceId, SpanId)>,
}

/// Hasher of the connection keys (tgid << 32 | fd), looked up several times per event:
/// SipHash showed in the collector's profile. The keys come from the kernel (process ids
/// and descriptors), not from the network, so a multiplicative hash is enough.
#[derive(Default)]
struct ConnKeyHasher(u64);

impl Hasher for ConnKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing, then the high half folded into the low half: hashbrown picks
        // the bucket from the low bits, which a product alone takes from the fd only.
        let x = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 32);
    }
}

type ConnMap = HashMap<u64, ConnState, BuildHasherDefault<ConnKeyHasher>>;

/// Names the service of a process: (tgid, process name sent by the kernel at open).
pub type Namer = Box<dyn FnMut(u32, Option<&str>) -> String + Send>;

pub struct Table {
    conns: ConnMap,
    capacity: usize,
    watches: Vec<WatchInfo>,
    names: HashMap<u32, Arc<str>>,
    namer: Namer,
    /// One matcher per (watch, service): the heuristic's route cap is per service.
    routers: HashMap<(u32, Arc<str>), RouteMatcher>,
    max_routes: usize,
    metrics: Arc<Metrics>,
    out: Vec<Exchange>,
    /// Span export (None: off).
    spans: Option<SpanSink>,
    access_log: Option<AccessLog>,
    /// Client connections by (local port, remote port): the server end of a local hop
    /// finds its client end here.
    hops: HashMap<(u16, u16), u64>,
    /// Server connections with a request in flight, by the thread that read the request
    /// (when spans are on): an outgoing call the thread makes meanwhile is its child.
    serving: HashMap<u32, Vec<u64>>,
    /// Processes seen serving requests on shared threads (event loops, goroutines): a
    /// thread read a request while another it read was in flight, or a request was
    /// answered by another thread than the one that read it. No in-process parentage.
    shared_threads: HashSet<u32>,
    /// Connections the kernel reported that their watch's ports leave out: the collector
    /// removes them from the kernel's map.
    refused: Vec<u64>,
}

pub fn conn_key(tgid: u32, fd: i32) -> u64 {
    (u64::from(tgid) << 32) | u64::from(fd as u32)
}

fn side_of(raw: u8) -> Side {
    if raw == abi::SIDE_CLIENT {
        Side::Client
    } else {
        Side::Server
    }
}

/// A TLS record header: content type 20-23 (handshake, or application data on a connection
/// followed mid-stream), version 3.x. No HTTP/1.x message starts with those bytes.
fn is_tls_record(head: &[u8]) -> bool {
    matches!(head, [0x14..=0x17, 0x03, 0x00..=0x04, ..])
}

pub fn peer_of(hdr: &EventHdr) -> Peer {
    let address = match hdr.family {
        2 => IpAddr::V4(Ipv4Addr::new(
            hdr.raddr[0],
            hdr.raddr[1],
            hdr.raddr[2],
            hdr.raddr[3],
        )),
        _ => {
            let v6 = Ipv6Addr::from(hdr.raddr);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
    };
    Peer {
        address: address.to_string(),
        port: hdr.rport,
    }
}

impl Table {
    pub fn new(
        watches: Vec<WatchInfo>,
        capacity: usize,
        max_routes: usize,
        metrics: Arc<Metrics>,
        namer: Namer,
    ) -> Self {
        Table {
            conns: ConnMap::default(),
            capacity: capacity.max(16),
            watches,
            names: HashMap::new(),
            namer,
            routers: HashMap::new(),
            max_routes,
            metrics,
            out: Vec::new(),
            spans: None,
            access_log: None,
            hops: HashMap::new(),
            serving: HashMap::new(),
            shared_threads: HashSet::new(),
            refused: Vec::new(),
        }
    }

    /// A watch added while running (a discovered container); returns its id.
    pub fn add_watch(&mut self, watch: WatchInfo) -> u32 {
        self.watches.push(watch);
        (self.watches.len() - 1) as u32
    }

    /// Whether a connection of `watch` on this side and local port is followed.
    pub fn accepts(&self, watch: u32, side: Side, local_port: u16) -> bool {
        self.watches
            .get(watch as usize)
            .is_none_or(|w| w.accepts(side, local_port))
    }

    /// The keys of the connections refused since the last call.
    pub fn take_refused(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.refused)
    }

    fn port_filtered(&self, watch: u32) -> bool {
        self.watches
            .get(watch as usize)
            .is_some_and(|w| !w.ports.is_empty())
    }

    /// Turns each answered request into a span.
    pub fn with_spans(mut self, sink: SpanSink) -> Self {
        self.spans = Some(sink);
        self
    }

    /// The value of a kernel watch map entry for `watch`: its id, flagged when the header
    /// fields of its requests are needed (spans), which the kernel does not send for the
    /// exchanges it frames (docs/probe.md, "Kernel framing").
    pub fn kernel_watch(&self, watch: u32) -> u32 {
        let traced = self.watches.get(watch as usize).is_none_or(|w| w.traces);
        if self.spans.is_some() && traced {
            watch | abi::WATCH_HEADERS
        } else {
            watch
        }
    }

    /// Writes a line of each answered request to the access log.
    pub fn with_access_log(mut self, log: AccessLog) -> Self {
        self.access_log = Some(log);
        self
    }

    /// The requests in flight now (request seen, response not complete), oldest first.
    pub fn in_flight(&self, now_ns: u64) -> Vec<LiveRequest> {
        let mut out = vec![];
        for (key, c) in &self.conns {
            for r in c.parser.in_flight() {
                let peer = c.ends.peer.as_ref().map(Peer::to_string);
                let (pid, fd) = ((key >> 32) as u32, *key as u32 as i32);
                out.push(LiveRequest {
                    service: c.service.to_string(),
                    side: match c.side {
                        Side::Server => "server",
                        Side::Client => "client",
                    }
                    .into(),
                    method: r.method.to_string(),
                    path: url_path(r.target).to_string(),
                    age_seconds: now_ns.saturating_sub(r.start_ns) as f64 / 1e9,
                    client: if c.side == Side::Server {
                        peer.clone()
                    } else {
                        None
                    },
                    server: if c.side == Side::Client { peer } else { None },
                    pid,
                    fd,
                    connection: format!("{pid}/{fd}"),
                });
            }
        }
        out.sort_by(|a, b| b.age_seconds.total_cmp(&a.age_seconds));
        out
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    #[cfg(test)]
    pub fn contains(&self, tgid: u32, fd: i32) -> bool {
        self.conns.contains_key(&conn_key(tgid, fd))
    }

    fn service(&mut self, tgid: u32, watch: u32, comm: Option<&str>) -> Arc<str> {
        if let Some(name) = self
            .watches
            .get(watch as usize)
            .and_then(|w| w.service.as_deref())
        {
            return name.into();
        }
        if let Some(n) = self.names.get(&tgid) {
            return n.clone();
        }
        let n: Arc<str> = (self.namer)(tgid, comm).into();
        self.names.insert(tgid, n.clone());
        n
    }

    /// Starts following a connection: from its first byte (accept/connect seen) or
    /// `mid_stream` (already open at start, or its open event was lost).
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        &mut self,
        tgid: u32,
        fd: i32,
        watch: u32,
        side: Side,
        ends: Ends,
        ts: u64,
        mid_stream: bool,
        comm: Option<&str>,
    ) {
        let key = conn_key(tgid, fd);
        if self.conns.contains_key(&key) {
            self.finish(key, ts);
        } else if self.conns.len() >= self.capacity {
            self.evict();
        }
        let service = self.service(tgid, watch, comm);
        if let (Side::Client, Some(peer), 1..) = (side, &ends.peer, ends.local_port) {
            self.hops.insert((ends.local_port, peer.port), key);
        }
        self.conns.insert(
            key,
            ConnState {
                watch,
                side,
                service,
                ends,
                parser: if mid_stream {
                    Connection::mid_stream(side, Limits::default())
                } else {
                    Connection::new(side)
                },
                last_ns: ts,
                bytes: 0,
                active: 0,
                tls: false,
                opaque: false,
                errors_seen: 0,
                last_series: None,
                active_gauge: None,
                from_start: !mid_stream,
                exchanges: 0,
                salt: fastrand::u64(..),
                reader_tid: 0,
                pinned: None,
                caller: None,
            },
        );
        self.metrics
            .tracked_connections
            .set(self.conns.len() as i64);
    }

    pub fn on_event(&mut self, ev: &Event<'_>) {
        self.metrics.events.inc();
        let h = &ev.hdr;
        let key = conn_key(h.tgid, h.fd);
        match h.kind {
            abi::EV_OPEN => {
                let side = side_of(h.side);
                if !self.accepts(h.watch_id, side, h.lport) {
                    self.refused.push(key);
                    return;
                }
                let ends = Ends {
                    peer: Some(peer_of(h)),
                    local_port: h.lport,
                };
                let comm = std::str::from_utf8(ev.head)
                    .ok()
                    .map(|c| c.trim_end_matches('\0'))
                    .filter(|c| !c.is_empty());
                self.open(h.tgid, h.fd, h.watch_id, side, ends, h.ts_ns, false, comm);
            }
            abi::EV_DATA => {
                if !self.conns.contains_key(&key) {
                    if self.port_filtered(h.watch_id) {
                        // Refused at its open, or its local port is unknown.
                        return;
                    }
                    // The open was missed (ring full, or before start): follow from here.
                    let side = side_of(h.side);
                    let ends = Ends::default();
                    self.open(h.tgid, h.fd, h.watch_id, side, ends, h.ts_ns, true, None);
                }
                self.data(key, ev);
            }
            abi::EV_REQUEST | abi::EV_RESPONSE => {
                if !self.conns.contains_key(&key) {
                    if self.port_filtered(h.watch_id) {
                        return;
                    }
                    let ends = Ends::default();
                    self.open(
                        h.tgid,
                        h.fd,
                        h.watch_id,
                        Side::Server,
                        ends,
                        h.ts_ns,
                        true,
                        None,
                    );
                }
                self.framed(key, ev);
            }
            abi::EV_CLOSE => {
                if h.status != 0 {
                    // A framed response cut short by the close: it ends there.
                    self.framed(key, ev);
                }
                self.finish(key, h.ts_ns);
                self.metrics
                    .tracked_connections
                    .set(self.conns.len() as i64);
            }
            _ => {}
        }
    }

    fn data(&mut self, key: u64, ev: &Event<'_>) {
        let h = &ev.hdr;
        let Some(c) = self.conns.get_mut(&key) else {
            return;
        };
        c.last_ns = h.ts_ns;
        let from_tls = h.flags & abi::F_TLS != 0;
        if from_tls && !c.tls {
            c.tls = true;
            c.opaque = false;
            c.parser = Connection::new(c.side);
        } else if !from_tls && c.tls {
            return;
        }
        if !from_tls && c.bytes == 0 && is_tls_record(ev.head) {
            c.opaque = true; // TLS: plaintext only through the libssl uprobes
        }
        c.bytes += h.len;
        if c.opaque {
            return;
        }
        let dir = if h.dir == abi::DIR_WRITE {
            Direction::Write
        } else {
            Direction::Read
        };
        let seg = Segment {
            len: usize::try_from(h.len).unwrap_or(usize::MAX),
            head: ev.head,
            tail: ev.tail,
            ts_ns: h.ts_ns,
        };
        let before = c.parser.active_requests();
        c.parser.on_segment(dir, seg, &mut self.out);
        if self.spans.is_some() {
            self.follow_threads(key, dir, h.tid, before);
        }
        self.after_parse(key);
    }

    /// A request or response framed in the kernel (docs/probe.md, "Kernel framing"): the
    /// request line of a whole request, or the status of the response that ends the oldest
    /// request waiting.
    fn framed(&mut self, key: u64, ev: &Event<'_>) {
        let h = &ev.hdr;
        let Some(c) = self.conns.get_mut(&key) else {
            return;
        };
        c.last_ns = h.ts_ns;
        c.bytes += h.len;
        match h.kind {
            abi::EV_REQUEST => {
                self.metrics.kernel_framed.inc();
                c.parser.on_framed_request(ev.head, h.ts_ns);
            }
            abi::EV_RESPONSE => c
                .parser
                .on_framed_response(h.status, h.ts_ns, &mut self.out),
            _ => c
                .parser
                .on_framed_response_cut(h.status, h.ts_ns, &mut self.out),
        }
        self.after_parse(key);
    }

    /// In-process parentage: which thread serves which request, and the caller of each
    /// outgoing request (docs/probe.md, "In-process parentage").
    fn follow_threads(&mut self, key: u64, dir: Direction, tid: u32, before: usize) {
        let Some(c) = self.conns.get(&key) else {
            return;
        };
        let tgid = (key >> 32) as u32;
        let now = c.parser.active_requests();
        match (c.side, dir) {
            (Side::Server, Direction::Read) if before == 0 && now > 0 => {
                let serving = self.serving.entry(tid).or_default();
                if !serving.is_empty() {
                    self.shared_threads.insert(tgid);
                }
                serving.push(key);
                if let Some(c) = self.conns.get_mut(&key) {
                    c.reader_tid = tid;
                }
            }
            (Side::Server, Direction::Write) if before > 0 && c.reader_tid != tid => {
                self.shared_threads.insert(tgid);
            }
            (Side::Client, Direction::Write) if now > before => {
                let ordinal = c.exchanges + before as u64;
                let caller = match self.serving.get(&tid).map(Vec::as_slice) {
                    Some(&[server]) if !self.shared_threads.contains(&tgid) => self.pin_ids(server),
                    _ => None,
                };
                if let Some(c) = self.conns.get_mut(&key) {
                    c.caller = caller.map(|ids| (ordinal, ids.trace_id, ids.span_id));
                }
            }
            _ => {}
        }
        if let Some(c) = self.conns.get(&key) {
            if c.side == Side::Server && before > 0 && c.parser.active_requests() == 0 {
                self.stop_serving(key);
            }
        }
    }

    /// The server connection `key` has no request in flight any more.
    fn stop_serving(&mut self, key: u64) {
        let Some(c) = self.conns.get_mut(&key) else {
            return;
        };
        let tid = std::mem::take(&mut c.reader_tid);
        if let Some(serving) = self.serving.get_mut(&tid) {
            serving.retain(|k| *k != key);
            if serving.is_empty() {
                self.serving.remove(&tid);
            }
        }
    }

    /// Fixes the ids of the request in flight on server connection `key`, so that its
    /// children can name it before it completes.
    fn pin_ids(&mut self, key: u64) -> Option<SpanIds> {
        let c = self.conns.get(&key)?;
        let ordinal = c.exchanges;
        if let Some((pinned, ids)) = c.pinned {
            if pinned == ordinal {
                return Some(ids);
            }
        }
        let traceparent = c.parser.in_flight().next()?.traceparent.map(str::to_owned);
        let ids = self.exchange_ids(key, ordinal, traceparent.as_deref())?;
        self.conns.get_mut(&key)?.pinned = Some((ordinal, ids));
        Some(ids)
    }

    /// Updates the active-requests gauge of a connection and records its exchanges.
    fn after_parse(&mut self, key: u64) {
        if let Some(c) = self.conns.get_mut(&key) {
            let errors = c.parser.parse_errors();
            if errors > c.errors_seen {
                self.metrics.parse_errors.inc_by(errors - c.errors_seen);
                c.errors_seen = errors;
            }
            if c.side == Side::Server {
                let now = c.parser.active_requests() as i64;
                if now != c.active {
                    c.active_gauge
                        .get_or_insert_with(|| {
                            self.metrics.server_active.with_label_values(&[&c.service])
                        })
                        .inc_by(now - c.active);
                    c.active = now;
                }
            }
        }
        if self.out.is_empty() {
            return;
        }
        let out = std::mem::take(&mut self.out);
        for ex in &out {
            self.record(key, ex);
        }
        self.out = out;
        self.out.clear();
    }

    /// The client end of a local hop, when the server end `key` and its client end were
    /// both followed from their start: its salt and, when the client's request `ordinal`
    /// has a caller in its process, the caller's trace.
    fn hop_of(&self, key: u64, ordinal: u64) -> Option<(u64, Option<TraceId>)> {
        let c = self.conns.get(&key)?;
        let peer = c.ends.peer.as_ref()?;
        if c.side != Side::Server || !c.from_start || c.ends.local_port == 0 {
            return None;
        }
        let client = self
            .conns
            .get(self.hops.get(&(peer.port, c.ends.local_port))?)?;
        let caller = client
            .caller
            .filter(|(o, _, _)| *o == ordinal)
            .map(|(_, trace, _)| trace);
        client.from_start.then_some((client.salt, caller))
    }

    /// The ids of exchange `ordinal` of connection `key`, whose request carried
    /// `traceparent`. Parent: the header's span, else (server end of a local hop) the
    /// client's span, else (client) the server request its thread was serving.
    fn exchange_ids(&self, key: u64, ordinal: u64, traceparent: Option<&str>) -> Option<SpanIds> {
        let c = self.conns.get(&key)?;
        if let Some((pinned, ids)) = c.pinned {
            if pinned == ordinal {
                return Some(ids);
            }
        }
        let header = traceparent.and_then(parse_traceparent);
        let ids = match c.side {
            Side::Server => match self.hop_of(key, ordinal) {
                Some((salt, caller)) => {
                    let (hop_trace, client_span) = hop_ids(salt, ordinal);
                    SpanIds {
                        trace_id: header.map_or(caller.unwrap_or(hop_trace), |p| p.trace_id),
                        span_id: new_span_id(),
                        parent: Some(client_span),
                    }
                }
                None => SpanIds {
                    trace_id: header.map_or_else(new_trace_id, |p| p.trace_id),
                    span_id: new_span_id(),
                    parent: header.map(|p| p.parent_id),
                },
            },
            Side::Client => {
                let own_hop =
                    (c.from_start && c.ends.local_port != 0).then(|| hop_ids(c.salt, ordinal));
                let caller = c.caller.filter(|(o, _, _)| *o == ordinal);
                let span_id = own_hop.map_or_else(new_span_id, |(_, span)| span);
                match (header, caller) {
                    (Some(p), _) => SpanIds {
                        trace_id: p.trace_id,
                        span_id,
                        parent: Some(p.parent_id),
                    },
                    (None, Some((_, trace_id, parent))) => SpanIds {
                        trace_id,
                        span_id,
                        parent: Some(parent),
                    },
                    (None, None) => SpanIds {
                        trace_id: own_hop.map_or_else(new_trace_id, |(trace, _)| trace),
                        span_id,
                        parent: None,
                    },
                }
            }
        };
        Some(ids)
    }

    /// The ids of the span of an answered exchange, when its watch is traced and its trace
    /// is sampled.
    fn kept_span(&self, key: u64, ex: &Exchange) -> Option<SpanIds> {
        let sink = self.spans.as_ref()?;
        ex.status?;
        let c = self.conns.get(&key)?;
        if !self.watches.get(c.watch as usize).is_some_and(|w| w.traces) {
            return None;
        }
        let ids = self.exchange_ids(key, c.exchanges, ex.meta.traceparent.as_deref())?;
        sampled(&ids.trace_id, sink.sample_ratio).then_some(ids)
    }

    fn record(&mut self, key: u64, ex: &Exchange) {
        let span = self.kept_span(key, ex);
        let Some(c) = self.conns.get_mut(&key) else {
            return;
        };
        c.exchanges += 1;
        let exemplar = span.map(|ids| {
            [
                ("trace_id", hex(&ids.trace_id)),
                ("span_id", hex(&ids.span_id)),
            ]
        });
        let method = normalize_method(&ex.method);
        let seconds = ex.end_ns.saturating_sub(ex.start_ns) as f64 / 1e9;
        let target = if c.side == Side::Server {
            ex.target.as_str()
        } else {
            ""
        };
        let cached = c.last_series.as_ref().filter(|last| {
            last.method == method && last.status == ex.status && last.target == target
        });
        if let Some(last) = cached {
            metrics::observe(&last.histogram, seconds, exemplar);
        } else {
            let route = match c.side {
                Side::Server => self
                    .routers
                    .entry((c.watch, c.service.clone()))
                    .or_insert_with(|| {
                        let templates = self
                            .watches
                            .get(c.watch as usize)
                            .map_or(&[][..], |w| &w.routes[..]);
                        RouteMatcher::new(templates)
                            .unwrap_or_else(|_| RouteMatcher::new([""; 0]).expect("no templates"))
                            .with_limits(self.max_routes, RouteMatcher::DEFAULT_MAX_SEGMENTS)
                    })
                    .route(&ex.target),
                Side::Client => "",
            };
            let server_labels = || {
                c.ends
                    .peer
                    .as_ref()
                    .map_or((String::new(), String::new()), |p| {
                        (p.address.clone(), p.port.to_string())
                    })
            };
            // Never answered (the connection ended before a status line): not a duration of
            // the service's work, and not a server error either. No span either.
            let Some(status) = ex.status else {
                match c.side {
                    Side::Server => {
                        self.metrics
                            .server_unanswered
                            .with_label_values(&[&*c.service, method, route])
                            .inc();
                    }
                    Side::Client => {
                        let (addr, port) = server_labels();
                        self.metrics
                            .client_unanswered
                            .with_label_values(&[&*c.service, method, &addr, &port])
                            .inc();
                    }
                }
                return;
            };
            let status = status.to_string();
            let histogram = match c.side {
                Side::Server => self.metrics.server_duration.with_label_values(&[
                    &*c.service,
                    method,
                    &status,
                    route,
                ]),
                Side::Client => {
                    let (addr, port) = server_labels();
                    self.metrics.client_duration.with_label_values(&[
                        &*c.service,
                        method,
                        &status,
                        &addr,
                        &port,
                    ])
                }
            };
            metrics::observe(&histogram, seconds, exemplar);
            c.last_series = Some(Series {
                method,
                status: ex.status,
                target: target.to_string(),
                route: route.to_string(),
                histogram,
            });
        }
        let trace_id = span.as_ref().map(|ids| ids.trace_id);
        let route = match c.side {
            Side::Server => c.last_series.as_ref().map(|s| s.route.as_str()),
            Side::Client => None,
        };
        if let (Some(sink), Some(status), Some(ids)) = (&self.spans, ex.status, span) {
            sink.submit(SpanData {
                ids,
                service: c.service.clone(),
                side: c.side,
                tls: c.tls,
                method: ex.method.clone(),
                target: url_path(&ex.target).to_string(),
                route: route.map(str::to_string),
                status,
                start_ns: ex.start_ns,
                end_ns: ex.end_ns,
                peer: c.ends.peer.clone(),
                local_port: c.ends.local_port,
                meta: ex.meta.clone(),
            });
        }
        if let (Some(log), Some(status)) = (&mut self.access_log, ex.status) {
            log.record(&access_log::Entry {
                service: &c.service,
                side: c.side,
                method,
                route,
                path: url_path(&ex.target),
                status,
                start_ns: ex.start_ns,
                end_ns: ex.end_ns,
                peer: c.ends.peer.as_ref(),
                trace_id: trace_id.as_ref(),
            });
        }
    }

    fn forget_hop(&mut self, key: u64, c: &ConnState) {
        if let (Side::Client, Some(peer)) = (c.side, &c.ends.peer) {
            let hop = (c.ends.local_port, peer.port);
            if self.hops.get(&hop) == Some(&key) {
                self.hops.remove(&hop);
            }
        }
    }

    /// Ends a connection: requests it left unanswered are counted apart.
    fn finish(&mut self, key: u64, ts: u64) {
        self.stop_serving(key);
        let Some(mut c) = self.conns.remove(&key) else {
            return;
        };
        c.parser.on_close(ts, &mut self.out);
        let errors = c.parser.parse_errors();
        if errors > c.errors_seen {
            self.metrics.parse_errors.inc_by(errors - c.errors_seen);
        }
        if c.active != 0 {
            if let Some(g) = &c.active_gauge {
                g.dec_by(c.active);
            }
            c.active = 0;
        }
        if !self.out.is_empty() {
            // Re-insert briefly so `record` finds the connection's labels.
            self.conns.insert(key, c);
            self.after_parse(key);
            let Some(back) = self.conns.remove(&key) else {
                return;
            };
            c = back;
        }
        self.forget_hop(key, &c);
    }

    /// Drops the least recently active sixteenth of the table.
    fn evict(&mut self) {
        let n = (self.capacity / 16).max(1);
        let mut ages: Vec<(u64, u64)> = self.conns.iter().map(|(k, c)| (c.last_ns, *k)).collect();
        if ages.len() > n {
            ages.select_nth_unstable(n);
            ages.truncate(n);
        }
        for (_, key) in ages {
            self.stop_serving(key);
            if let Some(c) = self.conns.remove(&key) {
                self.forget_hop(key, &c);
                if let Some(g) = &c.active_gauge {
                    g.dec_by(c.active);
                }
                self.metrics.evicted_connections.inc();
            }
        }
    }

    /// Forgets processes that exited; returns their tgids (to clean the kernel maps).
    pub fn prune(&mut self, alive: &dyn Fn(u32) -> bool, ts: u64) -> Vec<u32> {
        let mut tgids: Vec<u32> = self.conns.keys().map(|k| (k >> 32) as u32).collect();
        tgids.extend(self.names.keys().copied());
        tgids.sort_unstable();
        tgids.dedup();
        let dead: Vec<u32> = tgids.into_iter().filter(|t| !alive(*t)).collect();
        for &t in &dead {
            let keys: Vec<u64> = self
                .conns
                .keys()
                .filter(|k| (*k >> 32) as u32 == t)
                .copied()
                .collect();
            for k in keys {
                self.finish(k, ts);
            }
            self.names.remove(&t);
            self.shared_threads.remove(&t);
        }
        self.metrics
            .tracked_connections
            .set(self.conns.len() as i64);
        dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(cap: usize) -> (Table, Arc<Metrics>) {
        let m = Arc::new(Metrics::new());
        let watches = vec![WatchInfo {
            service: None,
            routes: vec![],
            traces: true,
            ports: vec![],
        }];
        let t = Table::new(
            watches,
            cap,
            10,
            m.clone(),
            Box::new(|pid, _| format!("proc{pid}")),
        );
        (t, m)
    }

    const SERVER: &str = "http_server_request_duration_seconds";

    /// The value of one series in the classic text rendering.
    fn rendered(m: &Metrics, series: &str) -> Option<f64> {
        let text = String::from_utf8(m.render(false)).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{series} ")))?;
        line.rsplit_once(' ')?.1.parse().ok()
    }

    fn hdr(kind: u8, tgid: u32, fd: i32, ts: u64) -> EventHdr {
        EventHdr {
            kind,
            tgid,
            fd,
            ts_ns: ts,
            ..Default::default()
        }
    }

    #[test]
    fn open_data_close_tracks_connections() {
        let (mut t, m) = table(100);
        t.on_event(&Event {
            hdr: hdr(abi::EV_OPEN, 7, 3, 1),
            head: &[],
            tail: &[],
        });
        assert!(t.contains(7, 3));
        let mut d = hdr(abi::EV_DATA, 7, 4, 2);
        d.len = 3;
        t.on_event(&Event {
            hdr: d,
            head: b"GET",
            tail: &[],
        });
        assert_eq!(t.len(), 2, "data on an unseen fd starts following it");
        t.on_event(&Event {
            hdr: hdr(abi::EV_CLOSE, 7, 3, 3),
            head: &[],
            tail: &[],
        });
        assert!(!t.contains(7, 3));
        assert_eq!(m.tracked_connections.get(), 1);
        assert_eq!(m.events.get(), 3);
    }

    #[test]
    fn a_watch_with_ports_follows_only_connections_accepted_on_them() {
        let (mut t, _) = table(100);
        let id = t.add_watch(WatchInfo {
            service: Some("web".into()),
            routes: vec![],
            traces: true,
            ports: vec![8080],
        });
        assert_eq!(id, 1);
        let open = |fd, side, lport| {
            let mut h = hdr(abi::EV_OPEN, 9, fd, 1);
            (h.watch_id, h.side, h.lport) = (id, side, lport);
            h
        };
        for h in [
            open(3, abi::SIDE_SERVER, 8080),
            open(4, abi::SIDE_SERVER, 9090),
            open(5, abi::SIDE_CLIENT, 8080),
        ] {
            t.on_event(&Event {
                hdr: h,
                head: &[],
                tail: &[],
            });
        }
        assert!(t.contains(9, 3));
        assert!(!t.contains(9, 4) && !t.contains(9, 5));
        assert_eq!(t.take_refused(), vec![conn_key(9, 4), conn_key(9, 5)]);
        let mut d = hdr(abi::EV_DATA, 9, 4, 2);
        (d.watch_id, d.len) = (id, 3);
        t.on_event(&Event {
            hdr: d,
            head: b"GET",
            tail: &[],
        });
        assert!(
            !t.contains(9, 4),
            "data of a refused connection is not followed"
        );
        assert!(t.take_refused().is_empty());
    }

    #[test]
    fn conn_key_hash_spreads_processes_with_the_same_fd() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<ConnKeyHasher>::default();
        let buckets: std::collections::HashSet<u64> = (1..=64u32)
            .map(|tgid| build.hash_one(conn_key(tgid, 3)) & 0xff)
            .collect();
        assert!(buckets.len() > 32, "{} distinct low bytes", buckets.len());
    }

    #[test]
    fn full_table_evicts_the_oldest() {
        let (mut t, m) = table(32);
        for fd in 0..32 {
            t.open(
                1,
                fd,
                0,
                Side::Server,
                Ends::default(),
                fd as u64,
                false,
                None,
            );
        }
        t.open(1, 100, 0, Side::Server, Ends::default(), 1000, false, None);
        assert!(t.len() <= 32);
        assert!(!t.contains(1, 0), "oldest evicted");
        assert!(t.contains(1, 31));
        assert!(t.contains(1, 100));
        assert_eq!(m.evicted_connections.get(), 2);
    }

    #[test]
    fn prune_forgets_dead_processes() {
        let (mut t, _) = table(100);
        t.open(1, 3, 0, Side::Server, Ends::default(), 0, false, None);
        t.open(2, 3, 0, Side::Server, Ends::default(), 0, false, None);
        let dead = t.prune(&|tgid| tgid == 1, 5);
        assert_eq!(dead, vec![2]);
        assert!(t.contains(1, 3) && !t.contains(2, 3));
    }

    #[test]
    fn peer_address_decoding() {
        let mut h = hdr(abi::EV_OPEN, 1, 1, 0);
        h.family = 2;
        h.raddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        h.rport = 8080;
        assert_eq!(
            peer_of(&h),
            Peer {
                address: "127.0.0.1".into(),
                port: 8080
            }
        );
        h.family = 10;
        h.raddr = Ipv6Addr::LOCALHOST.octets();
        assert_eq!(peer_of(&h).address, "::1");
    }

    fn data(t: &mut Table, tgid: u32, fd: i32, side: u8, dir: u8, bytes: &[u8], ts: u64) {
        let mut h = hdr(abi::EV_DATA, tgid, fd, ts);
        h.side = side;
        h.dir = dir;
        h.len = bytes.len() as u64;
        h.head_len = bytes.len() as u16;
        t.on_event(&Event {
            hdr: h,
            head: bytes,
            tail: &[],
        });
    }

    #[test]
    fn exchanges_become_histogram_samples() {
        let (mut t, m) = table(100);
        t.open(1, 3, 0, Side::Server, Ends::default(), 0, false, None);
        let req = b"GET /users/42?x=1 HTTP/1.1\r\nHost: x\r\n\r\n";
        let resp = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nno";
        for i in 0..3u64 {
            let start = 1_000_000_000 * (i + 1);
            data(&mut t, 1, 3, abi::SIDE_SERVER, abi::DIR_READ, req, start);
            assert_eq!(m.server_active.with_label_values(&["proc1"]).get(), 1);
            data(
                &mut t,
                1,
                3,
                abi::SIDE_SERVER,
                abi::DIR_WRITE,
                resp,
                start + 30_000_000,
            );
            assert_eq!(m.server_active.with_label_values(&["proc1"]).get(), 0);
        }
        let series = "{http_request_method=\"GET\",http_response_status_code=\"503\",\
                      http_route=\"/users/{id}\",service_name=\"proc1\"}";
        let sample = |name: &str| rendered(&m, &format!("{SERVER}_{name}{series}"));
        assert_eq!(sample("count"), Some(3.0));
        assert!((sample("sum").unwrap() - 0.09).abs() < 1e-9);
    }

    /// Exchanges framed in the kernel: a REQUEST record (the request line) and a RESPONSE
    /// record (the status) make one sample; a response cut by the close ends at the close.
    #[test]
    fn kernel_framed_exchanges_become_histogram_samples() {
        let (mut t, m) = table(100);
        let framed = |t: &mut Table, kind: u8, line: &[u8], status: u16, ts: u64| {
            let mut h = hdr(kind, 1, 3, ts);
            h.head_len = line.len() as u16;
            h.len = 40;
            h.status = status;
            t.on_event(&Event {
                hdr: h,
                head: line,
                tail: &[],
            });
        };
        framed(
            &mut t,
            abi::EV_REQUEST,
            b"GET /users/42?x=1 HTTP/1.1",
            0,
            1_000_000_000,
        );
        assert_eq!(m.server_active.with_label_values(&["proc1"]).get(), 1);
        framed(&mut t, abi::EV_RESPONSE, b"", 503, 1_030_000_000);
        assert_eq!(m.server_active.with_label_values(&["proc1"]).get(), 0);
        framed(
            &mut t,
            abi::EV_REQUEST,
            b"GET /users/7 HTTP/1.1",
            0,
            2_000_000_000,
        );
        framed(&mut t, abi::EV_CLOSE, b"", 503, 2_010_000_000);
        let series = "{http_request_method=\"GET\",http_response_status_code=\"503\",\
                      http_route=\"/users/{id}\",service_name=\"proc1\"}";
        let sample = |name: &str| rendered(&m, &format!("{SERVER}_{name}{series}"));
        assert_eq!(sample("count"), Some(2.0));
        assert!((sample("sum").unwrap() - 0.04).abs() < 1e-9);
        assert_eq!(m.kernel_framed.get(), 2);
        assert_eq!(m.parse_errors.get(), 1); // the response cut short
        assert_eq!(t.len(), 0);
    }

    /// Watches whose header fields feed spans are flagged for the kernel, which then leaves
    /// their exchanges to userspace; without a span sink none is.
    #[test]
    fn only_traced_watches_keep_their_bytes() {
        let (t, _m) = table(100);
        assert_eq!(t.kernel_watch(0), 0);
        let (mut t, _m, _exporter) = traced(10, 1.0);
        let untraced = t.add_watch(WatchInfo {
            service: None,
            routes: vec![],
            traces: false,
            ports: vec![],
        });
        assert_eq!(t.kernel_watch(0), abi::WATCH_HEADERS);
        assert_eq!(t.kernel_watch(untraced), untraced);
    }

    /// Answered requests only, each with its route (also when the series is reused) and its
    /// path without the query string.
    #[test]
    fn answered_requests_become_access_log_lines() {
        let (t, m) = table(100);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let (log, writer) = AccessLog::new(100, &m, std::fs::File::create(&path).unwrap());
        let writer = std::thread::spawn(writer);
        let mut t = t.with_access_log(log);
        let peer = Peer {
            address: "10.0.0.9".into(),
            port: 51000,
        };
        let ends = Ends {
            peer: Some(peer),
            local_port: 80,
        };
        t.open(3, 6, 0, Side::Server, ends, 0, false, None);
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        for (i, target) in ["/users/7?token=x", "/users/7"].iter().enumerate() {
            let ts = 1_000_000 * (i as u64 + 1);
            let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
            data(
                &mut t,
                3,
                6,
                abi::SIDE_SERVER,
                abi::DIR_READ,
                req.as_bytes(),
                ts,
            );
            data(
                &mut t,
                3,
                6,
                abi::SIDE_SERVER,
                abi::DIR_WRITE,
                resp,
                ts + 2_500,
            );
        }
        let unanswered = b"GET /never HTTP/1.1\r\nHost: x\r\n\r\n";
        data(
            &mut t,
            3,
            6,
            abi::SIDE_SERVER,
            abi::DIR_READ,
            unanswered,
            9_000_000,
        );
        t.on_event(&Event {
            hdr: hdr(abi::EV_CLOSE, 3, 6, 9_500_000),
            head: &[],
            tail: &[],
        });
        drop(t);
        writer.join().unwrap();
        let line = r#"{"service":"proc3","side":"server","method":"GET","route":"/users/{id}","path":"/users/7","status":200,"duration_ms":0.002,"peer":"10.0.0.9:51000"}"#;
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{line}\n{line}\n")
        );
    }

    #[test]
    fn unanswered_requests_are_counted_apart_from_statuses() {
        let (mut t, m) = table(100);
        let peer = Peer {
            address: "10.0.0.1".into(),
            port: 80,
        };
        let ends = Ends {
            peer: Some(peer),
            local_port: 40000,
        };
        t.open(2, 5, 0, Side::Client, ends, 0, false, Some("curl"));
        let req = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
        data(&mut t, 2, 5, abi::SIDE_CLIENT, abi::DIR_WRITE, req, 10);
        t.on_event(&Event {
            hdr: hdr(abi::EV_CLOSE, 2, 5, 20),
            head: &[],
            tail: &[],
        });
        let labels = ["proc2", "POST", "10.0.0.1", "80"];
        assert_eq!(m.client_unanswered.with_label_values(&labels).get(), 1);
        let text = String::from_utf8(m.render(false)).unwrap();
        assert!(!text.contains("http_client_request_duration"), "{text}");

        // Server side: two pipelined requests, the server answers the first (its body cut
        // off by the close: it keeps its status) and closes without answering the second.
        t.open(3, 6, 0, Side::Server, Ends::default(), 0, false, None);
        let two = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        data(&mut t, 3, 6, abi::SIDE_SERVER, abi::DIR_READ, two, 30);
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
        data(&mut t, 3, 6, abi::SIDE_SERVER, abi::DIR_WRITE, resp, 40);
        t.on_event(&Event {
            hdr: hdr(abi::EV_CLOSE, 3, 6, 50),
            head: &[],
            tail: &[],
        });
        let served = "{http_request_method=\"GET\",http_response_status_code=\"200\",\
                      http_route=\"/a\",service_name=\"proc3\"}";
        assert_eq!(rendered(&m, &format!("{SERVER}_count{served}")), Some(1.0));
        let unanswered = m
            .server_unanswered
            .with_label_values(&["proc3", "GET", "/b"]);
        assert_eq!(unanswered.get(), 1);
        let text = String::from_utf8(m.render(false)).unwrap();
        assert!(!text.contains("status_code=\"0\""), "{text}");
    }

    #[test]
    fn not_http_counts_a_parse_error_once_and_tls_is_ignored() {
        let (mut t, m) = table(100);
        t.open(3, 7, 0, Side::Server, Ends::default(), 0, false, None);
        data(
            &mut t,
            3,
            7,
            abi::SIDE_SERVER,
            abi::DIR_READ,
            b"\x00\x01binary\xff\xfe\r\n\r\n",
            1,
        );
        data(
            &mut t,
            3,
            7,
            abi::SIDE_SERVER,
            abi::DIR_READ,
            b"\x00\x02more",
            2,
        );
        assert_eq!(m.parse_errors.get(), 1);
        t.open(3, 8, 0, Side::Server, Ends::default(), 0, false, None);
        data(
            &mut t,
            3,
            8,
            abi::SIDE_SERVER,
            abi::DIR_READ,
            b"\x16\x03\x01\x00\x05hello",
            1,
        );
        assert_eq!(
            m.parse_errors.get(),
            1,
            "a TLS handshake is not a parse error"
        );
        // Followed mid-stream (open before start): TLS application data.
        t.open(3, 9, 0, Side::Server, Ends::default(), 0, true, None);
        data(
            &mut t,
            3,
            9,
            abi::SIDE_SERVER,
            abi::DIR_READ,
            b"\x17\x03\x03\x00\x20encrypted",
            1,
        );
        assert_eq!(m.parse_errors.get(), 1, "TLS records are not parse errors");
    }

    fn traced(
        max_queue: usize,
        sample_ratio: f64,
    ) -> (Table, Arc<Metrics>, crate::export::Exporter) {
        let (t, m) = table(100);
        let settings = crate::config::Traces {
            url: "http://127.0.0.1:1/v1/traces".into(),
            sample_ratio,
            max_queue,
            max_batch: 10,
            batch_timeout: std::time::Duration::from_millis(10),
        };
        let (sink, exporter) = crate::export::channel(&settings, m.clone()).unwrap();
        (t.with_spans(sink), m, exporter)
    }

    fn server_conn(t: &mut Table, fd: i32) {
        let ends = Ends {
            peer: Some(Peer {
                address: "127.0.0.1".into(),
                port: 50000 + fd as u16,
            }),
            local_port: 8080,
        };
        t.open(1, fd, 0, Side::Server, ends, 0, false, None);
    }

    #[test]
    fn answered_requests_become_spans_continuing_traceparent() {
        let (mut t, m, mut exporter) = traced(16, 1.0);
        server_conn(&mut t, 3);
        let with_parent = b"GET /items/7?q=secret HTTP/1.1\r\nHost: h:8080\r\n\
traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n";
        data(
            &mut t,
            1,
            3,
            abi::SIDE_SERVER,
            abi::DIR_READ,
            with_parent,
            100,
        );
        assert_eq!(t.in_flight(1_000_100).len(), 1);
        let live = &t.in_flight(1_000_100)[0];
        assert_eq!(
            (live.path.as_str(), live.age_seconds, live.client.as_deref()),
            ("/items/7", 0.001, Some("127.0.0.1:50003"))
        );
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        data(&mut t, 1, 3, abi::SIDE_SERVER, abi::DIR_WRITE, ok, 300);
        assert!(t.in_flight(400).is_empty());
        let span = exporter.try_take().expect("a span");
        assert_eq!(
            span.ids.trace_id,
            *b"\x0a\xf7\x65\x19\x16\xcd\x43\xdd\x84\x48\xeb\x21\x1c\x80\x31\x9c"
        );
        assert_eq!(span.ids.parent, Some(*b"\xb7\xad\x6b\x71\x69\x20\x33\x31"));
        assert_eq!((span.start_ns, span.end_ns, span.status), (100, 300, 200));
        assert_eq!(span.target, "/items/7", "no query kept");
        assert_eq!(span.route.as_deref(), Some("/items/{id}"));
        assert_eq!(span.local_port, 8080);

        // Same series again (the metrics' cache path), without a traceparent: a new trace.
        let plain = b"GET /items/7?q=secret HTTP/1.1\r\nHost: h:8080\r\n\r\n";
        data(&mut t, 1, 3, abi::SIDE_SERVER, abi::DIR_READ, plain, 400);
        data(&mut t, 1, 3, abi::SIDE_SERVER, abi::DIR_WRITE, ok, 500);
        let span2 = exporter.try_take().expect("a second span");
        assert_ne!(span2.ids.trace_id, span.ids.trace_id);
        assert_eq!(span2.ids.parent, None);
        assert_eq!(span2.route.as_deref(), Some("/items/{id}"));
        assert!(exporter.try_take().is_none());
        let dropped = m.spans_dropped.with_label_values(&["queue_full"]).get();
        assert_eq!(dropped, 0);
    }

    #[test]
    fn full_queue_drops_and_counts_ratio_zero_and_untraced_watches_export_nothing() {
        let (mut t, m, mut exporter) = traced(2, 1.0);
        server_conn(&mut t, 3);
        let req = b"GET / HTTP/1.1\r\n\r\n";
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        for i in 0..5 {
            data(&mut t, 1, 3, abi::SIDE_SERVER, abi::DIR_READ, req, 10 * i);
            data(
                &mut t,
                1,
                3,
                abi::SIDE_SERVER,
                abi::DIR_WRITE,
                ok,
                10 * i + 5,
            );
        }
        let queued = std::iter::from_fn(|| exporter.try_take()).count();
        assert_eq!(queued, 2);
        assert_eq!(m.spans_dropped.with_label_values(&["queue_full"]).get(), 3);

        let (mut t, m, mut exporter) = traced(16, 0.0);
        server_conn(&mut t, 3);
        data(&mut t, 1, 3, abi::SIDE_SERVER, abi::DIR_READ, req, 1);
        data(&mut t, 1, 3, abi::SIDE_SERVER, abi::DIR_WRITE, ok, 2);
        assert!(exporter.try_take().is_none());
        assert_eq!(m.spans_dropped.with_label_values(&["queue_full"]).get(), 0);
        // A watch with `traces = false`: metrics only.
        let (mut t, _, mut exporter) = traced(16, 1.0);
        t.watches[0].traces = false;
        server_conn(&mut t, 3);
        data(&mut t, 1, 3, abi::SIDE_SERVER, abi::DIR_READ, req, 1);
        data(&mut t, 1, 3, abi::SIDE_SERVER, abi::DIR_WRITE, ok, 2);
        assert!(exporter.try_take().is_none());
    }

    #[test]
    fn local_hop_server_span_is_a_child_of_the_client_span_in_either_order() {
        let (mut t, _, mut exporter) = traced(16, 1.0);
        let peer = |port| {
            Some(Peer {
                address: "127.0.0.1".into(),
                port,
            })
        };
        let client = Ends {
            peer: peer(8080),
            local_port: 40000,
        };
        t.open(2, 5, 0, Side::Client, client, 0, false, Some("curl"));
        let server = Ends {
            peer: peer(40000),
            local_port: 8080,
        };
        t.open(1, 3, 0, Side::Server, server, 1, false, None);
        let plain = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        let with_parent = b"GET /b HTTP/1.1\r\n\
traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n"
            .to_vec();
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let (cl, sv) = (abi::SIDE_CLIENT, abi::SIDE_SERVER);
        for (i, req) in [&plain, &with_parent, &plain].into_iter().enumerate() {
            let ts = 100 * i as u64;
            data(&mut t, 2, 5, cl, abi::DIR_WRITE, req, ts + 10);
            data(&mut t, 1, 3, sv, abi::DIR_READ, req, ts + 11);
            // The second time, the client's read is seen before the server's write.
            if i == 1 {
                data(&mut t, 2, 5, cl, abi::DIR_READ, ok, ts + 21);
                data(&mut t, 1, 3, sv, abi::DIR_WRITE, ok, ts + 20);
            } else {
                data(&mut t, 1, 3, sv, abi::DIR_WRITE, ok, ts + 20);
                data(&mut t, 2, 5, cl, abi::DIR_READ, ok, ts + 21);
            }
        }
        let spans: Vec<SpanData> = std::iter::from_fn(|| exporter.try_take()).collect();
        assert_eq!(spans.len(), 6);
        let (clients, servers): (Vec<&SpanData>, Vec<&SpanData>) =
            spans.iter().partition(|s| s.side == Side::Client);
        for (c, s) in clients.iter().zip(&servers) {
            assert_eq!(s.ids.parent, Some(c.ids.span_id), "{c:?}\n{s:?}");
            assert_eq!(s.ids.trace_id, c.ids.trace_id);
            assert_eq!(c.target, s.target);
        }
        assert_eq!(clients[0].ids.parent, None);
        assert_eq!(
            clients[1].ids.parent,
            Some(*b"\xb7\xad\x6b\x71\x69\x20\x33\x31"),
            "the client span continues the header's trace"
        );
        assert_eq!(clients[1].ids.trace_id[..2], [0x0a, 0xf7]);
        assert_ne!(clients[0].ids.trace_id, clients[2].ids.trace_id);
        assert_ne!(clients[0].ids.span_id, clients[2].ids.span_id);

        // The client connection closed: a new server connection from the same port is no
        // longer linked.
        t.on_event(&Event {
            hdr: hdr(abi::EV_CLOSE, 2, 5, 1000),
            head: &[],
            tail: &[],
        });
        assert!(t.hops.is_empty());
    }

    /// A read or write made by thread `tid`.
    #[allow(clippy::too_many_arguments)]
    fn data_on(
        t: &mut Table,
        tid: u32,
        tgid: u32,
        fd: i32,
        side: u8,
        dir: u8,
        bytes: &[u8],
        ts: u64,
    ) {
        let mut h = hdr(abi::EV_DATA, tgid, fd, ts);
        (h.side, h.dir, h.tid) = (side, dir, tid);
        h.len = bytes.len() as u64;
        h.head_len = bytes.len() as u16;
        t.on_event(&Event {
            hdr: h,
            head: bytes,
            tail: &[],
        });
    }

    fn local(port: u16) -> Option<Peer> {
        Some(Peer {
            address: "127.0.0.1".into(),
            port,
        })
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

    /// Process `tgid` serves `/front` on `fd` (read by thread `reader`) and calls another
    /// local server on `fd + 100` from thread `caller`, then answers from thread `reader`.
    fn serve_with_call(t: &mut Table, tgid: u32, fd: i32, reader: u32, caller: u32, ts: u64) {
        let (sv, cl) = (abi::SIDE_SERVER, abi::SIDE_CLIENT);
        let front = b"GET /front HTTP/1.1\r\nHost: x\r\n\r\n";
        let back = b"GET /back HTTP/1.1\r\nHost: y\r\n\r\n";
        data_on(t, reader, tgid, fd, sv, abi::DIR_READ, front, ts);
        data_on(t, caller, tgid, fd + 100, cl, abi::DIR_WRITE, back, ts + 1);
        data_on(t, caller, tgid, fd + 100, cl, abi::DIR_READ, OK, ts + 2);
        data_on(t, reader, tgid, fd, sv, abi::DIR_WRITE, OK, ts + 3);
    }

    fn open_pair(t: &mut Table, tgid: u32, fd: i32) {
        let server = Ends {
            peer: local(30000 + fd as u16),
            local_port: 8080,
        };
        t.open(tgid, fd, 0, Side::Server, server, 0, false, None);
        let client = Ends {
            peer: local(9000),
            local_port: 40000 + fd as u16,
        };
        t.open(tgid, fd + 100, 0, Side::Client, client, 0, false, None);
    }

    #[test]
    fn a_call_made_by_the_serving_thread_is_a_child_of_its_request() {
        let (mut t, _, mut exporter) = traced(64, 1.0);
        // Thread-per-request: thread 11 reads /front, calls /back, answers. The /back server
        // (process 2) is watched too: a local hop.
        open_pair(&mut t, 1, 3);
        let hop = Ends {
            peer: local(40003),
            local_port: 9000,
        };
        t.open(2, 4, 0, Side::Server, hop, 0, false, None);
        let (sv, cl) = (abi::SIDE_SERVER, abi::SIDE_CLIENT);
        let front = b"GET /front HTTP/1.1\r\n\
traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n";
        let back = b"GET /back HTTP/1.1\r\nHost: y\r\n\r\n";
        data_on(&mut t, 11, 1, 3, sv, abi::DIR_READ, front, 10);
        data_on(&mut t, 11, 1, 103, cl, abi::DIR_WRITE, back, 11);
        data_on(&mut t, 21, 2, 4, sv, abi::DIR_READ, back, 12);
        data_on(&mut t, 21, 2, 4, sv, abi::DIR_WRITE, OK, 13);
        data_on(&mut t, 11, 1, 103, cl, abi::DIR_READ, OK, 14);
        data_on(&mut t, 11, 1, 3, sv, abi::DIR_WRITE, OK, 15);
        let spans: Vec<SpanData> = std::iter::from_fn(|| exporter.try_take()).collect();
        let find = |side: Side, target: &str| {
            spans
                .iter()
                .find(|s| s.side == side && s.target == target)
                .unwrap_or_else(|| panic!("{side:?} {target}: {spans:#?}"))
        };
        let front = find(Side::Server, "/front");
        let call = find(Side::Client, "/back");
        let back = find(Side::Server, "/back");
        assert_eq!(front.ids.trace_id[..2], [0x0a, 0xf7], "the header's trace");
        assert_eq!(call.ids.parent, Some(front.ids.span_id));
        assert_eq!(back.ids.parent, Some(call.ids.span_id), "{spans:#?}");
        assert!([call, back]
            .iter()
            .all(|s| s.ids.trace_id == front.ids.trace_id));

        // Another thread's call (a pool worker) is nobody's child.
        open_pair(&mut t, 1, 5);
        serve_with_call(&mut t, 1, 5, 12, 13, 100);
        let spans: Vec<SpanData> = std::iter::from_fn(|| exporter.try_take()).collect();
        let call = spans.iter().find(|s| s.side == Side::Client).unwrap();
        assert_eq!(call.ids.parent, None, "{spans:#?}");
    }

    #[test]
    fn no_parent_on_threads_that_serve_several_requests() {
        let (mut t, _, mut exporter) = traced(64, 1.0);
        let (sv, cl) = (abi::SIDE_SERVER, abi::SIDE_CLIENT);
        let req = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
        // An event loop (process 3, thread 31) has /a and /b in flight, then calls out.
        open_pair(&mut t, 3, 3);
        open_pair(&mut t, 3, 4);
        data_on(&mut t, 31, 3, 3, sv, abi::DIR_READ, &req("/a"), 10);
        data_on(&mut t, 31, 3, 4, sv, abi::DIR_READ, &req("/b"), 11);
        data_on(&mut t, 31, 3, 103, cl, abi::DIR_WRITE, &req("/x"), 12);
        data_on(&mut t, 31, 3, 103, cl, abi::DIR_READ, OK, 13);
        data_on(&mut t, 31, 3, 3, sv, abi::DIR_WRITE, OK, 14);
        data_on(&mut t, 31, 3, 4, sv, abi::DIR_WRITE, OK, 15);
        // Later one request at a time: the process is known to share threads, so still no
        // parent (the call could be a timer's).
        serve_with_call(&mut t, 3, 3, 31, 31, 100);
        // Process 4 answers on another thread than the one that read (Go's scheduler):
        // first its request in flight while the process is not known yet, then a call.
        open_pair(&mut t, 4, 3);
        data_on(&mut t, 41, 4, 3, sv, abi::DIR_READ, &req("/m"), 200);
        data_on(&mut t, 42, 4, 3, sv, abi::DIR_WRITE, OK, 201);
        serve_with_call(&mut t, 4, 3, 41, 41, 300);
        let spans: Vec<SpanData> = std::iter::from_fn(|| exporter.try_take()).collect();
        let calls: Vec<&SpanData> = spans.iter().filter(|s| s.side == Side::Client).collect();
        assert_eq!(calls.len(), 3, "{spans:#?}");
        assert!(calls.iter().all(|s| s.ids.parent.is_none()), "{calls:#?}");
    }
}
