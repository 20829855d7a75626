//! HTTP/1.x and HTTP/2 exchange reconstruction from what a socket observer
//! sees: pure, bytes in, exchanges out, so it can be tested and fuzzed
//! without eBPF.
//!
//! A connection whose first bytes are the HTTP/2 client preface (or, from
//! the server, a SETTINGS frame), or that an HTTP/1.1 `101` switched to h2c,
//! is followed as HTTP/2 ([`Mode::Http2`]):
//! each stream is one [`Exchange`]; see the `http2` module for the frames
//! followed and what a capture cut in the middle of a frame header or header
//! block does (the connection is given up with one parse error). The rest of
//! this page is about HTTP/1.x.
//!
//! The observer may capture only part of each read or write: a [`Segment`]
//! carries the full length of the syscall's data, the captured head and a
//! short captured tail.
//!
//! [`Connection`] follows one TCP connection (server or client side) and
//! reports completed [`Exchange`]s: keep-alive, pipelining (responses paired
//! with requests in order), Content-Length and chunked bodies (extensions,
//! trailers) in both directions, HEAD/204/304 without body, interim 1xx
//! responses, `101 Switching Protocols` and CONNECT tunnels (tracking ends),
//! responses delimited by the close. Messages are framed by a state machine,
//! never by looking for `HTTP/1.` in the data, so a body that contains a
//! status line is still a body. Memory per connection is bounded by
//! [`Limits`]; data that is not HTTP/1.x makes the connection [`Mode::NotHttp`]:
//! a request must begin with a method of uppercase letters, `-` or `_`, a
//! space, a target without control characters, a space and `HTTP/1.x`; a
//! response with `HTTP/1.x NNN`. This is decided on the first line (or its
//! first 64 bytes), so binary protocols and TLS are rejected at once.
//!
//! # Heuristics for what the capture missed
//!
//! Bytes that were not captured (between a segment's head and tail) are
//! accounted for by length; the framing survives them when they fall inside
//! a Content-Length body or inside one chunk's data. Otherwise:
//!
//! - A head cut by the capture (or longer than [`Limits::max_head_bytes`]):
//!   method, target (as far as seen) and status come from its start line,
//!   Content-Length / Transfer-Encoding from the complete header lines seen.
//!   Its end is the first empty line in later captured bytes (e.g. a
//!   segment's tail ending in CRLF CRLF). A request head missing those fields
//!   is taken to have no body; a response head missing them has an unknown
//!   body (next item). Counted in [`Stats::partial_heads`].
//! - A body whose framing is unknown (chunk framing in uncaptured bytes,
//!   malformed chunks, framing fields not captured) ends when the last
//!   captured bytes of a segment in its direction end with the last chunk
//!   (`CRLF 0 CRLF CRLF`); otherwise at the close. Counted in
//!   [`Stats::resyncs`].
//! - Such a body, and any body after a head not seen whole (whose end may
//!   have been misplaced: an empty line inside the body taken for the end of
//!   the head), ends at the latest when the other direction begins a
//!   message: a response body when the next request begins, a request body
//!   when a response begins.
//! - A Content-Length or chunked body of which no byte was seen, when the
//!   other direction has begun its next message (a new request after a
//!   response head) and the next segment in its own direction begins with a
//!   whole first line instead of body bytes, was sent by `sendfile`/`splice`,
//!   which are not observed: it ends at its last observed byte (its head).
//!   A response closed in that state ends the same way, without a parse
//!   error. Counted in [`Stats::unseen_bodies`].
//! - A response beginning while no request is waiting and a request head is
//!   still incomplete completes that request head (servers answer only once
//!   they have read the head, or reject it).
//! - A message boundary in uncaptured bytes (or a head not seen whole) puts
//!   the direction out of sync. A message is then looked for at the start
//!   of the following segments (writes and reads usually begin with a
//!   message), tentatively until its whole first line is seen; elsewhere in
//!   captured data, at the first whole, valid first line with a registered
//!   method (IANA registry plus a few common extensions) for a request, or
//!   `HTTP/1.x NNN` for a response. A method that is the end of a registered
//!   one (`ATCH`, `FIND`) is taken for a cut message, not a start. A
//!   message that began out of sync takes part in the cross-direction
//!   heuristics above only once its first line is confirmed. Captured data
//!   that does not begin a message is skipped ([`Stats::skipped_segments`]),
//!   never fatal.
//! - Known limit: a client that pipelines a request between a response head
//!   and a body beginning with `HTTP/1.x NNN` in its own segment makes that
//!   body look like the next response after an unseen (sendfile) body.
//! - [`Connection::mid_stream`] starts out of sync, for connections already
//!   open when observation began.
//!
//! [`normalize_method`] and [`RouteMatcher`] produce the metric labels.

mod body;
mod connection;
mod head;
mod http2;
mod method;
mod route;
mod stream;

pub use connection::{Connection, Limits, Mode, Stats};
pub use method::normalize_method;
pub use route::{
    RouteError, RouteMatcher, ASTERISK_ROUTE, ID_SEGMENT, NON_PATH_ROUTE, OVERFLOW_ROUTE,
    REST_SEGMENT,
};

/// Which end of the connection the watched process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The process accepted the connection: it reads requests, writes responses.
    Server,
    /// The process connected out: it writes requests, reads responses.
    Client,
}

/// Direction of the data, seen from the watched process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Bytes the process read from the socket.
    Read,
    /// Bytes the process wrote to the socket.
    Write,
}

/// One read or write as observed.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// Bytes the syscall actually moved.
    pub len: usize,
    /// The first `head.len()` bytes of that data (all of it when `head.len() == len`).
    pub head: &'a [u8],
    /// The last `tail.len()` bytes of that data (may overlap `head`; empty when `head` is complete).
    pub tail: &'a [u8],
    /// Monotonic time of the syscall, nanoseconds.
    pub ts_ns: u64,
}

/// A completed request/response pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Method as sent, e.g. "GET"; see [`normalize_method`] for the metric label.
    pub method: String,
    /// Request target (path and query) as far as it was captured.
    pub target: String,
    /// Response status; None when the connection ended before a status line.
    pub status: Option<u16>,
    /// Time of the first request byte.
    pub start_ns: u64,
    /// Time of the last response byte.
    pub end_ns: u64,
    /// Header fields of the request kept for spans.
    pub meta: RequestMeta,
}

/// The few request header fields kept (for trace spans), each cut at 256 bytes. No other
/// header value is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    pub host: Option<String>,
    pub user_agent: Option<String>,
    /// W3C Trace Context `traceparent`, unchecked.
    pub traceparent: Option<String>,
}

/// A request whose response is not complete yet (see [`Connection::in_flight`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight<'a> {
    pub method: &'a str,
    pub target: &'a str,
    /// Time of the first request byte.
    pub start_ns: u64,
    /// Its `traceparent` header, once the request head is complete.
    pub traceparent: Option<&'a str>,
}
