//! Message heads (start line and header fields): finding where they end,
//! rejecting non-HTTP early, and extracting what the framing needs.
//!
//! Complete heads are parsed with `httparse`; a head cut by the capture or
//! by the buffer cap, or one `httparse` rejects, goes through a lenient
//! line-based parser that uses whatever complete lines were seen.

use std::mem::MaybeUninit;

/// Which kind of message a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Request,
    Response,
}

/// Longest method accepted; longer means not HTTP.
const MAX_METHOD: usize = 32;
/// Bytes of a message's start examined before it is believed to be HTTP.
pub(crate) const START_CHECK: usize = 64;
const MAX_HEADERS: usize = 64;

/// What the rest of the reconstruction needs from a head.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HeadInfo {
    /// Requests: method and target as sent (target possibly cut).
    pub method: String,
    pub target: String,
    /// Responses: status code.
    pub status: Option<u16>,
    pub content_length: Option<u64>,
    /// Transfer-Encoding present with `chunked` as its last coding.
    pub chunked: bool,
    /// Transfer-Encoding present with another last coding.
    pub other_coding: bool,
    /// Content-Length unparsable or given twice with different values.
    pub bad_length: bool,
    /// `Upgrade: h2c` (on a `101` response: the connection goes on as HTTP/2).
    pub upgrade_h2c: bool,
    /// The whole head was seen (else the framing fields are a best effort).
    pub complete: bool,
    /// Requests: the header fields kept for spans.
    pub meta: crate::RequestMeta,
}

/// Longest header value kept in [`crate::RequestMeta`]; longer ones are cut.
pub(crate) const MAX_META_BYTES: usize = 256;

impl HeadInfo {
    fn header(&mut self, name: &[u8], value: &[u8]) {
        let value = trim(value);
        if name.eq_ignore_ascii_case(b"content-length") {
            // RFC 9110 section 8.6: a list of identical values is one value.
            let mut values = value.split(|&b| b == b',').map(|v| parse_decimal(trim(v)));
            let first = values.next().flatten();
            let same = values.all(|v| v.is_some() && v == first);
            match first.filter(|_| same) {
                Some(n) if self.content_length.is_none_or(|old| old == n) => {
                    self.content_length = Some(n)
                }
                _ => self.bad_length = true,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value.rsplit(|&b| b == b',').next().map_or(&[][..], trim);
            self.chunked = last.eq_ignore_ascii_case(b"chunked");
            self.other_coding = !self.chunked;
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.upgrade_h2c = value.eq_ignore_ascii_case(b"h2c");
        } else if name.eq_ignore_ascii_case(b"host") {
            self.meta.host = Some(cut(value, MAX_META_BYTES));
        } else if name.eq_ignore_ascii_case(b"user-agent") {
            self.meta.user_agent = Some(cut(value, MAX_META_BYTES));
        } else if name.eq_ignore_ascii_case(b"traceparent") {
            self.meta.traceparent = Some(cut(value, MAX_META_BYTES));
        }
    }
}

/// Finds the empty line that ends a head, across calls (CRLF or bare LF).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EndScanner {
    /// Only CRs since the last LF: an LF now would end an empty line.
    at_line_start: bool,
}

impl EndScanner {
    /// Position just after the end of the head in `data`, if there.
    pub fn scan(&mut self, data: &[u8]) -> Option<usize> {
        let mut line_start = 0;
        let mut empty_so_far = self.at_line_start;
        while let Some(p) = find_lf(&data[line_start..]) {
            let line = &data[line_start..line_start + p];
            if empty_so_far && line.iter().all(|&b| b == b'\r') {
                self.at_line_start = false;
                return Some(line_start + p + 1);
            }
            line_start += p + 1;
            empty_so_far = true;
        }
        self.at_line_start = empty_so_far && data[line_start..].iter().all(|&b| b == b'\r');
        None
    }

    /// Bytes were lost: what came before no longer borders what comes next.
    pub fn gap(&mut self) {
        self.at_line_start = false;
    }
}

/// Position of the first LF, eight bytes at a time: the head-end scan is the hottest loop of
/// the parser (a byte-at-a-time search was a tenth of homelab-probe's CPU time).
fn find_lf(data: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = data.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let word =
            u64::from_le_bytes(chunk.try_into().expect("8 bytes")) ^ (ONES * u64::from(b'\n'));
        // Lowest set bit = first zero byte (borrows only run towards higher bytes).
        let zero = word.wrapping_sub(ONES) & !word & HIGHS;
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| at + p)
}

/// Verdict on the first bytes of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Plausible,
    NeedMore,
    Invalid,
}

/// Methods are tokens (RFC 9110); in practice uppercase letters, `-`, `_`
/// (WebDAV, UPnP): requiring that rejects most text that is not HTTP.
fn is_method_char(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'-' || b == b'_'
}

/// Methods of the IANA HTTP Method Registry (RFC 9110, PATCH, WebDAV,
/// CalDAV, versioning) plus a few common extensions (UPnP, PURGE): used to
/// tell where a message starts when out of sync.
const KNOWN_METHODS: [&[u8]; 44] = [
    b"GET",
    b"HEAD",
    b"POST",
    b"PUT",
    b"DELETE",
    b"CONNECT",
    b"OPTIONS",
    b"TRACE",
    b"PATCH",
    b"ACL",
    b"BASELINE-CONTROL",
    b"BIND",
    b"CHECKIN",
    b"CHECKOUT",
    b"COPY",
    b"LABEL",
    b"LINK",
    b"LOCK",
    b"MERGE",
    b"MKACTIVITY",
    b"MKCALENDAR",
    b"MKCOL",
    b"MKREDIRECTREF",
    b"MKWORKSPACE",
    b"MOVE",
    b"ORDERPATCH",
    b"PRI",
    b"PROPFIND",
    b"PROPPATCH",
    b"QUERY",
    b"REBIND",
    b"REPORT",
    b"SEARCH",
    b"UNBIND",
    b"UNCHECKOUT",
    b"UNLINK",
    b"UNLOCK",
    b"UPDATE",
    b"UPDATEREDIRECTREF",
    b"VERSION-CONTROL",
    b"M-SEARCH",
    b"NOTIFY",
    b"SUBSCRIBE",
    b"PURGE",
];

/// Whether `a` followed by `b` is a known method.
pub(crate) fn is_known_method(a: &[u8], b: &[u8]) -> bool {
    KNOWN_METHODS
        .iter()
        .any(|m| m.len() == a.len() + b.len() && m.starts_with(a) && m.ends_with(b))
}

/// Whether `data` begins with a method (followed by a space) that is not
/// known but is the end of a known one, such as `ATCH` or `FIND`.
pub(crate) fn is_cut_method(data: &[u8]) -> bool {
    let Some(sp) = data.iter().position(|&b| b == b' ') else {
        return false;
    };
    let m = &data[..sp];
    !is_known_method(m, b"")
        && KNOWN_METHODS
            .iter()
            .any(|k| k.len() > m.len() && k.ends_with(m))
}

/// Checks that `data` (the start of a message) can begin an HTTP/1.x
/// request line or status line. Decides once the first line is complete or
/// (unless `whole_line`) [`START_CHECK`] bytes were examined; the target is
/// only checked for control characters.
pub(crate) fn check_start(kind: Kind, data: &[u8], whole_line: bool) -> Verdict {
    let data = if whole_line {
        data
    } else {
        &data[..data.len().min(START_CHECK)]
    };
    let decided_if_ok = if !whole_line && data.len() == START_CHECK {
        Verdict::Plausible
    } else {
        Verdict::NeedMore
    };
    let version_ok = |v: &[u8]| -> Option<bool> {
        // Some(true): a complete valid version; None: a valid prefix.
        const V: &[u8] = b"HTTP/1.";
        let n = v.len().min(V.len());
        if v[..n] != V[..n] {
            return Some(false);
        }
        v.get(V.len()).map(u8::is_ascii_digit)
    };
    match kind {
        Kind::Request => {
            let Some(sp) = data.iter().position(|&b| !is_method_char(b)) else {
                return if data.len() > MAX_METHOD {
                    Verdict::Invalid
                } else {
                    decided_if_ok
                };
            };
            if sp == 0 || sp > MAX_METHOD || data[sp] != b' ' {
                return Verdict::Invalid;
            }
            let rest = &data[sp + 1..];
            let Some(tend) = rest.iter().position(|&b| b <= b' ' || b == 0x7f) else {
                return decided_if_ok;
            };
            if tend == 0 || rest[tend] != b' ' {
                return Verdict::Invalid;
            }
            let version = &rest[tend + 1..];
            match version_ok(version) {
                Some(false) => Verdict::Invalid,
                None => decided_if_ok,
                Some(true) => match &version[8..] {
                    [] | [b'\r'] => decided_if_ok,
                    [b'\n', ..] | [b'\r', b'\n', ..] => Verdict::Plausible,
                    _ => Verdict::Invalid,
                },
            }
        }
        Kind::Response => {
            match version_ok(data) {
                Some(false) => return Verdict::Invalid,
                None => return Verdict::NeedMore,
                Some(true) => {}
            }
            let rest = &data[8..];
            for (i, &b) in rest.iter().enumerate().take(5) {
                let ok = match i {
                    0 => b == b' ',
                    1..=3 => b.is_ascii_digit(),
                    _ => matches!(b, b' ' | b'\r' | b'\n'),
                };
                if !ok {
                    return Verdict::Invalid;
                }
            }
            if rest.len() >= 5 {
                Verdict::Plausible
            } else {
                Verdict::NeedMore
            }
        }
    }
}

/// Parses a head known to be complete (`data` ends with its empty line).
/// Returns None when it is not HTTP at all; counts in `errors` when
/// `httparse` rejected it but the lenient parser could still read it.
pub(crate) fn parse_complete(
    kind: Kind,
    data: &[u8],
    max_target: usize,
    errors: &mut u64,
) -> Option<HeadInfo> {
    // Uninitialised: zeroing 64 headers (2 KiB) cost more than parsing a small head.
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut info = HeadInfo {
        complete: true,
        ..HeadInfo::default()
    };
    let parsed = match kind {
        Kind::Request => {
            let mut req = httparse::Request::new(&mut []);
            match req.parse_with_uninit_headers(data, &mut headers) {
                Ok(httparse::Status::Complete(_)) => {
                    info.method = req.method.unwrap_or_default().to_string();
                    info.target = cut(req.path.unwrap_or_default().as_bytes(), max_target);
                    Ok(req.headers)
                }
                Ok(httparse::Status::Partial) => Err(httparse::Error::Token),
                Err(e) => Err(e),
            }
        }
        Kind::Response => {
            let mut resp = httparse::Response::new(&mut []);
            match httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut resp,
                data,
                &mut headers,
            ) {
                Ok(httparse::Status::Complete(_)) => {
                    info.status = resp.code;
                    Ok(resp.headers)
                }
                Ok(httparse::Status::Partial) => Err(httparse::Error::Token),
                Err(e) => Err(e),
            }
        }
    };
    match parsed {
        Ok(headers) => {
            for h in headers.iter() {
                info.header(h.name.as_bytes(), h.value);
            }
            Some(info)
        }
        Err(e) => {
            let info = parse_lenient(kind, data, max_target)?;
            // Many header fields are no error, only more than are parsed in place.
            if e != httparse::Error::TooManyHeaders {
                *errors += 1;
            }
            Some(HeadInfo {
                complete: true,
                ..info
            })
        }
    }
}

/// Reads what it can from the start of a head that may be cut anywhere:
/// the start line (the target may be cut) and the complete header lines.
/// None when even the start line is not recognisable.
pub(crate) fn parse_lenient(kind: Kind, data: &[u8], max_target: usize) -> Option<HeadInfo> {
    let mut lines = data.split_inclusive(|&b| b == b'\n');
    let first = lines.next()?;
    let first_line = trim_eol(first);
    let mut info = HeadInfo::default();
    match kind {
        Kind::Request => {
            let sp = first_line.iter().position(|&b| b == b' ')?;
            let method = &first_line[..sp];
            if method.is_empty()
                || method.len() > MAX_METHOD
                || !method.iter().all(|&b| is_method_char(b))
            {
                return None;
            }
            let rest = &first_line[sp + 1..];
            let target = rest.split(|&b| b == b' ').next().unwrap_or_default();
            if target.iter().any(|&b| b < b' ' || b == 0x7f) {
                return None;
            }
            info.method = String::from_utf8_lossy(method).into_owned();
            info.target = cut(target, max_target);
        }
        Kind::Response => {
            let rest = first_line.strip_prefix(b"HTTP/1.")?;
            let code = rest.get(2..5)?;
            if !rest[0].is_ascii_digit() || rest[1] != b' ' || !code.iter().all(u8::is_ascii_digit)
            {
                return None;
            }
            info.status = Some(code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')));
        }
    }
    for line in lines {
        if !line.ends_with(b"\n") {
            break; // cut by the capture
        }
        let line = trim_eol(line);
        if line.is_empty() {
            break;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            info.header(trim(&line[..colon]), &line[colon + 1..]);
        }
    }
    Some(info)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// At most `max` bytes of `bytes` as text (lossy), cut at a char boundary.
pub(crate) fn cut(bytes: &[u8], max: usize) -> String {
    let mut s = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned();
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_lf_agrees_with_a_byte_search() {
        let text = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\x80\x0b\x09\n\xff";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let d = &text[start..end];
                assert_eq!(find_lf(d), d.iter().position(|&b| b == b'\n'), "{d:?}");
            }
        }
    }

    #[test]
    fn end_scanner_across_calls_and_line_endings() {
        let mut s = EndScanner::default();
        assert_eq!(s.scan(b"GET / HTTP/1.1\r\nHost: a\r"), None);
        assert_eq!(s.scan(b"\n\r"), None);
        assert_eq!(s.scan(b"\nBODY"), Some(1));
        let mut s = EndScanner::default();
        assert_eq!(s.scan(b"HTTP/1.0 200 OK\n\nxx"), Some(17));
        let mut s = EndScanner::default();
        assert_eq!(s.scan(b"a\r\n"), None);
        s.gap();
        assert_eq!(s.scan(b"\r\n"), None);
        assert_eq!(s.scan(b"\r\n"), Some(2));
    }

    #[test]
    fn start_check() {
        use Verdict::*;
        let r = |d: &[u8]| check_start(Kind::Request, d, false);
        assert_eq!(r(b"GE"), NeedMore);
        assert_eq!(r(b"GET /x HTTP/1.1\r\n"), Plausible);
        assert_eq!(r(b"GET /x HTTP/1.1\r"), NeedMore);
        assert_eq!(r(b"PROPFIND /dav HTTP/1."), NeedMore);
        assert_eq!(r(b"GET /x HTTP/2.0\r\n"), Invalid);
        assert_eq!(r(b"PRI * HTTP/2.0\r\n"), Invalid);
        assert_eq!(r(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), Invalid);
        assert_eq!(r(b"\x16\x03\x01\x02\x00"), Invalid);
        assert_eq!(r(b"*1\r\n$4\r\nPING\r\n"), Invalid);
        assert_eq!(r(b"GET /\r\n"), Invalid);
        assert_eq!(r(&[b'A'; 40]), Invalid);
        assert_eq!(r(b"get / HTTP/1.1\r\n"), Invalid);
        assert_eq!(r(b"39 =..X?ML"), Invalid);
        assert_eq!(r(b"M-SEARCH * HTTP/1.1\r\n"), Plausible);
        let long = [b"GET /".as_slice(), &[b'a'; 100]].concat();
        assert_eq!(r(&long), Plausible);
        assert_eq!(check_start(Kind::Request, &long, true), NeedMore);
        let line = [long.as_slice(), b" HTTP/1.1\r\n"].concat();
        assert_eq!(check_start(Kind::Request, &line, true), Plausible);
        let s = |d: &[u8]| check_start(Kind::Response, d, false);
        assert_eq!(s(b"HTTP/1.1 200 OK\r\n"), Plausible);
        assert_eq!(s(b"HTTP/1.1 20"), NeedMore);
        assert_eq!(s(b"HTTP/1.1 2x"), Invalid);
        assert_eq!(s(b"HTTP/2 200"), Invalid);
        assert_eq!(s(b"\0\0\x12\x04"), Invalid);
    }

    #[test]
    fn cut_methods() {
        for cut in [&b"ATCH /"[..], b"T /", b"FIND /", b"ELETE /"] {
            assert!(is_cut_method(cut), "{cut:?}");
        }
        for whole in [&b"PATCH /"[..], b"GET /", b"LOCK /", b"FOO /", b"PATCH"] {
            assert!(!is_cut_method(whole), "{whole:?}");
        }
    }

    #[test]
    fn complete_and_lenient_heads() {
        let mut errors = 0;
        let h = parse_complete(
            Kind::Request,
            b"POST /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n",
            1024,
            &mut errors,
        )
        .unwrap();
        assert_eq!((h.method.as_str(), h.target.as_str()), ("POST", "/a?b"));
        assert_eq!(
            (h.content_length, h.chunked, h.complete),
            (Some(12), false, true)
        );
        let h = parse_complete(
            Kind::Response,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n",
            1024,
            &mut errors,
        )
        .unwrap();
        assert_eq!((h.status, h.chunked), (Some(200), true));
        assert_eq!(errors, 0);
        // httparse rejects a space inside a header name; the lenient parser copes.
        let h = parse_complete(
            Kind::Response,
            b"HTTP/1.1 404 NF\r\nBad Name: 1\r\nContent-Length: 3\r\n\r\n",
            1024,
            &mut errors,
        )
        .unwrap();
        assert_eq!(
            (h.status, h.content_length, errors),
            (Some(404), Some(3), 1)
        );
        let mut many = b"GET /m HTTP/1.1\r\n".to_vec();
        for i in 0..100 {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"Content-Length: 9\r\n\r\n");
        let h = parse_complete(Kind::Request, &many, 1024, &mut errors).unwrap();
        assert_eq!(
            (h.target.as_str(), h.content_length, errors),
            ("/m", Some(9), 1)
        );
        let h = parse_lenient(Kind::Request, b"GET /very/long/pa", 8).unwrap();
        assert_eq!(
            (h.method.as_str(), h.target.as_str(), h.complete),
            ("GET", "/very/lo", false)
        );
        let h = parse_lenient(
            Kind::Request,
            b"PUT /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\nCookie: abc",
            64,
        )
        .unwrap();
        assert!(h.bad_length);
        let h = parse_lenient(
            Kind::Response,
            b"HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\nContent-Length: 7\r\n\r\n",
            64,
        )
        .unwrap();
        assert_eq!((h.content_length, h.bad_length), (Some(7), false));
        let h = parse_lenient(
            Kind::Response,
            b"HTTP/1.1 200 OK\r\nContent-Length: 7, 8\r\n",
            64,
        );
        assert!(h.unwrap().bad_length);
        assert_eq!(parse_lenient(Kind::Response, b"HTTP/1.1 2", 64), None);
        assert_eq!(parse_lenient(Kind::Request, b"\x00\x01 x", 64), None);
    }
}
