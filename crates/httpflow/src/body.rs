//! Message bodies: where they end (RFC 9112 section 6), byte by byte or by
//! length alone when the bytes were not captured.

/// Longest chunk extension accepted (it is skipped, never stored).
const MAX_CHUNK_EXT: u32 = 4096;
/// Longest trailer section accepted (skipped, never stored).
const MAX_TRAILERS: u32 = 16 * 1024;

/// How the body of the current message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// Content-Length: bytes still to come (0 only once skipped to the end).
    Length(u64),
    Chunked(Chunk),
    /// Response without length: ends when the connection closes.
    UntilClose,
    /// Framing lost (truncated capture inside a chunked body, malformed
    /// chunks, or a head whose framing fields were not captured): ends by
    /// heuristic, see `Connection`.
    Lost,
}

/// Chunked-coding parser state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    Size {
        size: u64,
        digits: u8,
    },
    /// After the size: optional whitespace and extensions, up to LF.
    Ext {
        size: u64,
        len: u32,
    },
    /// CR seen after the size.
    SizeLf {
        size: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart {
        total: u32,
    },
    TrailerLine {
        total: u32,
    },
    /// CR of the final empty line seen.
    EndLf,
}

impl Chunk {
    pub const START: Chunk = Chunk::Size { size: 0, digits: 0 };
}

/// Result of feeding bytes to a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fed {
    /// All given bytes belong to the body, which goes on.
    More,
    /// The body ended after this many of the given bytes.
    Done(usize),
    /// Malformed framing at this offset: the body is now `Lost`.
    Malformed,
}

impl Body {
    /// Feeds captured bytes of the body.
    pub fn feed(&mut self, data: &[u8]) -> Fed {
        match self {
            Body::Length(left) => {
                let n = data.len() as u64;
                if n < *left {
                    *left -= n;
                    Fed::More
                } else {
                    Fed::Done(*left as usize)
                }
            }
            Body::Chunked(c) => match feed_chunked(c, data) {
                Ok(Some(n)) => Fed::Done(n),
                Ok(None) => Fed::More,
                Err(()) => {
                    *self = Body::Lost;
                    Fed::Malformed
                }
            },
            Body::UntilClose | Body::Lost => Fed::More,
        }
    }

    /// Accounts for `n` body bytes that were not captured. Returns how many
    /// of them the body took (less than `n` only when it ended inside them)
    /// and whether the framing was lost (chunk framing inside the gap).
    pub fn skip(&mut self, n: u64) -> (u64, bool) {
        match self {
            Body::Length(left) => {
                let used = n.min(*left);
                *left -= used;
                (used, false)
            }
            Body::Chunked(Chunk::Data(left)) if n <= *left => {
                *left -= n;
                if *left == 0 {
                    *self = Body::Chunked(Chunk::DataCr);
                }
                (n, false)
            }
            Body::Chunked(_) => {
                *self = Body::Lost;
                (n, true)
            }
            Body::UntilClose | Body::Lost => (n, false),
        }
    }

    /// Whether the body has ended (a Content-Length fully skipped).
    pub fn is_done(&self) -> bool {
        matches!(self, Body::Length(0))
    }
}

/// Runs the chunked parser over `data`: Ok(Some(n)) when the body ended
/// after `n` bytes, Ok(None) when it needs more, Err on malformed framing.
fn feed_chunked(state: &mut Chunk, data: &[u8]) -> Result<Option<usize>, ()> {
    let mut i = 0;
    while i < data.len() {
        *state = match *state {
            Chunk::Data(left) => {
                let take = left.min((data.len() - i) as u64);
                i += take as usize;
                if take == left {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left - take)
                }
            }
            other => {
                let b = data[i];
                i += 1;
                match other {
                    Chunk::Size { size, digits } => match b {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            if digits >= 16 {
                                return Err(());
                            }
                            let d = (b as char).to_digit(16).unwrap_or(0);
                            Chunk::Size {
                                size: size << 4 | u64::from(d),
                                digits: digits + 1,
                            }
                        }
                        _ if digits == 0 => return Err(()),
                        b';' | b' ' | b'\t' => Chunk::Ext { size, len: 0 },
                        b'\r' => Chunk::SizeLf { size },
                        b'\n' => after_size(size),
                        _ => return Err(()),
                    },
                    Chunk::Ext { size, len } => match b {
                        b'\n' => after_size(size),
                        _ if len >= MAX_CHUNK_EXT => return Err(()),
                        _ => Chunk::Ext { size, len: len + 1 },
                    },
                    Chunk::SizeLf { size } => match b {
                        b'\n' => after_size(size),
                        _ => return Err(()),
                    },
                    Chunk::DataCr => match b {
                        b'\r' => Chunk::DataLf,
                        b'\n' => Chunk::START,
                        _ => return Err(()),
                    },
                    Chunk::DataLf => match b {
                        b'\n' => Chunk::START,
                        _ => return Err(()),
                    },
                    Chunk::TrailerStart { total } => match b {
                        b'\r' => Chunk::EndLf,
                        b'\n' => return Ok(Some(i)),
                        _ => Chunk::TrailerLine { total: total + 1 },
                    },
                    Chunk::TrailerLine { total } => match b {
                        b'\n' => Chunk::TrailerStart { total: total + 1 },
                        _ if total >= MAX_TRAILERS => return Err(()),
                        _ => Chunk::TrailerLine { total: total + 1 },
                    },
                    Chunk::EndLf => match b {
                        b'\n' => return Ok(Some(i)),
                        _ => return Err(()),
                    },
                    Chunk::Data(_) => other,
                }
            }
        };
    }
    Ok(None)
}

fn after_size(size: u64) -> Chunk {
    if size == 0 {
        Chunk::TrailerStart { total: 0 }
    } else {
        Chunk::Data(size)
    }
}

/// Whether the last captured bytes of a segment look like the end of a
/// chunked body: the last chunk (`0`, maybe with extensions), maybe trailer
/// fields, and the final empty line. The last chunk must follow a line end
/// seen in `end` (the CRLF closing the previous chunk's data), or begin the
/// segment (`whole`: `end` is the entire segment).
pub(crate) fn looks_like_chunked_end(end: &[u8], whole: bool) -> bool {
    let Some(body) = end.strip_suffix(b"\r\n\r\n") else {
        return false;
    };
    // Lines before the final empty line, last first.
    let mut lines = body
        .rsplit(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let mut seen = 0;
    for line in lines.by_ref() {
        seen += 1;
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        if !size.is_empty() && size.iter().all(|&b| b == b'0') {
            // The last chunk: complete only if a line end precedes it here.
            return lines.next().is_some() || whole;
        }
        let is_field = line.iter().position(|&b| b == b':').is_some_and(|c| {
            c > 0
                && line[..c]
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        });
        if !is_field || seen > 8 {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &mut Body, parts: &[&[u8]]) -> Vec<Fed> {
        parts.iter().map(|p| body.feed(p)).collect()
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let mut b = Body::Chunked(Chunk::START);
        let data =
            b"5;name=\"v\"\r\nhello\r\nA \r\n0123456789\r\n0;last\r\nX-Sum: 1\r\nY: 2\r\n\r\nNEXT";
        assert_eq!(b.feed(data), Fed::Done(data.len() - 4));
        // Byte by byte gives the same end.
        let mut b = Body::Chunked(Chunk::START);
        let fed: Vec<Fed> = data.chunks(1).map(|c| b.feed(c)).collect();
        let done = fed.iter().position(|f| *f == Fed::Done(1)).unwrap();
        assert_eq!(done, data.len() - 5);
    }

    #[test]
    fn chunk_data_may_contain_a_status_line() {
        let mut b = Body::Chunked(Chunk::START);
        let out = run(
            &mut b,
            &[b"13\r\nHTTP/1.1 200 OK\r\n\r\n", b"\r\n0\r\n", b"\r\n"],
        );
        assert_eq!(out, [Fed::More, Fed::More, Fed::Done(2)]);
    }

    #[test]
    fn malformed_chunks_lose_the_framing() {
        for bad in [
            &b"zz\r\n"[..],
            b"5\r\nhelloXX",
            b"\r\n",
            b"11111111111111111\r\n",
        ] {
            let mut b = Body::Chunked(Chunk::START);
            assert_eq!(b.feed(bad), Fed::Malformed, "{bad:?}");
            assert_eq!(b, Body::Lost);
        }
    }

    #[test]
    fn gaps_inside_chunk_data_keep_the_framing() {
        let mut b = Body::Chunked(Chunk::START);
        assert_eq!(b.feed(b"400\r\nab"), Fed::More);
        assert_eq!(b.skip(1022), (1022, false));
        assert_eq!(b.feed(b"\r\n0\r\n\r\n"), Fed::Done(7));
        let mut b = Body::Chunked(Chunk::START);
        assert_eq!(b.feed(b"4\r\nab"), Fed::More);
        assert_eq!(b.skip(10), (10, true));
        assert_eq!(b, Body::Lost);
    }

    #[test]
    fn length_bodies_count_bytes() {
        let mut b = Body::Length(10);
        assert_eq!(b.feed(b"abc"), Fed::More);
        assert_eq!(b.skip(5), (5, false));
        assert_eq!(b.feed(b"xyzNEXT"), Fed::Done(2));
        let mut b = Body::Length(10);
        assert_eq!(b.skip(25), (10, false));
        assert!(b.is_done());
    }

    #[test]
    fn chunked_end_heuristic() {
        assert!(looks_like_chunked_end(b"xyz\r\n0\r\n\r\n", false));
        assert!(looks_like_chunked_end(b"0\r\n\r\n", true));
        assert!(!looks_like_chunked_end(b"0\r\n\r\n", false));
        assert!(!looks_like_chunked_end(b"\r\n10\r\n\r\n", false));
        assert!(looks_like_chunked_end(
            b"ab\r\n0;x=1\r\nX-Sum: 1\r\nY: 2\r\n\r\n",
            false
        ));
        assert!(looks_like_chunked_end(b"0\r\nX-Sum: 1\r\n\r\n", true));
        assert!(!looks_like_chunked_end(b"0\r\nX-Sum: 1\r\n\r\n", false));
        assert!(!looks_like_chunked_end(
            b"ab\r\n0\r\nnot a field\r\n\r\n",
            false
        ));
        assert!(!looks_like_chunked_end(b"ab\r\n0\r\n", false));
        assert!(!looks_like_chunked_end(b"\r\n\r\n", true));
    }
}
