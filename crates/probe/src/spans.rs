//! Trace spans from completed exchanges: ids (an incoming W3C `traceparent` is continued,
//! else a new trace starts), sampling on the trace id, OpenTelemetry HTTP semantic-convention
//! attributes, and the kernel's monotonic timestamps turned into wall-clock time.

use std::{collections::BTreeMap, sync::Arc};

use httpflow::{normalize_method, RequestMeta, Side};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue},
    resource::v1::Resource,
    trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status},
};

use crate::table::Peer;

pub type TraceId = [u8; 16];
pub type SpanId = [u8; 8];

/// Identity of one span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanIds {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
}

/// What a span is made of: one answered request, as the table saw it.
#[derive(Debug, Clone)]
pub struct SpanData {
    pub ids: SpanIds,
    pub service: Arc<str>,
    pub side: Side,
    pub tls: bool,
    /// Method as sent.
    pub method: String,
    /// Request target as sent (the query is removed when the span is built).
    pub target: String,
    /// Server side: the http_route of the metrics.
    pub route: Option<String>,
    pub status: u16,
    /// Monotonic (kernel) times of the first request byte and the last response byte.
    pub start_ns: u64,
    pub end_ns: u64,
    /// The other end: the client of a server, the server of a client.
    pub peer: Option<Peer>,
    pub local_port: u16,
    pub meta: RequestMeta,
}

/// The trace a `traceparent` header names (W3C Trace Context, level 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: TraceId,
    pub parent_id: SpanId,
}

fn hex_bytes<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// `version-traceid-parentid-flags`; an invalid header is ignored (a new trace starts), as
/// the specification asks. Versions above 00 may append fields after the flags.
pub fn parse_traceparent(value: &str) -> Option<TraceParent> {
    let value = value.trim();
    let mut parts = value.split('-');
    let version = parts.next()?;
    let [v] = hex_bytes::<1>(version)?;
    if v == 0xff || (v == 0 && value.len() != 55) {
        return None;
    }
    let trace_id = hex_bytes::<16>(parts.next()?)?;
    let parent_id = hex_bytes::<8>(parts.next()?)?;
    hex_bytes::<1>(parts.next()?)?;
    if trace_id == [0; 16] || parent_id == [0; 8] {
        return None;
    }
    Some(TraceParent {
        trace_id,
        parent_id,
    })
}

/// Lowercase hex, as trace and span ids are written in W3C headers and exemplars.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

pub fn new_trace_id() -> TraceId {
    loop {
        let id = fastrand::u128(..).to_be_bytes();
        if id != [0; 16] {
            return id;
        }
    }
}

pub fn new_span_id() -> SpanId {
    loop {
        let id = fastrand::u64(..).to_be_bytes();
        if id != [0; 8] {
            return id;
        }
    }
}

/// Ids of the `ordinal`-th exchange of a client connection, derived from the connection's
/// random salt: the server end of the same connection, when it is watched on this host too,
/// computes the same ids and makes its span a child of the client span, whichever end's
/// exchange is seen first.
pub fn hop_ids(salt: u64, ordinal: u64) -> (TraceId, SpanId) {
    // splitmix64 steps
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let base = salt.wrapping_add(ordinal.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let (a, b, c) = (mix(base), mix(base ^ 0x5555), mix(base ^ 0xaaaa));
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&a.to_be_bytes());
    trace_id[8..].copy_from_slice(&b.to_be_bytes());
    (trace_id, c.max(1).to_be_bytes())
}

/// Keeps a trace when the low 8 bytes of its id fall below `ratio` of their range: the
/// decision depends on the trace id only, so every probe keeps or drops the same traces.
pub fn sampled(trace_id: &TraceId, ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let low = u64::from_be_bytes(trace_id[8..].try_into().expect("8 bytes"));
    (low as f64) < ratio * (u64::MAX as f64)
}

/// Kernel timestamps (`bpf_ktime_get_ns`, CLOCK_MONOTONIC) to Unix time: the offset between
/// the two clocks is read once at start. Clock steps after start (NTP, manual) are not
/// followed; a slewing NTP daemon moves the real clock by at most 0.5 ms per second.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    offset_ns: i128,
}

fn clock_ns(id: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(id, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

impl Clock {
    pub fn now() -> Self {
        // The narrowest of a few monotonic brackets around a real-time reading.
        let mut best = (i128::MAX, 0);
        for _ in 0..5 {
            let before = clock_ns(libc::CLOCK_MONOTONIC);
            let real = clock_ns(libc::CLOCK_REALTIME);
            let after = clock_ns(libc::CLOCK_MONOTONIC);
            if after - before < best.0 {
                best = (after - before, real - (before + after) / 2);
            }
        }
        Clock { offset_ns: best.1 }
    }

    #[cfg(test)]
    pub fn with_offset(offset_ns: i128) -> Self {
        Clock { offset_ns }
    }

    pub fn unix_ns(&self, monotonic_ns: u64) -> u64 {
        u64::try_from(i128::from(monotonic_ns) + self.offset_ns).unwrap_or(0)
    }
}

/// The path of a request target: no query string, no fragment; an absolute-form target
/// (to a proxy) loses its scheme and authority.
pub fn url_path(target: &str) -> &str {
    let end = target.find(['?', '#']).unwrap_or(target.len());
    let path = &target[..end];
    match path.split_once("://") {
        Some((scheme, rest)) if !scheme.contains('/') => {
            rest.find('/').map_or("/", |slash| &rest[slash..])
        }
        _ => path,
    }
}

/// Host and port of a Host header (`name`, `name:port`, `[v6]:port`).
fn split_host(host: &str) -> (&str, Option<u16>) {
    if let Some(rest) = host.strip_prefix('[') {
        if let Some((addr, after)) = rest.split_once(']') {
            return (addr, after.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, port.parse().ok()),
        _ => (host, None),
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_string()))
}

fn int(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

impl SpanData {
    /// Span status per the semantic conventions: a server span is an error for 5xx only (a
    /// 4xx is the client's fault), a client span for 4xx and 5xx.
    pub fn is_error(&self) -> bool {
        match self.side {
            Side::Server => self.status >= 500,
            Side::Client => self.status >= 400,
        }
    }

    pub fn to_otlp(&self, clock: &Clock) -> Span {
        let method = normalize_method(&self.method);
        let scheme = if self.tls { "https" } else { "http" };
        let path = url_path(&self.target);
        let host = self.meta.host.as_deref().map(split_host);
        let mut attributes = vec![text("http.request.method", method)];
        if method == "_OTHER" {
            attributes.push(text("http.request.method_original", &self.method));
        }
        attributes.push(int("http.response.status_code", i64::from(self.status)));
        let name_method = if method == "_OTHER" { "HTTP" } else { method };
        let (kind, name) = match self.side {
            Side::Server => {
                attributes.push(text("url.path", path));
                attributes.push(text("url.scheme", scheme));
                let route = self.route.as_deref().filter(|r| !r.is_empty());
                if let Some(route) = route {
                    attributes.push(text("http.route", route));
                }
                if let Some((name, port)) = host {
                    attributes.push(text("server.address", name));
                    attributes.push(int(
                        "server.port",
                        i64::from(port.unwrap_or(self.local_port)),
                    ));
                }
                if let Some(peer) = &self.peer {
                    attributes.push(text("client.address", &peer.address));
                    attributes.push(text("network.peer.address", &peer.address));
                    attributes.push(int("network.peer.port", i64::from(peer.port)));
                }
                let name = match route {
                    Some(route) => format!("{name_method} {route}"),
                    None => name_method.to_string(),
                };
                (span::SpanKind::Server, name)
            }
            Side::Client => {
                let peer_address = self.peer.as_ref().map(|p| p.address.as_str());
                let address = host.map(|(name, _)| name).or(peer_address);
                let port = self.peer.as_ref().map(|p| p.port);
                if let Some(address) = address {
                    attributes.push(text("server.address", address));
                    let authority = match (host, port) {
                        (Some(_), _) => self.meta.host.clone().unwrap_or_default(),
                        (None, Some(port)) => format!("{address}:{port}"),
                        (None, None) => address.to_string(),
                    };
                    attributes.push(text("url.full", &format!("{scheme}://{authority}{path}")));
                }
                if let Some(port) = port {
                    attributes.push(int("server.port", i64::from(port)));
                }
                if let Some(peer) = &self.peer {
                    attributes.push(text("network.peer.address", &peer.address));
                    attributes.push(int("network.peer.port", i64::from(peer.port)));
                }
                (span::SpanKind::Client, name_method.to_string())
            }
        };
        if let Some(agent) = &self.meta.user_agent {
            attributes.push(text("user_agent.original", agent));
        }
        let error = self.is_error();
        if error {
            attributes.push(text("error.type", &self.status.to_string()));
        }
        Span {
            trace_id: self.ids.trace_id.to_vec(),
            span_id: self.ids.span_id.to_vec(),
            parent_span_id: self.ids.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name,
            kind: kind as i32,
            start_time_unix_nano: clock.unix_ns(self.start_ns),
            end_time_unix_nano: clock.unix_ns(self.end_ns),
            attributes,
            status: Some(Status {
                code: if error {
                    status::StatusCode::Error
                } else {
                    status::StatusCode::Unset
                } as i32,
                message: String::new(),
            }),
            ..Default::default()
        }
    }
}

/// One OTLP request for a batch: a resource (`service.name`) per service.
pub fn export_request(batch: &[SpanData], clock: &Clock) -> ExportTraceServiceRequest {
    let mut by_service: BTreeMap<&str, Vec<Span>> = BTreeMap::new();
    for s in batch {
        by_service
            .entry(&s.service)
            .or_default()
            .push(s.to_otlp(clock));
    }
    let resource_spans = by_service
        .into_iter()
        .map(|(service, spans)| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "homelab-probe".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(span: &Span) -> BTreeMap<String, String> {
        span.attributes
            .iter()
            .map(|kv| {
                let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => s.clone(),
                    Some(any_value::Value::IntValue(i)) => i.to_string(),
                    other => format!("{other:?}"),
                };
                (kv.key.clone(), v)
            })
            .collect()
    }

    fn data(side: Side, status: u16) -> SpanData {
        SpanData {
            ids: SpanIds {
                trace_id: [1; 16],
                span_id: [2; 8],
                parent: None,
            },
            service: "web".into(),
            side,
            tls: false,
            method: "GET".into(),
            target: "/users/42?token=secret#frag".into(),
            route: Some("/users/{id}".into()),
            status,
            start_ns: 1_000,
            end_ns: 201_000_000,
            peer: Some(Peer {
                address: "10.0.0.9".into(),
                port: 51234,
            }),
            local_port: 8080,
            meta: RequestMeta {
                host: Some("example.org".into()),
                user_agent: Some("curl/8".into()),
                traceparent: None,
            },
        }
    }

    #[test]
    fn traceparent_is_parsed_strictly() {
        let ok =
            parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        assert_eq!(ok.trace_id[..2], [0x0a, 0xf7]);
        assert_eq!(ok.parent_id[7], 0x31);
        let future = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-extra";
        assert!(parse_traceparent(future).is_some());
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
            "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn sampling_depends_on_the_trace_id_only() {
        let ids: Vec<TraceId> = (0..10_000).map(|_| new_trace_id()).collect();
        let kept = ids.iter().filter(|id| sampled(id, 0.25)).count();
        assert!((2_000..3_000).contains(&kept), "{kept}");
        assert!(ids.iter().all(|id| sampled(id, 1.0)));
        assert!(!ids.iter().any(|id| sampled(id, 0.0)));
        let again = ids.iter().filter(|id| sampled(id, 0.25)).count();
        assert_eq!(kept, again);
    }

    #[test]
    fn ids_in_lowercase_hex() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }

    #[test]
    fn paths_lose_query_fragment_and_authority() {
        assert_eq!(url_path("/a/b?x=1"), "/a/b");
        assert_eq!(url_path("/a#top"), "/a");
        assert_eq!(url_path("http://h:80/p?q"), "/p");
        assert_eq!(url_path("http://h"), "/");
        assert_eq!(url_path("*"), "*");
        assert_eq!(url_path("/redirect?to=http://x/y"), "/redirect");
    }

    #[test]
    fn server_span_has_semconv_attributes_and_exact_times() {
        let clock = Clock::with_offset(1_700_000_000_000_000_000);
        let span = data(Side::Server, 503).to_otlp(&clock);
        assert_eq!(span.name, "GET /users/{id}");
        assert_eq!(span.kind, span::SpanKind::Server as i32);
        assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_001_000);
        assert_eq!(span.end_time_unix_nano, 1_700_000_000_201_000_000);
        assert_eq!(
            span.status.as_ref().unwrap().code,
            status::StatusCode::Error as i32
        );
        assert!(span.parent_span_id.is_empty());
        let want: BTreeMap<String, String> = [
            ("http.request.method", "GET"),
            ("http.response.status_code", "503"),
            ("url.path", "/users/42"),
            ("url.scheme", "http"),
            ("http.route", "/users/{id}"),
            ("server.address", "example.org"),
            ("server.port", "8080"),
            ("client.address", "10.0.0.9"),
            ("network.peer.address", "10.0.0.9"),
            ("network.peer.port", "51234"),
            ("user_agent.original", "curl/8"),
            ("error.type", "503"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(attrs(&span), want);
        let four = data(Side::Server, 404).to_otlp(&clock);
        assert_eq!(
            four.status.unwrap().code,
            status::StatusCode::Unset as i32,
            "a 4xx is not a server error"
        );
    }

    #[test]
    fn client_span_has_url_and_errors_from_400() {
        let clock = Clock::with_offset(0);
        let mut d = data(Side::Client, 404);
        d.route = None;
        d.method = "PURGE".into();
        d.meta.host = Some("[::1]:8443".into());
        d.tls = true;
        let span = d.to_otlp(&clock);
        assert_eq!(span.name, "HTTP");
        assert_eq!(span.kind, span::SpanKind::Client as i32);
        assert_eq!(
            span.status.as_ref().unwrap().code,
            status::StatusCode::Error as i32
        );
        let a = attrs(&span);
        assert_eq!(a["http.request.method"], "_OTHER");
        assert_eq!(a["http.request.method_original"], "PURGE");
        assert_eq!(a["server.address"], "::1");
        assert_eq!(a["server.port"], "51234", "the port connected to");
        assert_eq!(a["url.full"], "https://[::1]:8443/users/42");
        assert!(!a.contains_key("client.address"));
        assert!(!a.contains_key("url.path"));
    }

    #[test]
    fn batch_groups_spans_by_service() {
        let mut other = data(Side::Server, 200);
        other.service = "api".into();
        let req = export_request(
            &[data(Side::Server, 200), other, data(Side::Client, 200)],
            &Clock::with_offset(0),
        );
        let services: Vec<(String, usize)> = req
            .resource_spans
            .iter()
            .map(|rs| {
                let name = attrs(&Span {
                    attributes: rs.resource.clone().unwrap().attributes,
                    ..Default::default()
                })["service.name"]
                    .clone();
                (name, rs.scope_spans[0].spans.len())
            })
            .collect();
        assert_eq!(services, [("api".to_string(), 1), ("web".to_string(), 2)]);
    }

    #[test]
    fn clock_offset_matches_the_real_clock() {
        let clock = Clock::now();
        let mono = clock_ns(libc::CLOCK_MONOTONIC) as u64;
        let real = clock_ns(libc::CLOCK_REALTIME);
        let diff = (i128::from(clock.unix_ns(mono)) - real).abs();
        assert!(diff < 1_000_000_000, "{diff} ns");
    }
}
