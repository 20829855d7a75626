//! HTTP/2 (RFC 9113) exchange reconstruction for one connection that began
//! with the client preface: frames are followed in both directions, header
//! blocks decoded with HPACK (one decoder per direction), and each stream is
//! one exchange, from the first byte of the client's HEADERS frame to the end
//! of the server's frame carrying END_STREAM (or to a RST_STREAM).
//!
//! The capture may miss the middle of a read or write. The frame headers
//! give every frame's length, so uncaptured bytes inside the payload of a
//! frame whose content is not needed (DATA, PING, WINDOW_UPDATE, PRIORITY,
//! unknown types) are skipped by count. Uncaptured bytes holding a frame
//! header, or any byte of a header block, SETTINGS, RST_STREAM or GOAWAY
//! payload, leave the direction's HPACK state unknown: the connection is
//! then given up (one parse error) rather than decoded wrongly.

use std::collections::BTreeMap;

use loona_hpack::Decoder;

use crate::head::{cut, MAX_META_BYTES};
use crate::{Exchange, InFlight, Limits, RequestMeta, Stats};

/// What a client sends first on an HTTP/2 connection (RFC 9113 section 3.4).
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length of `PRI * HTTP/2.0`.
const PREFACE_VERSION_END: usize = 14;

const FRAME_HEADER: usize = 9;
/// Longest header block (all its frames) decoded; a longer one is not
/// followed and the connection is given up.
const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// Streams followed at once; further requests are dropped and counted in
/// [`Stats::dropped_requests`].
const MAX_STREAMS: usize = 256;
/// SETTINGS_HEADER_TABLE_SIZE before any SETTINGS (RFC 9113 section 6.5.2).
const DEFAULT_TABLE_SIZE: usize = 4096;
/// Largest HPACK table followed, whatever SETTINGS allow: an encoder using more
/// makes the connection given up, which bounds the memory per connection.
const MAX_TABLE_SIZE: usize = 64 * 1024;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;

/// Whether captured data at the very start of a connection begins HTTP/2:
/// from the client, the preface (or, when the segment is whole and shorter,
/// its beginning up to the version at least: `PRI * HTTP/1.1` would be
/// HTTP/1); from the server, which may send its SETTINGS before reading the
/// preface, a SETTINGS frame header on stream 0.
pub(crate) fn begins(from_client: bool, head: &[u8], len: usize) -> bool {
    if from_client {
        head.starts_with(PREFACE)
            || (head.len() >= PREFACE_VERSION_END && head.len() == len && PREFACE.starts_with(head))
    } else {
        head.len() >= FRAME_HEADER && {
            let h = FrameHeader::parse(head[..FRAME_HEADER].try_into().expect("9 bytes"));
            h.kind == SETTINGS && h.flags == 0 && h.stream == 0 && h.len.is_multiple_of(6)
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct FrameHeader {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

impl FrameHeader {
    fn parse(b: &[u8; FRAME_HEADER]) -> Self {
        FrameHeader {
            len: usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }
}

/// The frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct Frame {
    header: FrameHeader,
    /// Payload bytes not read yet.
    left: usize,
    /// Payload bytes to keep (the rest is skipped by count).
    keep: usize,
    /// Time of the segment holding the frame's first byte.
    start_ns: u64,
}

/// A header block whose CONTINUATION frames are still to come.
#[derive(Debug, Clone, Copy)]
struct Block {
    kind: u8,
    stream: u32,
    end_stream: bool,
    start_ns: u64,
}

/// One direction: the frames one endpoint sends, decoded as the other does.
struct Half {
    /// Preface bytes still expected (the client's direction only).
    preface_left: usize,
    header: [u8; FRAME_HEADER],
    header_len: usize,
    /// Time of the segment holding the first byte of the frame header.
    header_ns: u64,
    frame: Option<Frame>,
    payload: Vec<u8>,
    /// The header block being assembled, and its first frame.
    block: Vec<u8>,
    open_block: Option<Block>,
    decoder: Decoder<'static>,
}

impl std::fmt::Debug for Half {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Half")
            .field("preface_left", &self.preface_left)
            .field("frame", &self.frame)
            .field("open_block", &self.open_block)
            .finish_non_exhaustive()
    }
}

impl Half {
    fn new(preface: bool) -> Self {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(DEFAULT_TABLE_SIZE);
        Half {
            preface_left: if preface { PREFACE.len() } else { 0 },
            header: [0; FRAME_HEADER],
            header_len: 0,
            header_ns: 0,
            frame: None,
            payload: Vec::new(),
            block: Vec::new(),
            open_block: None,
            decoder,
        }
    }
}

/// What a completed frame tells the connection.
enum Action {
    None,
    /// A header block (as described by its first frame), decoded.
    Headers(Block, Fields),
    EndStream(u32),
    Reset(u32),
    /// SETTINGS_HEADER_TABLE_SIZE of the sender: the most the other
    /// direction's encoder may use.
    TableSize(usize),
    GoAway(u32),
}

/// The header fields an exchange needs.
#[derive(Debug, Default)]
struct Fields {
    method: Option<String>,
    path: Option<String>,
    authority: Option<String>,
    status: Option<u16>,
    meta: RequestMeta,
}

/// A stream whose request was seen and whose response has not ended.
#[derive(Debug)]
struct Open {
    method: String,
    target: String,
    start_ns: u64,
    meta: RequestMeta,
    status: Option<u16>,
}

/// Why a direction cannot be followed any more.
#[derive(Debug)]
pub(crate) struct Lost;

/// HTTP/2 state of a connection.
#[derive(Debug)]
pub(crate) struct Http2 {
    client: Half,
    server: Half,
    streams: BTreeMap<u32, Open>,
    max_target_bytes: usize,
}

impl Http2 {
    pub fn new(limits: &Limits) -> Self {
        Http2 {
            client: Half::new(true),
            server: Half::new(false),
            streams: BTreeMap::new(),
            max_target_bytes: limits.max_target_bytes,
        }
    }

    /// The upgraded HTTP/1.1 request: stream 1, waiting for its response.
    pub fn open_upgraded(
        &mut self,
        method: String,
        target: String,
        start_ns: u64,
        meta: RequestMeta,
    ) {
        let target = cut(target.as_bytes(), self.max_target_bytes);
        self.streams.insert(
            1,
            Open {
                method,
                target,
                start_ns,
                meta,
                status: None,
            },
        );
    }

    pub fn active_requests(&self) -> usize {
        self.streams.len()
    }

    pub fn in_flight(&self) -> impl Iterator<Item = InFlight<'_>> {
        self.streams.values().map(|s| InFlight {
            method: &s.method,
            target: &s.target,
            start_ns: s.start_ns,
            traceparent: s.meta.traceparent.as_deref(),
        })
    }

    pub fn heap_bytes(&self) -> usize {
        let half = |h: &Half| h.payload.capacity() + h.block.capacity();
        let stream =
            |s: &Open| std::mem::size_of::<Open>() + s.method.capacity() + s.target.capacity() + 64;
        // The HPACK tables are bounded by SETTINGS_HEADER_TABLE_SIZE (and
        // MAX_TABLE_SIZE); counted at their default size.
        half(&self.client)
            + half(&self.server)
            + 2 * DEFAULT_TABLE_SIZE
            + self.streams.values().map(stream).sum::<usize>()
    }

    /// Follows captured bytes sent by the client (`from_client`) or the server.
    pub fn feed(
        &mut self,
        from_client: bool,
        mut data: &[u8],
        ts: u64,
        out: &mut Vec<Exchange>,
        stats: &mut Stats,
    ) -> Result<(), Lost> {
        while !data.is_empty() {
            let half = if from_client {
                &mut self.client
            } else {
                &mut self.server
            };
            let (used, action) = step(half, data, ts)?;
            data = &data[used..];
            self.act(from_client, action, ts, out, stats);
        }
        Ok(())
    }

    /// Accounts for `n` bytes the capture did not keep.
    pub fn skip(
        &mut self,
        from_client: bool,
        n: u64,
        ts: u64,
        out: &mut Vec<Exchange>,
        stats: &mut Stats,
    ) -> Result<(), Lost> {
        let half = if from_client {
            &mut self.client
        } else {
            &mut self.server
        };
        let Some(frame) = &mut half.frame else {
            return Err(Lost); // a frame header (or the preface) is in the gap
        };
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if frame.keep > 0 || n > frame.left {
            return Err(Lost);
        }
        frame.left -= n;
        if frame.left == 0 {
            let action = finish_frame(half)?;
            self.act(from_client, action, ts, out, stats);
        }
        Ok(())
    }

    /// The connection closed: streams still open are reported without
    /// status, ending at `ts`.
    pub fn on_close(&mut self, ts: u64, out: &mut Vec<Exchange>) {
        for (_, s) in std::mem::take(&mut self.streams) {
            out.push(exchange(s, ts));
        }
    }

    fn act(
        &mut self,
        from_client: bool,
        action: Action,
        ts: u64,
        out: &mut Vec<Exchange>,
        stats: &mut Stats,
    ) {
        match action {
            Action::None => {}
            // Decoded for the HPACK state only: pushed streams are not counted.
            Action::Headers(block, _) if block.kind == PUSH_PROMISE => {}
            Action::Headers(block, fields) if from_client => {
                if self.streams.contains_key(&block.stream) {
                    return; // trailers
                }
                if self.streams.len() >= MAX_STREAMS {
                    stats.dropped_requests += 1;
                    return;
                }
                let method = fields.method.unwrap_or_default();
                let target = fields
                    .path
                    .or(fields.authority)
                    .map(|t| cut(t.as_bytes(), self.max_target_bytes))
                    .unwrap_or_default();
                self.streams.insert(
                    block.stream,
                    Open {
                        method,
                        target,
                        start_ns: block.start_ns,
                        meta: fields.meta,
                        status: None,
                    },
                );
            }
            Action::Headers(block, fields) => {
                let Some(s) = self.streams.get_mut(&block.stream) else {
                    return; // a pushed stream, or a request not followed
                };
                match fields.status {
                    Some(100..=199) => {} // interim: the final response follows
                    Some(status) => s.status = Some(status),
                    None if s.status.is_none() => stats.parse_errors += 1,
                    None => {} // trailers
                }
                if block.end_stream {
                    self.end(block.stream, ts, out);
                }
            }
            Action::EndStream(stream) if !from_client => self.end(stream, ts, out),
            Action::EndStream(_) => {}
            Action::Reset(stream) => {
                if let Some(s) = self.streams.remove(&stream) {
                    out.push(exchange(s, ts));
                }
            }
            Action::TableSize(size) => {
                // The sender decodes what the other direction encodes.
                let other = if from_client {
                    &mut self.server
                } else {
                    &mut self.client
                };
                other
                    .decoder
                    .set_max_allowed_table_size(size.min(MAX_TABLE_SIZE));
            }
            Action::GoAway(last) if !from_client => {
                // Streams above the last one the server processed were not
                // processed at all: the client may retry them elsewhere.
                self.streams.retain(|&id, _| id <= last);
            }
            Action::GoAway(_) => {}
        }
    }

    fn end(&mut self, stream: u32, ts: u64, out: &mut Vec<Exchange>) {
        if let Some(s) = self.streams.remove(&stream) {
            out.push(exchange(s, ts));
        }
    }
}

fn exchange(s: Open, end_ns: u64) -> Exchange {
    Exchange {
        method: s.method,
        target: s.target,
        status: s.status,
        start_ns: s.start_ns,
        end_ns: end_ns.max(s.start_ns),
        meta: s.meta,
    }
}

/// Consumes a prefix of `data`: preface, frame header or payload bytes.
fn step(half: &mut Half, data: &[u8], ts: u64) -> Result<(usize, Action), Lost> {
    if half.preface_left > 0 {
        let at = PREFACE.len() - half.preface_left;
        let n = half.preface_left.min(data.len());
        if data[..n] != PREFACE[at..at + n] {
            return Err(Lost);
        }
        half.preface_left -= n;
        return Ok((n, Action::None));
    }
    let Some(frame) = &mut half.frame else {
        if half.header_len == 0 {
            half.header_ns = ts;
        }
        let n = (FRAME_HEADER - half.header_len).min(data.len());
        half.header[half.header_len..half.header_len + n].copy_from_slice(&data[..n]);
        half.header_len += n;
        if half.header_len == FRAME_HEADER {
            half.header_len = 0;
            let header = FrameHeader::parse(&half.header);
            start_frame(half, header, half.header_ns)?;
            if header.len == 0 {
                return Ok((n, finish_frame(half)?));
            }
        }
        return Ok((n, Action::None));
    };
    let n = frame.left.min(data.len());
    let kept = frame.keep.min(n);
    frame.left -= n;
    frame.keep -= kept;
    half.payload.extend_from_slice(&data[..kept]);
    if frame.left > 0 {
        return Ok((n, Action::None));
    }
    Ok((n, finish_frame(half)?))
}

fn start_frame(half: &mut Half, header: FrameHeader, ts: u64) -> Result<(), Lost> {
    // A header block is a contiguous sequence of frames (RFC 9113 section 4.3).
    let continues = header.kind == CONTINUATION;
    match half.open_block {
        Some(b) if !continues || b.stream != header.stream => return Err(Lost),
        None if continues => return Err(Lost),
        _ => {}
    }
    let keep = match header.kind {
        HEADERS | PUSH_PROMISE | CONTINUATION | SETTINGS => {
            if half.block.len() + header.len > MAX_HEADER_BLOCK {
                return Err(Lost);
            }
            header.len
        }
        RST_STREAM => header.len.min(4),
        GOAWAY => header.len.min(8),
        _ => 0,
    };
    half.payload.clear();
    half.frame = Some(Frame {
        header,
        left: header.len,
        keep,
        start_ns: ts,
    });
    Ok(())
}

/// The current frame was read whole: what it means.
fn finish_frame(half: &mut Half) -> Result<Action, Lost> {
    let frame = half.frame.take().expect("a frame is being read");
    let h = frame.header;
    let payload = std::mem::take(&mut half.payload);
    let action = match h.kind {
        DATA if h.flags & END_STREAM != 0 => Action::EndStream(h.stream),
        HEADERS | PUSH_PROMISE => {
            if h.stream == 0 {
                return Err(Lost);
            }
            let fragment = block_fragment(h, &payload).ok_or(Lost)?;
            half.block.clear();
            half.block.extend_from_slice(fragment);
            half.open_block = Some(Block {
                kind: h.kind,
                stream: h.stream,
                end_stream: h.kind == HEADERS && h.flags & END_STREAM != 0,
                start_ns: frame.start_ns,
            });
            end_block(half, h.flags)?
        }
        CONTINUATION => {
            half.block.extend_from_slice(&payload);
            end_block(half, h.flags)?
        }
        RST_STREAM => Action::Reset(h.stream),
        SETTINGS if h.flags & ACK == 0 => {
            let size = payload
                .chunks_exact(6)
                .filter(|s| u16::from_be_bytes([s[0], s[1]]) == SETTINGS_HEADER_TABLE_SIZE)
                .map(|s| u32::from_be_bytes([s[2], s[3], s[4], s[5]]) as usize)
                .next_back();
            size.map_or(Action::None, Action::TableSize)
        }
        GOAWAY if payload.len() >= 4 => Action::GoAway(
            u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff,
        ),
        _ => Action::None,
    };
    half.payload = payload;
    half.payload.clear();
    Ok(action)
}

/// The header block fragment of a HEADERS or PUSH_PROMISE payload, without
/// padding, priority or promised stream id.
fn block_fragment(h: FrameHeader, payload: &[u8]) -> Option<&[u8]> {
    let mut p = payload;
    let mut pad = 0;
    if h.flags & PADDED != 0 {
        pad = usize::from(*p.first()?);
        p = &p[1..];
    }
    let skip = match h.kind {
        HEADERS if h.flags & PRIORITY != 0 => 5,
        PUSH_PROMISE => 4,
        _ => 0,
    };
    p.get(skip..p.len().checked_sub(pad)?)
}

fn end_block(half: &mut Half, flags: u8) -> Result<Action, Lost> {
    if flags & END_HEADERS == 0 {
        return Ok(Action::None);
    }
    let block = half.open_block.take().expect("a header block is open");
    let mut fields = Fields::default();
    let mut host = None;
    half.decoder
        .decode_with_cb(&half.block, |name, value| {
            field(&mut fields, &mut host, &name, &value)
        })
        .map_err(|_| Lost)?;
    if fields.meta.host.is_none() {
        fields.meta.host = host;
    }
    if half.block.capacity() > 4096 {
        half.block = Vec::new();
    }
    half.block.clear();
    Ok(Action::Headers(block, fields))
}

fn field(fields: &mut Fields, host: &mut Option<String>, name: &[u8], value: &[u8]) {
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    match name {
        b":method" => fields.method = Some(cut(value, 32)),
        b":path" => fields.path = Some(text(value)),
        b":authority" => {
            fields.authority = Some(text(value));
            fields.meta.host = Some(cut(value, MAX_META_BYTES));
        }
        b":status" => fields.status = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()),
        b"host" => *host = Some(cut(value, MAX_META_BYTES)),
        b"user-agent" => fields.meta.user_agent = Some(cut(value, MAX_META_BYTES)),
        b"traceparent" => fields.meta.traceparent = Some(cut(value, MAX_META_BYTES)),
        _ => {}
    }
}
