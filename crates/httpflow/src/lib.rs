//! HTTP/1.x exchange reconstruction from what a socket observer sees: pure,
//! bytes in, exchanges out, so it can be tested and fuzzed without eBPF.
//!
//! The observer may capture only part of each read or write: a [`Segment`]
//! carries the full length of the syscall's data, the captured head and a
//! short captured tail.

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
}
