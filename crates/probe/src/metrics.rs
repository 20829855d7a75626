//! The exported Prometheus metrics (names and labels from the team contract, which follows
//! the OpenTelemetry HTTP semantic conventions).

use std::time::SystemTime;

use prometheus_client::{
    encoding::{prometheus_text, text},
    metrics::{counter::Counter, exemplar::HistogramWithExemplars, family::Family, gauge::Gauge},
    registry::{Registry, Unit},
};

pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// `Content-Type` of the OpenMetrics text format (with exemplars).
pub const OPENMETRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// `Content-Type` of the classic Prometheus text format (no exemplars).
pub const TEXT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Labels of a bucket's exemplar: trace_id, span_id (lowercase hex, as in Tempo).
pub type TraceExemplar = [(&'static str, String); 2];
pub type Histogram = HistogramWithExemplars<TraceExemplar>;
pub type IntGauge = Gauge;
pub type IntCounter = Counter;

type Labels = Vec<(&'static str, String)>;

/// A metric family addressed by its label values in a fixed order.
pub struct LabeledVec<M> {
    family: Family<Labels, M, fn() -> M>,
    names: &'static [&'static str],
}

impl<M: Clone> LabeledVec<M> {
    pub fn with_label_values(&self, values: &[&str]) -> M {
        let mut labels: Labels = self
            .names
            .iter()
            .zip(values)
            .map(|(n, v)| (*n, v.to_string()))
            .collect();
        labels.sort_by_key(|(n, _)| *n);
        self.family.get_or_create_owned(&labels)
    }
}

pub type HistogramVec = LabeledVec<Histogram>;
pub type IntCounterVec = LabeledVec<IntCounter>;
pub type IntGaugeVec = LabeledVec<IntGauge>;

fn new_histogram() -> Histogram {
    HistogramWithExemplars::new(DURATION_BUCKETS.iter().copied())
}

/// Observes one duration; `exemplar` (the request's span, when it was kept) becomes the
/// exemplar of its bucket, stamped with the time of the observation.
pub fn observe(h: &Histogram, seconds: f64, exemplar: Option<TraceExemplar>) {
    let at = exemplar.as_ref().map(|_| SystemTime::now());
    h.observe(seconds, exemplar, at);
}

/// The registry appends the final period of the help text.
fn help(text: &str) -> &str {
    text.strip_suffix('.').unwrap_or(text)
}

pub struct Metrics {
    registry: Registry,
    /// service_name, http_request_method, http_response_status_code, http_route
    pub server_duration: HistogramVec,
    /// service_name, http_request_method, http_response_status_code, server_address, server_port
    pub client_duration: HistogramVec,
    /// service_name, http_request_method, http_route
    pub server_unanswered: IntCounterVec,
    /// service_name, http_request_method, server_address, server_port
    pub client_unanswered: IntCounterVec,
    /// service_name
    pub server_active: IntGaugeVec,
    pub events: IntCounter,
    /// Requests whose exchange the kernel framed (one record, no bytes).
    pub kernel_framed: IntCounter,
    pub ringbuf_drops: IntCounter,
    pub parse_errors: IntCounter,
    pub tracked_connections: IntGauge,
    pub evicted_connections: IntCounter,
    /// kind (unit, container), name
    pub watch_matched_cgroups: IntGaugeVec,
    pub spans_exported: IntCounter,
    /// reason: queue_full, export_failed
    pub spans_dropped: IntCounterVec,
    pub access_log_lines: IntCounter,
    pub access_log_suppressed: IntCounter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let r = &mut registry;
        let seconds = |r: &mut Registry, name: &str, text: &str, names| {
            let family = Family::new_with_constructor(new_histogram as fn() -> Histogram);
            r.register_with_unit(name, help(text), Unit::Seconds, family.clone());
            LabeledVec { family, names }
        };
        let server_duration = seconds(
            r,
            "http_server_request_duration",
            "Duration of HTTP server requests, first request byte to last response byte.",
            &[
                "service_name",
                "http_request_method",
                "http_response_status_code",
                "http_route",
            ],
        );
        let client_duration = seconds(
            r,
            "http_client_request_duration",
            "Duration of outgoing HTTP requests, first request byte to last response byte.",
            &[
                "service_name",
                "http_request_method",
                "http_response_status_code",
                "server_address",
                "server_port",
            ],
        );
        // Counters are registered without their `_total`, which the registry appends.
        let server_unanswered = labeled(
            r,
            "http_server_unanswered_requests",
            "HTTP server requests read but never answered: the connection ended before a \
             status line (keep-alive limit, pipelined requests, client gone). Not in the \
             duration histogram.",
            &["service_name", "http_request_method", "http_route"],
        );
        let client_unanswered = labeled(
            r,
            "http_client_unanswered_requests",
            "Outgoing HTTP requests that got no status line before the connection ended. Not \
             in the duration histogram.",
            &[
                "service_name",
                "http_request_method",
                "server_address",
                "server_port",
            ],
        );
        let server_active = labeled(
            r,
            "http_server_active_requests",
            "HTTP server requests in flight.",
            &["service_name"],
        );
        let events = single(r, "homelab_probe_events", "Events read from the kernel.");
        let kernel_framed = single(
            r,
            "homelab_probe_kernel_framed_requests",
            "Requests framed in the kernel: sent as their request line and status, not their bytes.",
        );
        let ringbuf_drops = single(
            r,
            "homelab_probe_ringbuf_drops",
            "Events lost because the ring buffer was full.",
        );
        let parse_errors = single(
            r,
            "homelab_probe_parse_errors",
            "Connections whose bytes were not HTTP/1.x or HTTP/2, or could not be followed.",
        );
        let evicted_connections = single(
            r,
            "homelab_probe_evicted_connections",
            "Connections dropped from the full connection table (least recently active).",
        );
        let tracked_connections = single(
            r,
            "homelab_probe_tracked_connections",
            "Connections being followed.",
        );
        let watch_matched_cgroups = labeled(
            r,
            "homelab_probe_watch_matched_cgroups",
            "cgroups a unit or container watch matches now; 0: the watch sees nothing \
             (the unit or container is not running, or its name is misspelled).",
            &["kind", "name"],
        );
        let spans_exported = single(
            r,
            "homelab_probe_spans_exported",
            "Spans accepted by the OTLP endpoint.",
        );
        let spans_dropped: IntCounterVec = labeled(
            r,
            "homelab_probe_spans_dropped",
            "Spans lost: queue_full (the exporter was behind), export_failed (the OTLP \
             endpoint refused them or could not be reached).",
            &["reason"],
        );
        for reason in ["queue_full", "export_failed"] {
            spans_dropped.with_label_values(&[reason]);
        }
        let access_log_lines = single(
            r,
            "homelab_probe_access_log_lines",
            "Access log lines written (one per answered request).",
        );
        let access_log_suppressed = single(
            r,
            "homelab_probe_access_log_suppressed",
            "Answered requests left out of the access log: over its lines-per-second limit, \
             or its writer behind.",
        );
        Metrics {
            access_log_lines,
            access_log_suppressed,
            spans_exported,
            spans_dropped,
            registry,
            watch_matched_cgroups,
            server_duration,
            client_duration,
            server_unanswered,
            client_unanswered,
            server_active,
            events,
            kernel_framed,
            ringbuf_drops,
            parse_errors,
            tracked_connections,
            evicted_connections,
        }
    }

    /// The metrics in the OpenMetrics text format (with exemplars, ending in `# EOF`), or
    /// in the classic Prometheus text format.
    pub fn render(&self, openmetrics: bool) -> Vec<u8> {
        let mut out = String::new();
        if openmetrics {
            text::encode(&mut out, &self.registry)
        } else {
            prometheus_text::encode(&mut out, &self.registry)
        }
        .expect("text encoding never fails on a String");
        out.into_bytes()
    }
}

fn labeled<M>(
    r: &mut Registry,
    name: &str,
    text: &str,
    names: &'static [&'static str],
) -> LabeledVec<M>
where
    M: Default
        + Clone
        + prometheus_client::metrics::TypedMetric
        + prometheus_client::encoding::EncodeMetric
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let family: Family<Labels, M, fn() -> M> = Family::new_with_constructor(M::default);
    r.register(name, help(text), family.clone());
    LabeledVec { family, names }
}

fn single<M>(r: &mut Registry, name: &str, text: &str) -> M
where
    M: Default
        + Clone
        + prometheus_client::encoding::EncodeMetric
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let metric = M::default();
    r.register(name, help(text), metric.clone());
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_contract_names() {
        let m = Metrics::new();
        m.server_duration
            .with_label_values(&["web", "GET", "200", "/"])
            .observe(0.02, None, None);
        m.client_duration
            .with_label_values(&["curl", "GET", "200", "127.0.0.1", "80"])
            .observe(0.2, None, None);
        m.server_active.with_label_values(&["web"]).set(0);
        let text = String::from_utf8(m.render(false)).unwrap();
        assert!(text.contains(
            "http_server_request_duration_seconds_bucket{http_request_method=\"GET\",http_response_status_code=\"200\",http_route=\"/\",service_name=\"web\",le=\"0.025\"} 1"
        ), "{text}");
        assert!(text.contains("http_client_request_duration_seconds_count{"));
        assert!(text.contains("homelab_probe_ringbuf_drops_total 0"));
        assert!(text.contains("homelab_probe_tracked_connections 0"));
    }
}

#[cfg(test)]
mod exemplar_tests {
    use super::*;

    #[test]
    fn openmetrics_carries_exemplars_and_classic_text_does_not() {
        let m = Metrics::new();
        let h = m
            .server_duration
            .with_label_values(&["web", "GET", "200", "/"]);
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736".to_string();
        let span = "00f067aa0ba902b7".to_string();
        observe(&h, 0.02, Some([("trace_id", trace), ("span_id", span)]));
        observe(&h, 0.03, None);
        m.events.inc();
        let om = String::from_utf8(m.render(true)).unwrap();
        let bucket = |le: &str| {
            format!(
                "http_server_request_duration_seconds_bucket{{le=\"{le}\",http_request_method=\"GET\",\
                 http_response_status_code=\"200\",http_route=\"/\",service_name=\"web\"}}"
            )
        };
        let with_exemplar = om
            .lines()
            .find(|l| l.starts_with(&bucket("0.025")))
            .unwrap_or_else(|| panic!("{om}"));
        let (sample, exemplar) = with_exemplar.split_once(" # ").expect("an exemplar");
        assert!(sample.ends_with(" 1"), "{with_exemplar}");
        let mut fields = exemplar.split(' ');
        assert_eq!(
            fields.next(),
            Some("{trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"}")
        );
        assert_eq!(fields.next(), Some("0.02"));
        let at: f64 = fields.next().unwrap().parse().unwrap();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((now - at).abs() < 60.0, "{at} vs {now}");
        let unsampled = om.lines().find(|l| l.starts_with(&bucket("0.05"))).unwrap();
        assert!(!unsampled.contains('#'), "{unsampled}");
        assert!(om.contains("# TYPE homelab_probe_events counter\nhomelab_probe_events_total 1\n"));
        assert!(om.ends_with("# EOF\n"), "{om}");

        let classic = String::from_utf8(m.render(false)).unwrap();
        assert!(
            !classic.contains(" # {") && !classic.contains("# EOF"),
            "{classic}"
        );
        assert!(classic.contains("# TYPE homelab_probe_events_total counter\n"));
    }
}
